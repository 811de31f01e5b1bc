//! Interactive API docs at `/docs`, served entirely from the binary.
//!
//! The Swagger UI JavaScript and CSS are embedded by the `swagger-ui-dist` crate, so the
//! page works on a machine with no internet access. The page reads `/openapi.json`.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use swagger_ui_dist::{ApiDefinition, OpenApiSource};

use crate::app::OPENAPI_PATH;

/// Where the docs are served.
pub const DOCS_PATH: &str = "/docs";

/// Registers `/docs` (redirecting to `/docs/`) and the UI's assets under it.
pub fn configure(config: &mut web::ServiceConfig) {
    config
        .service(web::resource(DOCS_PATH).route(web::get().to(|| async {
            HttpResponse::PermanentRedirect()
                .insert_header((header::LOCATION, "/docs/"))
                .finish()
        })))
        .service(swagger_ui_dist::generate_scope(ApiDefinition {
            uri_prefix: DOCS_PATH,
            api_definition: OpenApiSource::Uri(OPENAPI_PATH),
            title: Some("Bookstore API"),
        }));
}
