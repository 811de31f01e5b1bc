//! The OpenAPI document: the committed `docs/openapi.json` is what the gateway generates (a
//! snapshot: `UPDATE_EXPECT=1` rewrites it, which is what `cargo xtask openapi` does), the
//! served `/openapi.json` is the same document, and its structure follows the contract
//! (operation ids, the API key on every `/api` operation, problem+json for every error).

use std::collections::BTreeSet;

use actix_web::http::Method;
use bookstore_gateway::openapi::{document, document_text};
use expect_test::expect_file;
use serde_json::Value;

use crate::helpers::spawn_app;

/// `cargo xtask openapi` runs this test, by this name, with `UPDATE_EXPECT=1`.
#[actix_web::test]
async fn the_committed_openapi_document_is_the_generated_one() {
    let generated = document_text().await.expect("the document is generated");
    expect_file!["../../../../docs/openapi.json"].assert_eq(&generated);
}

#[actix_web::test]
async fn the_served_document_is_the_generated_one() {
    let app = spawn_app().await;
    let served = app
        .request(Method::GET, "/openapi.json")
        .send()
        .await
        .success(200);
    assert_eq!(served, document().await.expect("the document is generated"));
}

fn operations(document: &Value) -> Vec<(String, String, &Value)> {
    let mut found = Vec::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("a path item") {
            if [
                "get", "put", "post", "delete", "patch", "head", "options", "trace",
            ]
            .contains(&method.as_str())
            {
                found.push((method.clone(), path.clone(), operation));
            }
        }
    }
    found
}

fn is_operation_id(id: &str) -> bool {
    // ^[a-z]+_[a-z_]+$
    match id.split_once('_') {
        Some((verb, rest)) => {
            !verb.is_empty()
                && verb.bytes().all(|b| b.is_ascii_lowercase())
                && !rest.is_empty()
                && rest.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
        }
        None => false,
    }
}

#[actix_web::test]
async fn the_document_describes_exactly_the_operations_of_the_contract() {
    let document = document().await.unwrap();
    let found: BTreeSet<(String, String)> = operations(&document)
        .into_iter()
        .map(|(method, path, _)| (method, path))
        .collect();
    let expected: BTreeSet<(String, String)> = [
        ("get", "/api/books"),
        ("post", "/api/books"),
        ("get", "/api/books/{isbn}"),
        ("patch", "/api/books/{isbn}"),
        ("get", "/api/orders"),
        ("post", "/api/orders"),
        ("get", "/api/orders/{id}"),
        ("post", "/api/orders/{id}/cancel"),
        ("get", "/api/orders/{id}/delivery"),
        ("post", "/api/delivery"),
        ("get", "/api/delivery/{id}"),
        ("post", "/api/delivery/{id}/events"),
        ("get", "/api/deliveries"),
        ("get", "/api/webhook-endpoints"),
        ("post", "/api/webhook-endpoints"),
        ("get", "/api/webhook-endpoints/{id}"),
        ("patch", "/api/webhook-endpoints/{id}"),
        ("delete", "/api/webhook-endpoints/{id}"),
        ("post", "/api/webhook-endpoints/{id}/rotate-secret"),
        ("get", "/api/webhook-endpoints/{id}/deliveries"),
        ("post", "/api/webhook-endpoints/{id}/test"),
        ("post", "/api/events/{id}/redeliver"),
        ("get", "/api/events"),
        ("get", "/api/events/{id}"),
        ("get", "/health/live"),
        ("get", "/health/ready"),
        ("get", "/metrics"),
    ]
    .into_iter()
    .map(|(method, path)| (method.to_owned(), path.to_owned()))
    .collect();
    let api_found: BTreeSet<_> = found
        .iter()
        .filter(|(_, path)| path.starts_with("/api"))
        .cloned()
        .collect();
    let api_expected: BTreeSet<_> = expected
        .iter()
        .filter(|(_, path)| path.starts_with("/api"))
        .cloned()
        .collect();
    assert_eq!(api_found, api_expected);
    for operation in &expected {
        assert!(found.contains(operation), "{operation:?} is not documented");
    }
}

#[actix_web::test]
async fn every_operation_has_a_verb_resource_operation_id() {
    let document = document().await.unwrap();
    let mut ids = BTreeSet::new();
    for (method, path, operation) in operations(&document) {
        let id = operation["operationId"]
            .as_str()
            .unwrap_or_else(|| panic!("{method} {path} has no operationId"));
        assert!(
            is_operation_id(id),
            "{method} {path}: {id:?} is not <verb>_<resource>"
        );
        assert!(ids.insert(id.to_owned()), "{id} is used twice");
    }
}

#[actix_web::test]
async fn every_api_operation_requires_the_api_key_and_the_probes_do_not() {
    let document = document().await.unwrap();
    let scheme = &document["components"]["securitySchemes"]["api_key"];
    assert_eq!(scheme["type"], "apiKey");
    assert_eq!(scheme["in"], "header");
    assert_eq!(scheme["name"], "X-API-Key");
    for (method, path, operation) in operations(&document) {
        let requirements = operation["security"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let needs_key = requirements.iter().any(|r| r.get("api_key").is_some());
        if path.starts_with("/api") {
            assert!(
                needs_key,
                "{method} {path} does not require api_key: {requirements:?}"
            );
            assert!(
                requirements
                    .iter()
                    .all(|r| r.as_object().is_some_and(|o| !o.is_empty())),
                "{method} {path} also allows anonymous calls: {requirements:?}"
            );
        } else {
            assert!(!needs_key, "{method} {path} is public but requires a key");
        }
    }
}

#[actix_web::test]
async fn every_error_response_is_a_problem_json_problem() {
    let document = document().await.unwrap();
    let problem = &document["components"]["schemas"]["Problem"];
    let required: BTreeSet<&str> = problem["required"]
        .as_array()
        .expect("Problem.required")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for field in ["type", "title", "status", "detail"] {
        assert!(required.contains(field), "Problem does not require {field}");
    }
    for (method, path, operation) in operations(&document) {
        let responses = operation["responses"].as_object().expect("responses");
        for (status, response) in responses {
            if !(status.starts_with('4') || status.starts_with('5')) {
                continue;
            }
            let content = response["content"]
                .as_object()
                .unwrap_or_else(|| panic!("{method} {path} {status}"));
            let keys: Vec<&String> = content.keys().collect();
            assert_eq!(
                keys,
                ["application/problem+json"],
                "{method} {path} {status}"
            );
            assert_eq!(
                content["application/problem+json"]["schema"]["$ref"],
                "#/components/schemas/Problem",
                "{method} {path} {status}"
            );
        }
        if path.starts_with("/api") {
            assert!(
                responses.contains_key("401"),
                "{method} {path} does not document 401"
            );
        }
    }
}

#[actix_web::test]
async fn created_responses_document_their_location_and_money_is_integer_cents() {
    let document = document().await.unwrap();
    for (method, path, operation) in operations(&document) {
        if let Some(created) = operation["responses"].get("201") {
            assert!(
                created["headers"].get("Location").is_some(),
                "{method} {path}: 201 without Location"
            );
        }
    }
    for (name, schema) in document["components"]["schemas"].as_object().unwrap() {
        for (field, property) in schema["properties"].as_object().into_iter().flatten() {
            if field.ends_with("_cents") {
                assert_eq!(property["type"], "integer", "{name}.{field}");
            }
        }
    }
}

#[actix_web::test]
async fn the_docs_page_answers_200_at_the_printed_address_and_its_assets_load() {
    let app = spawn_app().await;
    // The README and the start-up log print `/docs`; `/docs/` works too.
    for path in ["/docs", "/docs/"] {
        let page = app.request(Method::GET, path).send().await;
        assert_eq!(page.status, 200, "{path}: {}", page.text());
        assert!(
            page.header("content-type")
                .unwrap_or_default()
                .starts_with("text/html"),
            "{path}: {:?}",
            page.headers
        );
        let html = page.text();
        assert!(html.contains("url: '/openapi.json'"), "{path}: {html}");
        for (asset, content_type) in [
            ("/docs/swagger-ui.css", "text/css"),
            ("/docs/swagger-ui-bundle.js", "text/javascript"),
        ] {
            assert!(html.contains(asset), "{path} refers to {asset}");
            let loaded = app.request(Method::GET, asset).send().await;
            assert_eq!(loaded.status, 200, "{asset}");
            assert_eq!(loaded.header("content-type"), Some(content_type), "{asset}");
        }
    }
}
