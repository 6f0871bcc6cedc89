//! A REST path as a `google.api.http` rule declares it, matched against the
//! path of a request: the template's grammar is parsed by
//! `http_path_template`; what it binds follows `google/api/http.proto`:
//!
//! - a literal matches its segment verbatim, `*` one non-empty segment,
//!   `**` the rest of the path (zero or more segments, last only);
//! - `{field}` is `{field=*}`; `{a.b=shelves/*}` binds the text its
//!   sub-template matched (segments joined by `/`) to the nested field
//!   `a.b`;
//! - a template's `:verb` must end the path's last segment;
//! - a variable of one segment is percent-decoded whole; a variable of
//!   several keeps `%2F` encoded (a `/` inside a segment is not a
//!   separator), as http.proto says a server must.

use http_path_template::{Grammar, PathTemplate, Segment};

/// A template that cannot serve as a REST route.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("path template {template:?}: {reason}")]
    Invalid { template: String, reason: String },
}

/// A request path that matched a template but binds a value that is not
/// text (its percent-decoding is not UTF-8).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("path segment for {field} is not UTF-8 once percent-decoded")]
pub struct NotUtf8 {
    pub field: String,
}

/// What one template segment matches.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Matcher {
    Literal(String),
    Single,
    Rest,
}

/// One segment of the flattened template, and the variable it is part of.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Step {
    matcher: Matcher,
    variable: Option<usize>,
}

/// A variable: the field it binds (`a.b` split) and how its value decodes.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Variable {
    field: Vec<String>,
    /// More than one segment (or `**`): `%2F` stays encoded.
    multi_segment: bool,
}

/// One field a matched path binds: the nested field's names and its text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binding {
    pub field: Vec<String>,
    pub value: String,
}

/// A parsed `google.api.http` path template, ready to match paths.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestPath {
    template: String,
    steps: Vec<Step>,
    variables: Vec<Variable>,
    verb: Option<String>,
}

impl RestPath {
    /// Parses `template` (e.g. `/v1/{name=orders/*}:cancel`).
    pub fn parse(template: &str) -> Result<Self, TemplateError> {
        let invalid = |reason: String| TemplateError::Invalid {
            template: template.to_owned(),
            reason,
        };
        let parsed = PathTemplate::parse(template, Grammar::default())
            .map_err(|error| invalid(error.to_string()))?;
        let mut steps = Vec::new();
        let mut variables = Vec::new();
        for segment in parsed.segments() {
            match segment {
                Segment::Variable(variable) => {
                    let index = variables.len();
                    let mut count = 0;
                    let mut has_rest = false;
                    for sub in variable.segments() {
                        let matcher = matcher(&sub).ok_or_else(|| {
                            invalid(format!("unsupported segment in {}", variable.field_path()))
                        })?;
                        has_rest |= matcher == Matcher::Rest;
                        count += 1;
                        steps.push(Step {
                            matcher,
                            variable: Some(index),
                        });
                    }
                    variables.push(Variable {
                        field: variable
                            .field_path()
                            .split('.')
                            .map(str::to_owned)
                            .collect(),
                        multi_segment: count > 1 || has_rest,
                    });
                }
                other => steps.push(Step {
                    matcher: matcher(other)
                        .ok_or_else(|| invalid("unsupported segment".to_owned()))?,
                    variable: None,
                }),
            }
        }
        Ok(Self {
            template: template.to_owned(),
            steps,
            variables,
            verb: parsed.verb().map(str::to_owned),
        })
    }

    /// The template as declared.
    pub fn template(&self) -> &str {
        &self.template
    }

    /// The custom verb the path must end with (`cancel` in `...:cancel`).
    pub fn verb(&self) -> Option<&str> {
        self.verb.as_deref()
    }

    /// The fields the template binds, each split at its dots.
    pub fn fields(&self) -> impl Iterator<Item = &[String]> {
        self.variables
            .iter()
            .map(|variable| variable.field.as_slice())
    }

    /// What `path` (a request's path, without its query) binds, if it
    /// matches: `Ok(None)` when it does not.
    pub fn bind(&self, path: &str) -> Result<Option<Vec<Binding>>, NotUtf8> {
        let Some(rest) = path.strip_prefix('/') else {
            return Ok(None);
        };
        let rest = match &self.verb {
            Some(verb) => match rest
                .strip_suffix(verb.as_str())
                .and_then(|rest| rest.strip_suffix(':'))
            {
                Some(rest) => rest,
                None => return Ok(None),
            },
            None => rest,
        };
        let segments: Vec<&str> = rest.split('/').collect();
        // Which segments each variable spans: [start, end).
        let mut spans: Vec<Option<(usize, usize)>> = vec![None; self.variables.len()];
        let mut at = 0;
        for step in &self.steps {
            let taken = match &step.matcher {
                Matcher::Literal(literal) => {
                    if segments.get(at) != Some(&literal.as_str()) {
                        return Ok(None);
                    }
                    1
                }
                Matcher::Single => {
                    if segments.get(at).is_none_or(|segment| segment.is_empty()) {
                        return Ok(None);
                    }
                    1
                }
                // The remaining segments, however many; none when the path
                // ends where `**` begins (`/v1/files` for `/v1/files/**`
                // arrives as one empty segment, or none at all).
                Matcher::Rest => segments.len().saturating_sub(at),
            };
            if let Some(index) = step.variable {
                let span = spans[index].get_or_insert((at, at));
                span.1 = at + taken;
            }
            at += taken;
        }
        if at != segments.len() {
            return Ok(None);
        }
        let mut bindings = Vec::with_capacity(self.variables.len());
        for (variable, span) in self.variables.iter().zip(spans) {
            let (start, end) = span.unwrap_or((at, at));
            let raw = segments.get(start..end).unwrap_or_default().join("/");
            let value = decode(&raw, variable.multi_segment).ok_or_else(|| NotUtf8 {
                field: variable.field.join("."),
            })?;
            bindings.push(Binding {
                field: variable.field.clone(),
                value,
            });
        }
        Ok(Some(bindings))
    }
}

fn matcher(segment: &Segment<'_>) -> Option<Matcher> {
    match segment {
        Segment::Literal(literal) => Some(Matcher::Literal((*literal).to_owned())),
        Segment::Single => Some(Matcher::Single),
        Segment::Rest => Some(Matcher::Rest),
        _ => None,
    }
}

/// Percent-decodes a bound value; a multi-segment value keeps `%2F`
/// (either case) as it came. `None` when the result is not UTF-8.
fn decode(raw: &str, multi_segment: bool) -> Option<String> {
    if !multi_segment {
        return percent_encoding::percent_decode_str(raw)
            .decode_utf8()
            .ok()
            .map(|text| text.into_owned());
    }
    let mut decoded = String::with_capacity(raw.len());
    // Each decoded piece is rejoined with the encoded slash it was cut at
    // (in upper case: both cases are the same byte).
    for (i, piece) in raw
        .split("%2F")
        .flat_map(|piece| piece.split("%2f"))
        .enumerate()
    {
        if i > 0 {
            decoded.push_str("%2F");
        }
        decoded.push_str(
            &percent_encoding::percent_decode_str(piece)
                .decode_utf8()
                .ok()?,
        );
    }
    Some(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bound(template: &str, path: &str) -> Option<Vec<(String, String)>> {
        RestPath::parse(template)
            .expect("template")
            .bind(path)
            .expect("utf-8")
            .map(|bindings| {
                bindings
                    .into_iter()
                    .map(|binding| (binding.field.join("."), binding.value))
                    .collect()
            })
    }

    fn pairs(list: &[(&str, &str)]) -> Option<Vec<(String, String)>> {
        Some(
            list.iter()
                .map(|(field, value)| ((*field).to_owned(), (*value).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn literals_match_verbatim_and_whole() {
        assert_eq!(bound("/v1/products", "/v1/products"), pairs(&[]));
        assert_eq!(bound("/v1/products", "/v1/products/"), None);
        assert_eq!(bound("/v1/products", "/v1/Products"), None);
        assert_eq!(bound("/v1/products", "/v1"), None);
        assert_eq!(bound("/v1/products", "v1/products"), None);
    }

    #[test]
    fn a_variable_is_one_non_empty_segment() {
        let template = "/v1/products/{product_id}";
        assert_eq!(
            bound(template, "/v1/products/prod_mug"),
            pairs(&[("product_id", "prod_mug")])
        );
        assert_eq!(bound(template, "/v1/products/"), None);
        assert_eq!(bound(template, "/v1/products/a/b"), None);
    }

    #[test]
    fn one_segment_is_percent_decoded_whole() {
        assert_eq!(
            bound("/v1/products/{id}", "/v1/products/caf%C3%A9%2Fmug%20x"),
            pairs(&[("id", "café/mug x")])
        );
        let not_utf8 = RestPath::parse("/v1/products/{id}")
            .expect("template")
            .bind("/v1/products/%FF");
        assert_eq!(
            not_utf8,
            Err(NotUtf8 {
                field: "id".to_owned()
            })
        );
    }

    #[test]
    fn a_sub_template_binds_its_segments_joined() {
        let template = "/v1/{name=shelves/*/books/*}";
        assert_eq!(
            bound(template, "/v1/shelves/s1/books/b2"),
            pairs(&[("name", "shelves/s1/books/b2")])
        );
        assert_eq!(bound(template, "/v1/shelves/s1/novels/b2"), None);
    }

    #[test]
    fn several_segments_keep_an_encoded_slash() {
        assert_eq!(
            bound("/v1/{name=files/**}", "/v1/files/a%2Fb/c%20d"),
            pairs(&[("name", "files/a%2Fb/c d")])
        );
        assert_eq!(
            bound("/v1/{name=files/**}", "/v1/files/a%2fb"),
            pairs(&[("name", "files/a%2Fb")])
        );
    }

    #[test]
    fn double_star_takes_the_rest_however_long() {
        let template = "/v1/files/{path=**}";
        assert_eq!(
            bound(template, "/v1/files/a/b/c.txt"),
            pairs(&[("path", "a/b/c.txt")])
        );
        assert_eq!(bound(template, "/v1/files/a"), pairs(&[("path", "a")]));
        assert_eq!(bound("/v1/files/**", "/v1/files/x/y"), pairs(&[]));
    }

    #[test]
    fn nested_fields_are_split_at_their_dots() {
        let path =
            RestPath::parse("/v1/orders/{order.id}/items/{item.product_id}").expect("template");
        assert_eq!(
            path.fields().collect::<Vec<_>>(),
            [&["order", "id"][..], &["item", "product_id"][..]]
        );
        assert_eq!(
            path.bind("/v1/orders/o1/items/p2")
                .expect("utf-8")
                .expect("match")
                .into_iter()
                .map(|binding| binding.field)
                .collect::<Vec<_>>(),
            [vec!["order", "id"], vec!["item", "product_id"]]
        );
    }

    #[test]
    fn a_verb_must_end_the_path() {
        let template = "/v1/orders/{order_id}:cancel";
        assert_eq!(
            bound(template, "/v1/orders/o-1:cancel"),
            pairs(&[("order_id", "o-1")])
        );
        assert_eq!(bound(template, "/v1/orders/o-1"), None);
        assert_eq!(bound(template, "/v1/orders/o-1:refund"), None);
        // Without a verb in the template, a colon is part of the segment.
        assert_eq!(
            bound("/v1/orders/{order_id}", "/v1/orders/o-1:cancel"),
            pairs(&[("order_id", "o-1:cancel")])
        );
    }

    #[test]
    fn templates_outside_the_grammar_are_refused() {
        for bad in [
            "v1/products",
            "/v1/{a={b}}",
            "/v1/**/x",
            "/v1/{id",
            "/v1/{a}.json",
        ] {
            assert!(RestPath::parse(bad).is_err(), "{bad:?}");
        }
    }
}
