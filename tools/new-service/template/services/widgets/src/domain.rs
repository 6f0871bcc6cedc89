//! What a widget is, and the rules for creating and paging them: no
//! database, no wire format.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

use crate::error::WidgetsError;

/// A page when the caller asks for none, and the most a page holds.
pub const DEFAULT_PAGE_SIZE: u64 = 20;
pub const MAX_PAGE_SIZE: u64 = 100;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Widget {
    pub id: String,
    pub customer_id: String,
    pub title: String,
    pub description: String,
    /// The catalog's product it is about.
    pub product_id: String,
    pub created_at_ms: i64,
}

/// A widget to create, checked (the contract's rules hold: see the proto).
#[derive(Clone, Debug)]
pub struct NewWidget {
    pub customer_id: String,
    pub request_id: String,
    pub title: String,
    pub description: String,
    pub product_id: String,
}

/// Where a page of a customer's widgets starts (newest first), and how
/// long it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page {
    pub size: u64,
    pub after: Option<Cursor>,
}

/// The last widget of the page before.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor {
    pub created_at_ms: i64,
    pub id: String,
}

impl Page {
    /// A page as a request asks for it: 0 is the default size, more than
    /// the most is the most (AIP-158), a token is one this service issued.
    pub fn parse(page_size: i32, page_token: &str) -> Result<Self, WidgetsError> {
        let size = match page_size {
            0 => DEFAULT_PAGE_SIZE,
            n if n < 0 => return Err(WidgetsError::invalid("page_size", "must not be negative")),
            n => u64::try_from(n).map_or(MAX_PAGE_SIZE, |n| n.min(MAX_PAGE_SIZE)),
        };
        Ok(Self {
            size,
            after: Cursor::decode(page_token)?,
        })
    }
}

impl Cursor {
    pub fn after(widget: &Widget) -> Self {
        Self {
            created_at_ms: widget.created_at_ms,
            id: widget.id.clone(),
        }
    }

    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}:{}", self.created_at_ms, self.id))
    }

    fn decode(token: &str) -> Result<Option<Self>, WidgetsError> {
        if token.is_empty() {
            return Ok(None);
        }
        let refused = || WidgetsError::PageTokenNotIssued;
        let text = URL_SAFE_NO_PAD.decode(token).map_err(|_| refused())?;
        let text = String::from_utf8(text).map_err(|_| refused())?;
        let (at, id) = text.split_once(':').ok_or_else(refused)?;
        Ok(Some(Self {
            created_at_ms: at.parse().map_err(|_| refused())?,
            id: id.to_owned(),
        }))
    }
}

impl WidgetsError {
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidArgument {
            field,
            reason: reason.into(),
        }
    }
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_sizes_default_cap_and_refuse_negatives() {
        assert_eq!(
            Page::parse(0, "").ok().map(|p| p.size),
            Some(DEFAULT_PAGE_SIZE)
        );
        assert_eq!(Page::parse(7, "").ok().map(|p| p.size), Some(7));
        assert_eq!(
            Page::parse(1000, "").ok().map(|p| p.size),
            Some(MAX_PAGE_SIZE)
        );
        assert!(matches!(
            Page::parse(-1, ""),
            Err(WidgetsError::InvalidArgument {
                field: "page_size",
                ..
            })
        ));
    }

    #[test]
    fn a_cursor_comes_back_as_it_went_and_a_forged_one_is_refused() {
        let cursor = Cursor {
            created_at_ms: 1_700_000_000_000,
            id: "w-1".to_owned(),
        };
        let page = Page::parse(0, &cursor.encode()).ok();
        assert_eq!(page.and_then(|p| p.after), Some(cursor));
        for forged in ["!!", "bm8tY29sb24", "eDox"] {
            assert!(
                matches!(
                    Page::parse(0, forged),
                    Err(WidgetsError::PageTokenNotIssued)
                ),
                "{forged}"
            );
        }
    }
}
