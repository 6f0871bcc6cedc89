//! Renaming by words, not by text: each identifier of a file is split into
//! its words (`ListWidgetsRequest` is List, Widgets, Request;
//! `WIDGETS_DATABASE_URL` is WIDGETS, DATABASE, URL; `widget_id` is
//! widget, id) and a word is replaced only whole. So `widgetry` stays, and
//! a new name that contains the old one (`widgetsets`) is not renamed
//! again.

/// `text` with each word of its identifiers that `rename` maps replaced.
pub fn words(text: &str, rename: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    let mut rest = text;
    while !rest.is_empty() {
        let end = rest.find(|c: char| !is_identifier(c)).unwrap_or(rest.len());
        if end == 0 {
            let other = rest.chars().next().map_or(1, char::len_utf8);
            out.push_str(&rest[..other]);
            rest = &rest[other..];
            continue;
        }
        for word in split(&rest[..end]) {
            match rename(word) {
                Some(renamed) => out.push_str(&renamed),
                None => out.push_str(word),
            }
        }
        rest = &rest[end..];
    }
    out
}

fn is_identifier(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// An identifier's words and the `_`s between them, in order: a word
/// starts after `_`, at an upper-case letter after a lower-case one or a
/// digit, and at the last capital of a run followed by a lower-case letter
/// (`HTTPWidget` is HTTP, Widget).
fn split(identifier: &str) -> Vec<&str> {
    let bytes = identifier.as_bytes();
    let mut parts = Vec::new();
    let mut start = 0;
    for i in 0..bytes.len() {
        let here = bytes[i];
        let boundary = if here == b'_' {
            true
        } else if i == 0 || bytes[i - 1] == b'_' {
            false
        } else {
            let before = bytes[i - 1];
            let after = bytes.get(i + 1).copied();
            here.is_ascii_uppercase()
                && (before.is_ascii_lowercase()
                    || before.is_ascii_digit()
                    || (before.is_ascii_uppercase()
                        && after.is_some_and(|a| a.is_ascii_lowercase())))
        };
        if boundary && i > start {
            parts.push(&identifier[start..i]);
            start = i;
        }
        if here == b'_' {
            parts.push(&identifier[i..=i]);
            start = i + 1;
        }
    }
    if start < bytes.len() {
        parts.push(&identifier[start..]);
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn widgets_to_reviews(word: &str) -> Option<String> {
        match word {
            "widgets" => Some("reviews".to_owned()),
            "Widget" => Some("Review".to_owned()),
            "WIDGETS" => Some("REVIEWS".to_owned()),
            _ => None,
        }
    }

    #[test]
    fn identifiers_split_into_their_words() {
        assert_eq!(split("ListWidgetsRequest"), ["List", "Widgets", "Request"]);
        assert_eq!(split("widget_id"), ["widget", "_", "id"]);
        assert_eq!(
            split("WIDGETS_DATABASE_URL"),
            ["WIDGETS", "_", "DATABASE", "_", "URL"]
        );
        assert_eq!(split("HTTPWidget"), ["HTTP", "Widget"]);
        assert_eq!(split("v1"), ["v1"]);
        assert_eq!(split("_x__y_"), ["_", "x", "_", "_", "y", "_"]);
    }

    #[test]
    fn only_whole_words_are_renamed() {
        assert_eq!(
            words(
                "shop.widgets.v1.WidgetService: WIDGETS_PORT, widgetry, Widgets, /v1/widgets/{id}",
                widgets_to_reviews
            ),
            "shop.reviews.v1.ReviewService: REVIEWS_PORT, widgetry, Widgets, /v1/reviews/{id}"
        );
    }

    #[test]
    fn text_that_is_no_identifier_passes_unchanged() {
        let text = "# ünïcode — 8099; \"quoted\" {} \n";
        assert_eq!(words(text, |_| None), text);
    }
}
