//! The OpenAPI document as consumers read it: it parses with `openapiv3` (the model the Rust
//! generator progenitor uses) as OpenAPI 3.0, uses no JSON Schema form that 3.0 lacks, and
//! states what the contract promises precisely enough for a generated client to rely on:
//! the headers every response carries, status enums, required and nullable fields,
//! parameter defaults and bounds, and the constraints of ISBNs, money and quantities.

use std::collections::{BTreeMap, BTreeSet};

use bookstore_gateway::openapi::document;
use openapiv3::{
    Header, IntegerType, OpenAPI, Operation, Parameter, ParameterSchemaOrContent, ReferenceOr,
    Response, Schema, SchemaKind, StatusCode, StringType, Type, VariantOrUnknownOrEmpty,
};
use serde_json::Value;

/// The document as JSON.
async fn json() -> Value {
    document().await.expect("the document is generated")
}

/// The document read with the model progenitor uses.
async fn model() -> OpenAPI {
    serde_json::from_value(json().await)
        .unwrap_or_else(|error| panic!("openapiv3 cannot read the document: {error}"))
}

/// Every operation as `(method, path, operation)`.
fn operations(model: &OpenAPI) -> Vec<(String, String, &Operation)> {
    model
        .operations()
        .map(|(path, method, operation)| (method.to_owned(), path.to_owned(), operation))
        .collect()
}

/// Every response of an operation as `(status, response)`.
fn responses<'a>(model: &'a OpenAPI, operation: &'a Operation) -> Vec<(String, &'a Response)> {
    let mut found = Vec::new();
    if let Some(default) = &operation.responses.default {
        found.push(("default".to_owned(), resolve_response(model, default)));
    }
    for (status, response) in &operation.responses.responses {
        let status = match status {
            StatusCode::Code(code) => code.to_string(),
            StatusCode::Range(range) => format!("{range}XX"),
        };
        found.push((status, resolve_response(model, response)));
    }
    found
}

fn resolve_response<'a>(model: &'a OpenAPI, response: &'a ReferenceOr<Response>) -> &'a Response {
    match response {
        ReferenceOr::Item(response) => response,
        ReferenceOr::Reference { reference } => {
            let name = reference
                .strip_prefix("#/components/responses/")
                .unwrap_or_else(|| panic!("{reference} is not a response reference"));
            let components = model.components.as_ref().expect("components");
            match &components.responses[name] {
                ReferenceOr::Item(response) => response,
                ReferenceOr::Reference { reference } => panic!("{reference}: a chain of refs"),
            }
        }
    }
}

/// A response header, resolved.
fn header<'a>(response: &'a Response, name: &str) -> Option<&'a Header> {
    response
        .headers
        .iter()
        .find(|(header_name, _)| header_name.eq_ignore_ascii_case(name))
        .map(|(_, header)| match header {
            ReferenceOr::Item(header) => header,
            ReferenceOr::Reference { reference } => panic!("{name}: unexpected ref {reference}"),
        })
}

fn header_schema(header: &Header) -> &Schema {
    match &header.format {
        ParameterSchemaOrContent::Schema(ReferenceOr::Item(schema)) => schema,
        other => panic!("a header without an inline schema: {other:?}"),
    }
}

/// A component schema by name.
fn component<'a>(model: &'a OpenAPI, name: &str) -> &'a Schema {
    let schemas = &model.components.as_ref().expect("components").schemas;
    match schemas.get(name) {
        Some(ReferenceOr::Item(schema)) => schema,
        other => panic!("components.schemas.{name}: {other:?}"),
    }
}

/// A property schema, following a `$ref` or a one-element `allOf` to a component.
fn property<'a>(model: &'a OpenAPI, schema_name: &str, property: &str) -> &'a Schema {
    let SchemaKind::Type(Type::Object(object)) = &component(model, schema_name).schema_kind else {
        panic!("{schema_name} is not an object");
    };
    let found = object
        .properties
        .get(property)
        .unwrap_or_else(|| panic!("{schema_name}.{property} does not exist"));
    resolve(model, found)
}

fn resolve<'a>(model: &'a OpenAPI, schema: &'a ReferenceOr<Box<Schema>>) -> &'a Schema {
    match schema {
        ReferenceOr::Reference { reference } => component(model, reference_name(reference)),
        ReferenceOr::Item(schema) => match &schema.schema_kind {
            SchemaKind::AllOf { all_of } if all_of.len() == 1 => match &all_of[0] {
                ReferenceOr::Reference { reference } => component(model, reference_name(reference)),
                ReferenceOr::Item(inner) => inner,
            },
            _ => schema,
        },
    }
}

fn reference_name(reference: &str) -> &str {
    reference
        .strip_prefix("#/components/schemas/")
        .unwrap_or_else(|| panic!("{reference} is not a schema reference"))
}

fn string(schema: &Schema) -> &StringType {
    match &schema.schema_kind {
        SchemaKind::Type(Type::String(string)) => string,
        other => panic!("not a string: {other:?}"),
    }
}

fn integer(schema: &Schema) -> &IntegerType {
    match &schema.schema_kind {
        SchemaKind::Type(Type::Integer(integer)) => integer,
        other => panic!("not an integer: {other:?}"),
    }
}

fn required(model: &OpenAPI, schema_name: &str) -> Vec<String> {
    match &component(model, schema_name).schema_kind {
        SchemaKind::Type(Type::Object(object)) => object.required.clone(),
        other => panic!("{schema_name} is not an object: {other:?}"),
    }
}

/// The schema of a parameter of an operation.
fn parameter<'a>(operation: &'a Operation, name: &str) -> (&'a Parameter, &'a Schema) {
    for parameter in &operation.parameters {
        let ReferenceOr::Item(parameter) = parameter else {
            panic!("a parameter by reference");
        };
        let data = parameter.parameter_data_ref();
        if data.name == name {
            let ParameterSchemaOrContent::Schema(ReferenceOr::Item(schema)) = &data.format else {
                panic!("{name} has no inline schema");
            };
            return (parameter, schema);
        }
    }
    panic!("no parameter {name}");
}

fn operation<'a>(model: &'a OpenAPI, id: &str) -> &'a Operation {
    operations(model)
        .into_iter()
        .map(|(_, _, operation)| operation)
        .find(|operation| operation.operation_id.as_deref() == Some(id))
        .unwrap_or_else(|| panic!("no operation {id}"))
}

/// Every JSON value in `value`, with its path, depth first.
fn walk<'a>(value: &'a Value, path: String, found: &mut Vec<(String, &'a Value)>) {
    found.push((path.clone(), value));
    match value {
        Value::Object(object) => {
            for (key, child) in object {
                walk(child, format!("{path}/{key}"), found);
            }
        }
        Value::Array(array) => {
            for (index, child) in array.iter().enumerate() {
                walk(child, format!("{path}/{index}"), found);
            }
        }
        _ => {}
    }
}

#[actix_web::test]
async fn the_document_is_openapi_3_0_and_reads_with_the_model_rust_generators_use() {
    let model = model().await;
    assert_eq!(model.openapi, "3.0.3");
    assert_eq!(
        model.info.license.as_ref().expect("a license").name,
        "MIT OR Apache-2.0"
    );
    assert!(operations(&model).len() >= 14);
}

#[actix_web::test]
async fn the_document_uses_no_json_schema_form_that_openapi_3_0_lacks() {
    let document = json().await;
    let mut values = Vec::new();
    walk(&document, String::new(), &mut values);
    for (path, value) in values {
        let Value::Object(object) = value else {
            continue;
        };
        if let Some(kind) = object.get("type") {
            assert!(
                kind.is_string() || path.ends_with("/properties"),
                "{path}: type {kind}"
            );
        }
        for key in ["const", "$defs", "$schema", "prefixItems"] {
            if object.contains_key(key) && !path.ends_with("/properties") {
                panic!("{path} has `{key}`");
            }
        }
        if object.get("default") == Some(&Value::Null) && !path.ends_with("/properties") {
            panic!("{path} has `default: null`: TypeScript generators make such a field required");
        }
    }
}

#[actix_web::test]
async fn every_reference_points_at_a_schema_the_document_defines() {
    let document = json().await;
    let mut values = Vec::new();
    walk(&document, String::new(), &mut values);
    let schemas = document["components"]["schemas"]
        .as_object()
        .expect("schemas");
    for (path, value) in values {
        if let Some(reference) = value.get("$ref").and_then(Value::as_str) {
            let name = reference_name(reference);
            assert!(
                schemas.contains_key(name),
                "{path}: {reference} is not defined"
            );
        }
    }
}

#[actix_web::test]
async fn every_response_declares_its_request_id() {
    let model = model().await;
    let mut count = 0;
    for (method, path, operation) in operations(&model) {
        for (status, response) in responses(&model, operation) {
            let request_id = header(response, "X-Request-Id")
                .unwrap_or_else(|| panic!("{method} {path} {status} has no X-Request-Id"));
            assert!(request_id.required, "{method} {path} {status}");
            assert_eq!(
                string(header_schema(request_id)).max_length,
                Some(128),
                "{method} {path} {status}"
            );
            count += 1;
        }
    }
    assert!(count > 80, "only {count} responses");
}

#[actix_web::test]
async fn every_rate_limited_response_declares_how_long_to_wait() {
    let model = model().await;
    let mut count = 0;
    for (method, path, operation) in operations(&model) {
        for (status, response) in responses(&model, operation) {
            if status != "429" {
                continue;
            }
            let retry_after = header(response, "Retry-After")
                .unwrap_or_else(|| panic!("{method} {path} 429 has no Retry-After"));
            assert!(retry_after.required, "{method} {path}");
            assert_eq!(integer(header_schema(retry_after)).minimum, Some(1));
            count += 1;
        }
    }
    let api_operations = operations(&model)
        .iter()
        .filter(|(_, path, _)| path.starts_with("/api"))
        .count();
    assert_eq!(
        count, api_operations,
        "every /api operation documents its 429"
    );
}

#[actix_web::test]
async fn replays_are_declared_on_the_storable_answers_of_operations_that_take_a_key() {
    let model = model().await;
    let mut takes_key = BTreeSet::new();
    for (method, path, operation) in operations(&model) {
        let id = operation.operation_id.clone().expect("an operation id");
        let key = operation.parameters.iter().any(|parameter| {
            matches!(parameter, ReferenceOr::Item(Parameter::Header { parameter_data, .. })
                if parameter_data.name == "Idempotency-Key" && !parameter_data.required)
        });
        if key {
            takes_key.insert(id.clone());
        }
        for (status, response) in responses(&model, operation) {
            let storable =
                status.starts_with('2') || ["402", "404", "409", "422"].contains(&status.as_str());
            let declared = header(response, "Idempotent-Replayed");
            assert_eq!(
                declared.is_some(),
                key && storable,
                "{method} {path} ({id}) {status}: Idempotent-Replayed"
            );
            if let Some(declared) = declared {
                assert!(!declared.required);
                assert_eq!(
                    string(header_schema(declared)).enumeration,
                    [Some("true".to_owned())]
                );
            }
        }
    }
    assert_eq!(
        takes_key,
        BTreeSet::from([
            "cancel_order".to_owned(),
            "create_delivery".to_owned(),
            "create_delivery_event".to_owned(),
            "create_order".to_owned()
        ])
    );
}

#[actix_web::test]
async fn every_status_field_is_an_enum_of_the_contract_values() {
    let model = model().await;
    let delivery: &[&str] = &[
        "scheduled",
        "dispatched",
        "in_transit",
        "out_for_delivery",
        "attempted_delivery",
        "delivered",
        "failed",
        "returned_to_sender",
        "cancelled",
    ];
    let expected: BTreeMap<&str, &[&str]> = BTreeMap::from([
        ("Order", &["confirmed", "cancelled"][..]),
        ("Payment", &["captured", "refunded"][..]),
        ("Delivery", delivery),
        ("TrackingEntryBody", delivery),
        // A carrier reports what happened; `scheduled` and `cancelled` are the shop's.
        ("CarrierUpdateRequest", &delivery[1..8]),
        ("Health", &["live", "ready"][..]),
    ]);
    let schemas = &model.components.as_ref().expect("components").schemas;
    let mut checked = BTreeSet::new();
    for name in schemas.keys() {
        let SchemaKind::Type(Type::Object(object)) = &component(&model, name).schema_kind else {
            continue;
        };
        if !object.properties.contains_key("status") {
            continue;
        }
        let status = property(&model, name, "status");
        if name == "Problem" {
            let status = integer(status);
            assert_eq!((status.minimum, status.maximum), (Some(400), Some(599)));
            continue;
        }
        let values: Vec<&str> = string(status)
            .enumeration
            .iter()
            .map(|value| value.as_deref().expect("no null status"))
            .collect();
        assert_eq!(
            Some(&values.as_slice()),
            expected.get(name.as_str()),
            "{name}.status"
        );
        checked.insert(name.as_str());
    }
    assert_eq!(checked, expected.keys().copied().collect());
}

#[actix_web::test]
async fn pages_always_carry_a_next_cursor_that_is_null_on_the_last_page() {
    let model = model().await;
    for page in ["BookPage", "OrderPage"] {
        assert_eq!(required(&model, page), ["items", "next_cursor"], "{page}");
        assert!(
            property(&model, page, "next_cursor").schema_data.nullable,
            "{page}"
        );
    }
}

#[actix_web::test]
async fn page_parameters_default_to_twenty_within_one_to_one_hundred_and_the_cursor_is_opaque() {
    let model = model().await;
    for id in ["list_books", "list_orders"] {
        let operation = operation(&model, id);
        let (limit_parameter, limit) = parameter(operation, "limit");
        assert!(!limit_parameter.parameter_data_ref().required, "{id}");
        assert_eq!(limit.schema_data.default, Some(Value::from(20)), "{id}");
        let bounds = integer(limit);
        assert_eq!(
            (bounds.minimum, bounds.maximum),
            (Some(1), Some(100)),
            "{id}"
        );
        assert_eq!(
            bounds.format,
            VariantOrUnknownOrEmpty::Item(openapiv3::IntegerFormat::Int32),
            "{id}"
        );
        let (_, cursor) = parameter(operation, "cursor");
        assert_eq!(string(cursor).pattern, None, "{id}: the cursor is opaque");
    }
}

#[actix_web::test]
async fn no_parameter_is_nullable() {
    let model = model().await;
    for (method, path, operation) in operations(&model) {
        for parameter in &operation.parameters {
            let ReferenceOr::Item(parameter) = parameter else {
                continue;
            };
            let data = parameter.parameter_data_ref();
            if let ParameterSchemaOrContent::Schema(ReferenceOr::Item(schema)) = &data.format {
                // Neither `nullable` nor a `null` branch (an optional enum's `anyOf`).
                let text = serde_json::to_string(schema).expect("a schema serializes");
                assert!(
                    !schema.schema_data.nullable && !text.contains("[null]"),
                    "{method} {path} {}: {text}",
                    data.name
                );
            }
        }
    }
}

#[actix_web::test]
async fn public_operations_say_that_they_need_no_key() {
    let model = model().await;
    let mut public = BTreeSet::new();
    for (method, path, operation) in operations(&model) {
        if !path.starts_with("/api") {
            assert_eq!(operation.security, Some(Vec::new()), "{method} {path}");
            public.insert(format!("{method} {path}"));
        }
    }
    assert_eq!(
        public,
        BTreeSet::from([
            "get /health/live".to_owned(),
            "get /health/ready".to_owned(),
            "get /metrics".to_owned()
        ])
    );
}

#[actix_web::test]
async fn the_metrics_scrape_is_documented_as_text() {
    let model = model().await;
    let operation = operation(&model, "get_metrics");
    let responses = responses(&model, operation);
    let (_, ok) = responses
        .iter()
        .find(|(status, _)| status == "200")
        .expect("200");
    assert!(
        ok.content.contains_key("text/plain"),
        "{:?}",
        ok.content.keys()
    );
}

#[actix_web::test]
async fn quantities_are_one_to_one_hundred_and_money_is_never_negative() {
    let model = model().await;
    for (schema, field) in [("OrderItemRequest", "quantity"), ("OrderLine", "quantity")] {
        let quantity = integer(property(&model, schema, field));
        assert_eq!(
            (quantity.minimum, quantity.maximum),
            (Some(1), Some(100)),
            "{schema}.{field}"
        );
    }
    let schemas = &model.components.as_ref().expect("components").schemas;
    let mut cents = 0;
    for name in schemas.keys() {
        let SchemaKind::Type(Type::Object(object)) = &component(&model, name).schema_kind else {
            continue;
        };
        for field in object
            .properties
            .keys()
            .filter(|field| field.ends_with("_cents"))
        {
            assert_eq!(
                integer(property(&model, name, field)).minimum,
                Some(0),
                "{name}.{field}"
            );
            cents += 1;
        }
    }
    assert!(cents >= 6, "only {cents} money fields");
}

#[actix_web::test]
async fn isbns_currencies_and_tracking_numbers_carry_their_patterns() {
    let model = model().await;
    let pattern = |schema: &str, field: &str| {
        string(property(&model, schema, field))
            .pattern
            .clone()
            .unwrap_or_else(|| panic!("{schema}.{field} has no pattern"))
    };
    // Output: always the bare 13 digits.
    for schema in ["Book", "OrderLine"] {
        assert_eq!(pattern(schema, "isbn"), "^97[89][0-9]{10}$", "{schema}");
    }
    // Input: ISBN-13 or ISBN-10 with hyphens or spaces, the same everywhere.
    let input = pattern("NewBookRequest", "isbn");
    assert_eq!(input, "^[0-9Xx -]{10,17}$");
    assert_eq!(pattern("OrderItemRequest", "isbn"), input);
    for id in ["get_book", "update_book"] {
        let (_, isbn) = parameter(operation(&model, id), "isbn");
        assert_eq!(string(isbn).pattern.as_ref(), Some(&input), "{id}");
    }
    for schema in ["Book", "Order"] {
        assert_eq!(pattern(schema, "currency"), "^[A-Z]{3}$", "{schema}");
    }
    assert_eq!(pattern("Delivery", "tracking_number"), "^BK[0-9A-Z]{10}$");
}

#[actix_web::test]
async fn optional_request_fields_are_optional_for_generated_clients() {
    let model = model().await;
    for (schema, field) in [
        ("Address", "line2"),
        ("NewBookRequest", "currency"),
        ("ScheduleDeliveryRequest", "requested_date"),
    ] {
        assert!(
            !required(&model, schema).iter().any(|name| name == field),
            "{schema}.{field}"
        );
        let property = property(&model, schema, field);
        assert!(property.schema_data.nullable, "{schema}.{field}");
        assert_eq!(property.schema_data.default, None, "{schema}.{field}");
    }
}
