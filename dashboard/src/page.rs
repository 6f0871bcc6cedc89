//! The page: one HTML file, its script and its style, built into the
//! binary (no build step, nothing fetched from elsewhere).

use axum::{http::header, response::IntoResponse};

pub async fn index() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                // Inline style attributes place the waterfall's bars; scripts
                // come from this origin only.
                // No page may frame it.
                "default-src 'self'; style-src 'self' 'unsafe-inline'; script-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
            ),
        ],
        include_str!("../page/index.html"),
    )
}

pub async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../page/app.js"),
    )
}

pub async fn style() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../page/style.css"),
    )
}
