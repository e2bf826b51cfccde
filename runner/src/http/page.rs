//! `/`: the status page. Plain HTML and a few lines of script that poll `/status.json` every
//! second and update the table in place; no framework, nothing fetched from elsewhere.

use axum::http::header;
use axum::response::IntoResponse;

const PAGE: &str = include_str!("page.html");

pub(super) async fn page() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-store")],
        PAGE,
    )
}
