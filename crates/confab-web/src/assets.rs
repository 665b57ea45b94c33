//! The web assets every node serves: the JS SDK at `/sdk/confab.js` (with its TypeScript
//! declarations) and the chat page at `/`. They are compiled into the binary, so a node serves
//! them wherever it runs.

use actix_web::{web, HttpResponse};

const SDK: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../web/sdk/confab.js"
));
const SDK_TYPES: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../web/sdk/confab.d.ts"
));
const PAGE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../web/app/index.html"
));
const APP: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../web/app/app.js"));
const STYLE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../web/app/style.css"
));

fn asset(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header(("Cache-Control", "no-cache"))
        .body(body)
}

/// Registers the asset routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/",
        web::get().to(|| async { asset("text/html; charset=utf-8", PAGE) }),
    )
    .route(
        "/app.js",
        web::get().to(|| async { asset("text/javascript; charset=utf-8", APP) }),
    )
    .route(
        "/style.css",
        web::get().to(|| async { asset("text/css; charset=utf-8", STYLE) }),
    )
    .route(
        "/sdk/confab.js",
        web::get().to(|| async { asset("text/javascript; charset=utf-8", SDK) }),
    )
    .route(
        "/sdk/confab.d.ts",
        web::get().to(|| async { asset("application/typescript; charset=utf-8", SDK_TYPES) }),
    );
}
