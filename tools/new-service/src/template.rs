//! The template: a service named `widgets`, written as the shop's own
//! services are (`template/`), which [`crate::name::Name::render`] renames.

/// Each file of the template: its path in the repository and its text.
pub const FILES: &[(&str, &str)] = &[
    (
        "proto/shop/widgets/v1/widgets.proto",
        include_str!("../template/proto/shop/widgets/v1/widgets.proto"),
    ),
    (
        "services/widgets/Cargo.toml",
        include_str!("../template/services/widgets/Cargo.toml.tmpl"),
    ),
    (
        "services/widgets/src/lib.rs",
        include_str!("../template/services/widgets/src/lib.rs"),
    ),
    (
        "services/widgets/src/api.rs",
        include_str!("../template/services/widgets/src/api.rs"),
    ),
    (
        "services/widgets/src/domain.rs",
        include_str!("../template/services/widgets/src/domain.rs"),
    ),
    (
        "services/widgets/src/error.rs",
        include_str!("../template/services/widgets/src/error.rs"),
    ),
    (
        "services/widgets/src/events.rs",
        include_str!("../template/services/widgets/src/events.rs"),
    ),
    (
        "services/widgets/src/feed.rs",
        include_str!("../template/services/widgets/src/feed.rs"),
    ),
    (
        "services/widgets/src/migration.rs",
        include_str!("../template/services/widgets/src/migration.rs"),
    ),
    (
        "services/widgets/src/store.rs",
        include_str!("../template/services/widgets/src/store.rs"),
    ),
    (
        "services/widgets/tests/widgets.rs",
        include_str!("../template/services/widgets/tests/widgets.rs"),
    ),
];
