//! The one post-processing step between the document apistos builds and the one the server
//! serves: the facts apistos has no way to state, each a rule over the whole document.
//!
//! - **Public operations say so.** An operation with no API-key extractor gets
//!   `security: []` (apistos omits the field, which reads as "inherit the top level").
//! - **Replays are declared where they can happen.** `Idempotent-Replayed` is declared on
//!   the responses of operations that take an `Idempotency-Key`, and only on the statuses a
//!   stored response can have (see [`REPLAYABLE_STATUSES`]). apistos builds response
//!   headers from the response type, which does not know whether its operation takes the
//!   key.
//! - **Every component schema is an OpenAPI 3.0 schema.** apistos runs schemars's OpenAPI
//!   3.0 transforms on the schemas of request and response bodies, but not on the schemas
//!   they refer to, which keep JSON Schema 2020-12 forms (`"type": ["string", "null"]`,
//!   `const`) that 3.0 does not have. The same transforms are applied to every component
//!   schema.
//! - **Parameters are never `null`.** apistos copies an `Option` field's schema into its
//!   query parameter, `nullable` included (or, for an optional enum, an `anyOf` with a
//!   `null` branch); a client leaves an optional parameter out instead, so parameter
//!   schemas lose `nullable` and the `null` branch.
//!
//! Everything else (schemas, bounds, enums, the other headers) is stated at its source: the
//! wire types' attributes, the routes' `#[api_operation]`s and `super::headers`.

use apistos::schemars::Schema;
use apistos::schemars::generate::SchemaSettings;
use serde_json::{Map, Value};

use super::headers;
use crate::http::extract::IDEMPOTENCY_KEY_HEADER;

/// The statuses an idempotent replay can have besides success: the problems the work behind
/// a claimed key answers (`Idempotent::run` stores every response but a 5xx). The
/// 400, 401, 413, 415 and 429 problems are answered before a key is claimed, so are never
/// stored.
const REPLAYABLE_STATUSES: [&str; 4] = ["402", "404", "409", "422"];

/// The HTTP methods a path item may hold operations for.
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Applies every rule of this module to `document`, in place. Applying it twice changes
/// nothing more.
pub fn post_process(document: &mut Value) {
    transform_component_schemas(document);
    for operation in operations(document) {
        declare_public_operations(operation);
        declare_idempotent_replays(operation);
        drop_nullable_from_parameters(operation);
    }
}

/// Every operation object of the document.
fn operations(document: &mut Value) -> impl Iterator<Item = &mut Map<String, Value>> {
    document
        .get_mut("paths")
        .and_then(Value::as_object_mut)
        .into_iter()
        .flat_map(|paths| paths.values_mut())
        .filter_map(Value::as_object_mut)
        .flat_map(|item| {
            item.iter_mut()
                .filter(|(method, _)| METHODS.contains(&method.as_str()))
                .filter_map(|(_, operation)| operation.as_object_mut())
        })
}

fn transform_component_schemas(document: &mut Value) {
    let Some(schemas) = document
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    let mut transforms = SchemaSettings::openapi3().transforms;
    for value in schemas.values_mut() {
        let Ok(mut schema) = Schema::try_from(value.take()) else {
            continue;
        };
        for transform in &mut transforms {
            transform.transform(&mut schema);
        }
        *value = schema.to_value();
    }
}

fn declare_public_operations(operation: &mut Map<String, Value>) {
    operation
        .entry("security")
        .or_insert_with(|| Value::Array(Vec::new()));
}

fn takes_idempotency_key(operation: &Map<String, Value>) -> bool {
    operation
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|parameter| {
            parameter["in"] == "header"
                && parameter["name"]
                    .as_str()
                    .is_some_and(|name| name.eq_ignore_ascii_case(IDEMPOTENCY_KEY_HEADER))
        })
}

fn declare_idempotent_replays(operation: &mut Map<String, Value>) {
    if !takes_idempotency_key(operation) {
        return;
    }
    let (name, header) = headers::idempotent_replayed();
    let Ok(header) = serde_json::to_value(header) else {
        return;
    };
    let Some(responses) = operation
        .get_mut("responses")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    for (status, response) in responses.iter_mut() {
        if !(status.starts_with('2') || REPLAYABLE_STATUSES.contains(&status.as_str())) {
            continue;
        }
        if let Some(response) = response.as_object_mut() {
            let declared = response
                .entry("headers")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Some(declared) = declared.as_object_mut() {
                declared.insert(name.clone(), header.clone());
            }
        }
    }
}

fn drop_nullable_from_parameters(operation: &mut Map<String, Value>) {
    let parameters = operation
        .get_mut("parameters")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten();
    for parameter in parameters {
        let Some(schema) = parameter.get_mut("schema") else {
            continue;
        };
        if let Some(not_null) = without_null_branch(schema) {
            *schema = not_null;
        }
        if let Some(schema) = schema.as_object_mut() {
            schema.remove("nullable");
        }
    }
}

/// The other branch of an `anyOf` of a schema and `null` (the form of an optional enum or
/// struct), if `schema` is one.
fn without_null_branch(schema: &Value) -> Option<Value> {
    let branches = schema.get("anyOf")?.as_array()?;
    let is_null = |branch: &Value| branch.get("enum") == Some(&Value::Array(vec![Value::Null]));
    match branches.as_slice() {
        [value, null] | [null, value] if is_null(null) && !is_null(value) => Some(value.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn problem(description: &str) -> Value {
        json!({ "description": description, "content": { "application/problem+json": {} } })
    }

    /// A document with a public operation, a secured one, and one that takes an
    /// `Idempotency-Key`, in the shapes apistos produces.
    fn raw_document() -> Value {
        json!({
            "openapi": "3.0.3",
            "paths": {
                "/health/live": {
                    "get": { "responses": { "200": { "description": "live" } } }
                },
                "/api/books": {
                    "get": {
                        "security": [{ "api_key": [] }],
                        "parameters": [{
                            "name": "limit", "in": "query", "required": false,
                            "schema": { "type": "integer", "minimum": 1, "nullable": true }
                        }, {
                            "name": "status", "in": "query", "required": false,
                            "schema": { "description": "d", "anyOf": [
                                { "$ref": "#/components/schemas/Status" },
                                { "nullable": true, "enum": [null] }
                            ] }
                        }],
                        "responses": {
                            "200": { "description": "a page" },
                            "404": problem("not found"),
                        }
                    }
                },
                "/api/orders": {
                    "parameters": [],
                    "post": {
                        "security": [{ "api_key": [] }],
                        "parameters": [{
                            "name": "Idempotency-Key", "in": "header", "required": false,
                            "schema": { "type": "string" }
                        }],
                        "responses": {
                            "201": { "description": "created", "headers": { "Location": {} } },
                            "400": problem("malformed"),
                            "401": problem("no key"),
                            "402": problem("declined"),
                            "404": problem("not found"),
                            "409": problem("conflict"),
                            "422": problem("invalid"),
                            "429": problem("slow down"),
                            "503": problem("unavailable"),
                        }
                    }
                }
            },
            "components": {
                "schemas": {
                    "Page": { "properties": { "next": { "type": "string", "nullable": true } } },
                    "Address": { "properties": { "line2": { "type": ["string", "null"], "maxLength": 200 } } },
                    "Status": { "oneOf": [{ "const": "open" }, { "const": "shut" }] }
                }
            }
        })
    }

    fn processed() -> Value {
        let mut document = raw_document();
        post_process(&mut document);
        document
    }

    fn header_names(response: &Value) -> Vec<&str> {
        response["headers"]
            .as_object()
            .map(|headers| headers.keys().map(String::as_str).collect())
            .unwrap_or_default()
    }

    #[test]
    fn operations_without_an_api_key_declare_an_empty_security_requirement() {
        let document = processed();
        assert_eq!(
            document["paths"]["/health/live"]["get"]["security"],
            json!([])
        );
        assert_eq!(
            document["paths"]["/api/books"]["get"]["security"],
            json!([{ "api_key": [] }])
        );
    }

    #[test]
    fn replays_are_declared_on_the_storable_responses_of_idempotent_operations_only() {
        let document = processed();
        let responses = &document["paths"]["/api/orders"]["post"]["responses"];
        for status in ["201", "402", "404", "409", "422"] {
            assert!(
                header_names(&responses[status]).contains(&"Idempotent-Replayed"),
                "{status}"
            );
        }
        for status in ["400", "401", "429", "503"] {
            assert!(
                !header_names(&responses[status]).contains(&"Idempotent-Replayed"),
                "{status}"
            );
        }
        assert_eq!(
            header_names(&responses["201"]),
            ["Location", "Idempotent-Replayed"],
            "headers already declared are kept"
        );
        let books = &document["paths"]["/api/books"]["get"]["responses"];
        assert!(header_names(&books["200"]).is_empty());
        assert!(header_names(&books["404"]).is_empty());
    }

    #[test]
    fn the_replay_header_is_an_optional_string_that_can_only_be_true() {
        let document = processed();
        let header = &document["paths"]["/api/orders"]["post"]["responses"]["201"]["headers"]["Idempotent-Replayed"];
        assert_eq!(
            header["schema"],
            json!({ "type": "string", "enum": ["true"] })
        );
        assert!(header.get("required").is_none());
    }

    #[test]
    fn parameter_schemas_lose_nullable_and_body_schemas_keep_it() {
        let document = processed();
        assert_eq!(
            document["paths"]["/api/books"]["get"]["parameters"][0]["schema"],
            json!({ "type": "integer", "minimum": 1 })
        );
        assert_eq!(
            document["paths"]["/api/books"]["get"]["parameters"][1]["schema"],
            json!({ "$ref": "#/components/schemas/Status" })
        );
        assert_eq!(
            document["components"]["schemas"]["Page"]["properties"]["next"]["nullable"],
            true
        );
    }

    #[test]
    fn component_schemas_lose_the_json_schema_forms_openapi_3_0_lacks() {
        let document = processed();
        let schemas = &document["components"]["schemas"];
        assert_eq!(
            schemas["Address"]["properties"]["line2"],
            json!({ "type": "string", "maxLength": 200, "nullable": true })
        );
        assert_eq!(
            schemas["Status"],
            json!({ "oneOf": [{ "enum": ["open"] }, { "enum": ["shut"] }] })
        );
    }

    #[test]
    fn processing_twice_gives_the_same_document() {
        let once = processed();
        let mut twice = once.clone();
        post_process(&mut twice);
        assert_eq!(once, twice);
    }

    #[test]
    fn a_document_without_paths_is_left_alone() {
        let mut document = json!({ "openapi": "3.0.3" });
        post_process(&mut document);
        assert_eq!(document, json!({ "openapi": "3.0.3" }));
    }
}
