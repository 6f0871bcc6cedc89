//! The users service's rules, pure: what a valid email, password and display
//! name are.

use shop_kit::rpc::connect_errors::excerpt;

use crate::error::UsersError;

const MIN_PASSWORD_CHARS: usize = 10;
const MAX_PASSWORD_CHARS: usize = 128;
const MAX_DISPLAY_NAME_CHARS: usize = 100;
const MAX_EMAIL_CHARS: usize = 254;

/// An email address, lower-cased so that uniqueness ignores case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, UsersError> {
        let invalid =
            || UsersError::invalid("email", format!("{} is not an email address", excerpt(raw)));
        // Bounded before any work: a megabyte of "email" is refused at once.
        if raw.len() > 4 * MAX_EMAIL_CHARS {
            return Err(invalid());
        }
        let email = raw.trim().to_lowercase();
        if email.is_empty()
            || email.chars().count() > MAX_EMAIL_CHARS
            || email.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(invalid());
        }
        let (local, domain) = email.split_once('@').ok_or_else(invalid)?;
        let domain_ok = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains('@')
            && !domain.contains("..");
        if local.is_empty() || !domain_ok {
            return Err(invalid());
        }
        Ok(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password strong enough to accept: long, with a letter and a digit.
pub fn check_password(password: &str) -> Result<(), UsersError> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(UsersError::invalid(
            "password",
            format!("must be at least {MIN_PASSWORD_CHARS} characters"),
        ));
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(UsersError::invalid(
            "password",
            format!("must be at most {MAX_PASSWORD_CHARS} characters"),
        ));
    }
    if !password.chars().any(char::is_alphabetic) || !password.chars().any(|c| c.is_ascii_digit()) {
        return Err(UsersError::invalid(
            "password",
            "must contain a letter and a digit",
        ));
    }
    Ok(())
}

/// A display name, trimmed.
pub fn display_name(raw: &str) -> Result<String, UsersError> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > MAX_DISPLAY_NAME_CHARS {
        return Err(UsersError::invalid(
            "display_name",
            format!("must be 1 to {MAX_DISPLAY_NAME_CHARS} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(UsersError::invalid(
            "display_name",
            "must not contain control characters",
        ));
    }
    Ok(name.to_owned())
}

/// A new account, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewUser {
    pub email: Email,
    pub display_name: String,
}

/// An account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub email: String,
    pub display_name: String,
}

/// A service's name, as in its token's subject "service:<name>".
pub fn service_name(raw: &str) -> Result<&str, UsersError> {
    let valid = !raw.is_empty()
        && raw.len() <= 32
        && raw.starts_with(|c: char| c.is_ascii_lowercase())
        && raw
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid {
        return Err(UsersError::invalid(
            "service_name",
            "must be 1 to 32 characters of a-z, 0-9 and '-', starting with a letter",
        ));
    }
    Ok(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(error: UsersError) -> &'static str {
        match error {
            UsersError::InvalidArgument { field, .. } => field,
            other => panic!("expected invalid argument, got {other:?}"),
        }
    }

    #[test]
    fn emails_are_checked_and_lower_cased() {
        assert_eq!(
            Email::parse(" Ada@Example.COM ").expect("valid").as_str(),
            "ada@example.com"
        );
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a da@example.com",
            "ada@.com",
            "ada@example..com",
            "ada\0@example.com",
            "ada@exa\u{7}mple.com",
            &"a".repeat(1 << 20),
        ] {
            assert_eq!(
                field_of(Email::parse(bad).expect_err("must be refused")),
                "email",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_refused_email_is_quoted_briefly() {
        let error =
            Email::parse(&format!("{}@example.com", "a".repeat(1 << 20))).expect_err("too long");
        assert!(error.to_string().len() < 120, "{}", error.to_string().len());
    }

    #[test]
    fn weak_passwords_are_refused() {
        assert!(check_password("correct horse 1").is_ok());
        for weak in [
            "short1",
            "onlyletterslong",
            "1234567890123",
            &"a1".repeat(65),
        ] {
            assert_eq!(
                field_of(check_password(weak).expect_err("must be refused")),
                "password",
                "{weak:?}"
            );
        }
    }

    #[test]
    fn service_names_are_plain_words() {
        assert_eq!(service_name("orders").expect("valid"), "orders");
        for bad in ["", "Orders", "1st", "a b", "service:x", &"x".repeat(33)] {
            assert_eq!(
                field_of(service_name(bad).expect_err("must be refused")),
                "service_name",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn display_names_are_trimmed_and_bounded() {
        assert_eq!(display_name("  Ada  ").expect("valid"), "Ada");
        assert_eq!(
            field_of(display_name("  ").expect_err("must be refused")),
            "display_name"
        );
        assert_eq!(
            field_of(display_name(&"x".repeat(101)).expect_err("must be refused")),
            "display_name"
        );
        assert_eq!(
            field_of(display_name("a\u{7}b").expect_err("must be refused")),
            "display_name"
        );
    }
}
