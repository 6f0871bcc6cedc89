//! A new service's name, checked, and every form the template needs of it.

/// Words a service may not be called: Rust's keywords (its crate and
/// module would not compile) and the repository's own directories and
/// packages.
const RESERVED: &[&str] = &[
    "abstract",
    "as",
    "async",
    "await",
    "become",
    "box",
    "break",
    "const",
    "continue",
    "crate",
    "do",
    "dyn",
    "else",
    "enum",
    "extern",
    "false",
    "final",
    "fn",
    "for",
    "gen",
    "if",
    "impl",
    "in",
    "let",
    "loop",
    "macro",
    "match",
    "mod",
    "move",
    "mut",
    "override",
    "priv",
    "pub",
    "ref",
    "return",
    "self",
    "static",
    "struct",
    "super",
    "trait",
    "true",
    "try",
    "type",
    "typeof",
    "union",
    "unsafe",
    "unsized",
    "use",
    "virtual",
    "where",
    "while",
    "yield",
    "alloc",
    "core",
    "std",
    "test",
    "tests",
    "kit",
    "common",
    "bff",
    "gateway",
    "shop",
    "proto",
    "tools",
    "bench",
    "migrations",
    "deploy",
    "docs",
    "web",
    "src",
    "services",
    "users",
    "catalog",
    "orders",
    "payments",
];

/// A service's name and the names derived from it: `reviews` keeps
/// `Review`s, served as `shop.reviews.v1.ReviewService` by the crate
/// `shop-reviews`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Name {
    /// `reviews`: the service, its crate (`shop-reviews`), its package.
    pub plural: String,
    /// `review`: one of what it keeps.
    pub singular: String,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error(
        "{0:?}: a service's name is one lower-case word of letters and digits, starting with a \
         letter (e.g. reviews)"
    )]
    NotOneWord(String),
    #[error("{0:?}: a service's name is 3 to 24 characters long")]
    Length(String),
    #[error(
        "{0:?}: name the service after what it keeps, in the plural (e.g. reviews, wishlists, \
         addresses), or say what it keeps with --singular (e.g. inventory --singular item): \
         its resource is named by the singular"
    )]
    NotPlural(String),
    #[error(
        "--singular {0:?}: what the service keeps is one lower-case word of letters and digits, \
         2 to 24 characters long, starting with a letter (e.g. item)"
    )]
    SingularNotOneWord(String),
    #[error(
        "--singular {0:?} is the service's own name: one of what it keeps needs another name \
         (its messages and RPCs are named by both)"
    )]
    SingularIsTheName(String),
    #[error("{0:?} is reserved (a Rust keyword, or a name the shop uses already)")]
    Reserved(String),
    #[error(
        "{name:?} would keep a {singular:?}, which is reserved (a Rust keyword, or a name the shop \
         uses already): choose another name"
    )]
    SingularReserved { name: String, singular: String },
}

impl Name {
    /// `raw` as a service's name, keeping `singular`s (by default, `raw`'s
    /// singular as English's regular plurals make it).
    pub fn parse(raw: &str, singular: Option<&str>) -> Result<Self, NameError> {
        if !is_one_word(raw) {
            return Err(NameError::NotOneWord(raw.to_owned()));
        }
        if !(3..=24).contains(&raw.len()) {
            return Err(NameError::Length(raw.to_owned()));
        }
        if RESERVED.contains(&raw) {
            return Err(NameError::Reserved(raw.to_owned()));
        }
        let singular = match singular {
            Some(given) if !is_one_word(given) || !(2..=24).contains(&given.len()) => {
                return Err(NameError::SingularNotOneWord(given.to_owned()));
            }
            Some(given) if given == raw => {
                return Err(NameError::SingularIsTheName(given.to_owned()));
            }
            Some(given) => given.to_owned(),
            None => regular_singular(raw).ok_or_else(|| NameError::NotPlural(raw.to_owned()))?,
        };
        if RESERVED.contains(&singular.as_str()) {
            return Err(NameError::SingularReserved {
                name: raw.to_owned(),
                singular,
            });
        }
        Ok(Self {
            plural: raw.to_owned(),
            singular,
        })
    }

    /// `Reviews`.
    pub fn plural_type(&self) -> String {
        capitalized(&self.plural)
    }

    /// `Review`.
    pub fn singular_type(&self) -> String {
        capitalized(&self.singular)
    }

    /// The template with this name in place of its own (`widgets`), in
    /// every form it takes, word by word (`crate::rewrite`).
    pub fn render(&self, template: &str) -> String {
        crate::rewrite::words(template, |word| self.rename(word))
    }

    /// A word of the template's name in its form of this name.
    fn rename(&self, word: &str) -> Option<String> {
        Some(match word {
            "widgets" => self.plural.clone(),
            "Widgets" => self.plural_type(),
            "WIDGETS" => self.plural.to_ascii_uppercase(),
            "widget" => self.singular.clone(),
            "Widget" => self.singular_type(),
            "WIDGET" => self.singular.to_ascii_uppercase(),
            // The Go package the contract names (`go_package`).
            "widgetsv1" => format!("{}v1", self.plural),
            _ => return None,
        })
    }
}

/// One lower-case word of letters and digits, starting with a letter.
pub fn is_one_word(word: &str) -> bool {
    word.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && word
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
}

/// English's regular plurals: `categories` -> `category`, `addresses` ->
/// `address`, `boxes` -> `box`, `reviews` -> `review`; `None` for a word
/// that does not end as a plural does.
fn regular_singular(plural: &str) -> Option<String> {
    if let Some(stem) = plural.strip_suffix("ies") {
        return (!stem.is_empty()).then(|| format!("{stem}y"));
    }
    for ending in ["sses", "shes", "ches", "xes", "zzes"] {
        if plural.ends_with(ending) {
            return Some(plural[..plural.len() - 2].to_owned());
        }
    }
    if plural.ends_with("ss") || plural.ends_with("us") || plural.ends_with("is") {
        return None;
    }
    plural
        .strip_suffix('s')
        .filter(|stem| stem.len() >= 2)
        .map(str::to_owned)
}

fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_ascii_uppercase().to_string() + chars.as_str()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plural_gives_its_singular() {
        for (plural, singular) in [
            ("reviews", "review"),
            ("categories", "category"),
            ("addresses", "address"),
            ("taxes", "tax"),
            ("wishes", "wish"),
            ("batches", "batch"),
            ("carts2s", "carts2"),
        ] {
            assert_eq!(
                Name::parse(plural, None).map(|name| name.singular),
                Ok(singular.to_owned())
            );
        }
    }

    #[test]
    fn a_bad_name_is_refused_with_its_reason() {
        assert!(matches!(
            Name::parse("Reviews", None),
            Err(NameError::NotOneWord(_))
        ));
        assert!(matches!(
            Name::parse("re-views", None),
            Err(NameError::NotOneWord(_))
        ));
        assert!(matches!(
            Name::parse("gift_cards", None),
            Err(NameError::NotOneWord(_))
        ));
        assert!(matches!(
            Name::parse("9lives", None),
            Err(NameError::NotOneWord(_))
        ));
        assert!(matches!(
            Name::parse("", None),
            Err(NameError::NotOneWord(_))
        ));
        assert!(matches!(Name::parse("xs", None), Err(NameError::Length(_))));
        assert!(matches!(
            Name::parse("inventory", None),
            Err(NameError::NotPlural(_))
        ));
        assert!(matches!(
            Name::parse("status", None),
            Err(NameError::NotPlural(_))
        ));
        assert!(matches!(
            Name::parse("payments", None),
            Err(NameError::Reserved(_))
        ));
        assert!(matches!(
            Name::parse("crates", None),
            Err(NameError::SingularReserved { .. })
        ));
        assert!(matches!(
            Name::parse("types", None),
            Err(NameError::SingularReserved { .. })
        ));
    }

    #[test]
    fn a_name_that_is_no_plural_keeps_what_singular_says() {
        let inventory = Name::parse("inventory", Some("item")).expect("a name");
        assert_eq!(
            (inventory.plural.as_str(), inventory.singular.as_str()),
            ("inventory", "item")
        );
        assert_eq!(
            inventory.render("WidgetService ListWidgets GetWidget widget_id shop.widgets.v1"),
            "ItemService ListInventory GetItem item_id shop.inventory.v1"
        );
        // An irregular plural, said.
        let people = Name::parse("people", Some("person")).expect("a name");
        assert_eq!(people.singular_type(), "Person");
        assert!(matches!(
            Name::parse("inventory", Some("Item")),
            Err(NameError::SingularNotOneWord(_))
        ));
        assert!(matches!(
            Name::parse("inventory", Some("x")),
            Err(NameError::SingularNotOneWord(_))
        ));
        assert!(matches!(
            Name::parse("fish", Some("fish")),
            Err(NameError::SingularIsTheName(_))
        ));
        assert!(matches!(
            Name::parse("inventory", Some("type")),
            Err(NameError::SingularReserved { .. })
        ));
    }

    #[test]
    fn the_template_takes_the_name_in_every_form() {
        let name = Name::parse("reviews", None).expect("a name");
        assert_eq!(
            name.render(
                "WIDGETS_PORT Widgets widgets WIDGET_EVENTS WidgetService widget_id widgetId"
            ),
            "REVIEWS_PORT Reviews reviews REVIEW_EVENTS ReviewService review_id reviewId"
        );
    }

    #[test]
    fn a_name_that_contains_the_templates_is_not_renamed_twice() {
        let name = Name::parse("widgetsets", None).expect("a name");
        assert_eq!(
            name.render("ListWidgets widgets WidgetService widget_id"),
            "ListWidgetsets widgetsets WidgetsetService widgetset_id"
        );
    }
}
