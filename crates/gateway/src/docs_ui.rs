//! Interactive API docs at `/docs`, served entirely from the binary.
//!
//! The Swagger UI JavaScript and CSS are embedded by the `swagger-ui-dist` crate, so the
//! page works on a machine with no internet access. The page reads `/openapi.json`.
//!
//! The page itself is written here, not by the crate: it answers 200 at both `/docs` (the
//! address the README and the start-up log print) and `/docs/`, and refers to its assets
//! by absolute paths, so it works from either address and never echoes the request's URL.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use swagger_ui_dist::{ApiDefinition, OpenApiSource};

use crate::app::OPENAPI_PATH;

/// Where the docs are served.
pub const DOCS_PATH: &str = "/docs";

/// The docs page: Swagger UI reading the OpenAPI document ([`OPENAPI_PATH`]; `concat!` takes
/// only literals, so a test holds the two together), with its assets under `/docs/`.
const DOCS_PAGE: &str = concat!(
    r#"<!DOCTYPE html>
<html lang="en">
<head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>Bookstore API</title>
    <link rel="stylesheet" href="/docs/swagger-ui.css" />
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js" crossorigin></script>
<script>
    window.onload = () => {
        window.ui = SwaggerUIBundle({ url: '"#,
    "/openapi.json",
    r#"', dom_id: '#swagger-ui' });
    };
</script>
</body>
</html>
"#
);

async fn docs_page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type(header::ContentType::html())
        .body(DOCS_PAGE)
}

/// Registers the page at `/docs` and `/docs/`, and the UI's assets under `/docs/`.
pub fn configure(config: &mut web::ServiceConfig) {
    config
        .service(web::resource([DOCS_PATH, "/docs/"]).route(web::get().to(docs_page)))
        .service(swagger_ui_dist::generate_scope(ApiDefinition {
            uri_prefix: DOCS_PATH,
            api_definition: OpenApiSource::Uri(OPENAPI_PATH),
            title: Some("Bookstore API"),
        }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_reads_the_served_openapi_document_and_the_embedded_assets() {
        assert!(DOCS_PAGE.contains(&format!("url: '{OPENAPI_PATH}'")));
        for asset in ["/docs/swagger-ui.css", "/docs/swagger-ui-bundle.js"] {
            assert!(DOCS_PAGE.contains(asset), "{asset}");
        }
    }
}
