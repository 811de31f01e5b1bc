//! API keys, roles and the extractors that authenticate a request.
//!
//! Keys are never stored or compared in clear: each configured key is kept as its SHA-256
//! digest, and a presented key is hashed and compared with every configured digest in
//! constant time, so neither timing nor an early exit reveals which keys exist. The owner
//! of an order is a [`CustomerId`] derived from that digest; it identifies the key without
//! revealing it.

use std::fmt;
use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use apistos::ApiSecurity;
use bookstore_sales::CustomerId;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::app::AppState;
use crate::http::problem::{ApiError, ProblemKind};

/// The header that carries the API key.
pub const API_KEY_HEADER: &str = "X-API-Key";

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Browse, order, and manage its own orders and deliveries.
    Customer,
    /// Everything a customer can, plus catalogue writes and reading any order.
    Admin,
    /// A warehouse system or a carrier integration: reads any delivery, lists the
    /// deliveries of a day and posts carrier updates (as admin can); otherwise it is a
    /// customer of its own.
    Fulfilment,
}

impl Role {
    fn parse(text: &str) -> Option<Self> {
        match text {
            "customer" => Some(Self::Customer),
            "admin" => Some(Self::Admin),
            "fulfilment" => Some(Self::Fulfilment),
            _ => None,
        }
    }
}

/// A key as configured: its digest, its role and the customer id derived from it.
struct ConfiguredKey {
    digest: [u8; 32],
    role: Role,
    customer: CustomerId,
}

/// The configured API keys.
pub struct ApiKeys {
    keys: Vec<ConfiguredKey>,
    demo: bool,
}

/// Why a `BOOKSTORE_API_KEYS` value could not be read. Never contains a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiKeysError {
    /// An entry is not of the form `key:role`.
    #[error("entry {position} is not of the form KEY:ROLE")]
    MalformedEntry {
        /// 1-based position of the entry in the list.
        position: usize,
    },
    /// A role other than `customer` or `admin`.
    #[error("entry {position} has an unknown role (expected customer, admin or fulfilment)")]
    UnknownRole {
        /// 1-based position of the entry in the list.
        position: usize,
    },
    /// The same key listed twice.
    #[error("entry {position} repeats an earlier key")]
    DuplicateKey {
        /// 1-based position of the entry in the list.
        position: usize,
    },
    /// The list has no entries.
    #[error("no API keys are configured")]
    Empty,
}

/// The demo keys used when no keys are configured.
pub const DEMO_KEYS: &str = "secret123:customer,admin123:admin";

impl ApiKeys {
    /// Parses `key1:customer,key2:admin`. Whitespace around entries is ignored.
    pub fn parse(list: &str) -> Result<Self, ApiKeysError> {
        let mut keys: Vec<ConfiguredKey> = Vec::new();
        for (index, entry) in list
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .enumerate()
        {
            let position = index + 1;
            let (key, role) = entry
                .rsplit_once(':')
                .ok_or(ApiKeysError::MalformedEntry { position })?;
            let key = key.trim();
            if key.is_empty() {
                return Err(ApiKeysError::MalformedEntry { position });
            }
            let role = Role::parse(role.trim()).ok_or(ApiKeysError::UnknownRole { position })?;
            let digest = digest_of(key);
            if keys.iter().any(|k| k.digest == digest) {
                return Err(ApiKeysError::DuplicateKey { position });
            }
            keys.push(ConfiguredKey {
                digest,
                role,
                customer: customer_id_for(&digest),
            });
        }
        if keys.is_empty() {
            return Err(ApiKeysError::Empty);
        }
        Ok(Self { keys, demo: false })
    }

    /// The demo keys `secret123` (customer) and `admin123` (admin).
    pub fn demo() -> Self {
        match Self::parse(DEMO_KEYS) {
            Ok(keys) => Self { demo: true, ..keys },
            Err(_) => unreachable!("the demo key list is valid"),
        }
    }

    /// Whether these are the demo keys.
    pub fn is_demo(&self) -> bool {
        self.demo
    }

    /// How many keys are configured.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no keys are configured (never true for a parsed list).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The caller a presented key stands for, if it is a configured key. Compares with
    /// every configured key, in constant time per key, whatever matches.
    pub fn authenticate(&self, presented: &str) -> Option<Caller> {
        let digest = digest_of(presented);
        let mut found: Option<&ConfiguredKey> = None;
        for key in &self.keys {
            if bool::from(key.digest.ct_eq(&digest)) {
                found = Some(key);
            }
        }
        found.map(|key| Caller {
            customer: key.customer.clone(),
            role: key.role,
        })
    }
}

impl fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeys")
            .field("count", &self.keys.len())
            .field("demo", &self.demo)
            .finish()
    }
}

fn digest_of(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// `key_` and the first 12 bytes of the digest in hex: stable for a key, reveals nothing.
fn customer_id_for(digest: &[u8; 32]) -> CustomerId {
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    CustomerId::new(format!("key_{hex}"))
}

/// An authenticated caller (any role). Taking it as a handler argument requires a valid
/// `X-API-Key` and documents the requirement in the OpenAPI spec.
#[derive(Debug, Clone, ApiSecurity)]
#[openapi_security(
    name = "api_key",
    scheme(
        description = "An API key with the customer, admin or fulfilment role",
        security_type(api_key(name = "X-API-Key", api_key_in = "header"))
    )
)]
pub struct Caller {
    /// Who the key belongs to: the owner recorded on orders.
    pub customer: CustomerId,
    /// What the key may do.
    pub role: Role,
}

impl Caller {
    /// Whether this caller may read a resource owned by `owner`: its own, or any as admin.
    pub fn may_read(&self, owner: &CustomerId) -> bool {
        self.role == Role::Admin || &self.customer == owner
    }

    /// Whether this caller may read any delivery: admin and fulfilment keys.
    pub fn reads_every_delivery(&self) -> bool {
        matches!(self.role, Role::Admin | Role::Fulfilment)
    }
}

/// An authenticated caller with the fulfilment or the admin role (403 for a customer key).
#[derive(Debug, Clone, ApiSecurity)]
#[openapi_security(
    name = "api_key",
    scheme(
        description = "An API key with the customer, admin or fulfilment role",
        security_type(api_key(name = "X-API-Key", api_key_in = "header"))
    )
)]
pub struct FulfilmentCaller(pub Caller);

impl FromRequest for FulfilmentCaller {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            caller_in_role(
                request,
                &[Role::Admin, Role::Fulfilment],
                "this operation needs a fulfilment or admin API key",
            )
            .map(FulfilmentCaller),
        )
    }
}

/// An authenticated caller with the admin role (403 for a customer key).
#[derive(Debug, Clone, ApiSecurity)]
#[openapi_security(
    name = "api_key",
    scheme(
        description = "An API key with the customer, admin or fulfilment role",
        security_type(api_key(name = "X-API-Key", api_key_in = "header"))
    )
)]
pub struct AdminCaller(pub Caller);

fn authenticate(request: &HttpRequest) -> Result<Caller, ApiError> {
    let unauthenticated = || {
        ApiError::new(
            ProblemKind::Unauthenticated,
            "send a valid API key in the X-API-Key header",
        )
    };
    let state = request
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::internal("application state is missing"))?;
    let presented = request
        .headers()
        .get(API_KEY_HEADER)
        .and_then(|value| value.to_str().ok())
        .ok_or_else(unauthenticated)?;
    state
        .api_keys
        .authenticate(presented)
        .ok_or_else(unauthenticated)
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(cached_caller(request))
    }
}

impl FromRequest for AdminCaller {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            caller_in_role(
                request,
                &[Role::Admin],
                "this operation needs an admin API key",
            )
            .map(AdminCaller),
        )
    }
}

/// The caller, if its role is one of `allowed`; 403 saying what it `needs` otherwise.
fn caller_in_role(
    request: &HttpRequest,
    allowed: &[Role],
    needs: &'static str,
) -> Result<Caller, ApiError> {
    let caller = cached_caller(request)?;
    if allowed.contains(&caller.role) {
        Ok(caller)
    } else {
        Err(ApiError::new(ProblemKind::Forbidden, needs))
    }
}

/// Authenticates once per request and remembers the result in the request's extensions, so
/// middleware (rate limiting, logging) and extractors agree on who called.
pub fn cached_caller(request: &HttpRequest) -> Result<Caller, ApiError> {
    if let Some(caller) = request.extensions().get::<Caller>() {
        return Ok(caller.clone());
    }
    let caller = authenticate(request)?;
    request.extensions_mut().insert(caller.clone());
    Ok(caller)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_keys_authenticate_with_their_role() {
        let keys = ApiKeys::parse(" alpha:customer , beta:admin ").unwrap();
        assert_eq!(keys.authenticate("alpha").unwrap().role, Role::Customer);
        assert_eq!(keys.authenticate("beta").unwrap().role, Role::Admin);
        assert!(keys.authenticate("gamma").is_none());
        assert!(keys.authenticate("").is_none());
        assert!(keys.authenticate("alpha ").is_none());
    }

    #[test]
    fn malformed_key_lists_are_rejected_without_echoing_keys() {
        for (list, expected) in [
            ("alpha", ApiKeysError::MalformedEntry { position: 1 }),
            (
                "alpha:customer,:admin",
                ApiKeysError::MalformedEntry { position: 2 },
            ),
            ("alpha:root", ApiKeysError::UnknownRole { position: 1 }),
            (
                "alpha:customer,alpha:admin",
                ApiKeysError::DuplicateKey { position: 2 },
            ),
            ("", ApiKeysError::Empty),
            (" , ", ApiKeysError::Empty),
        ] {
            let error = ApiKeys::parse(list).unwrap_err();
            assert_eq!(error, expected, "{list:?}");
            assert!(!error.to_string().contains("alpha"));
        }
    }

    #[test]
    fn each_key_gets_a_stable_customer_id_that_does_not_contain_the_key() {
        let keys = ApiKeys::parse("secret123:customer,other:customer").unwrap();
        let first = keys.authenticate("secret123").unwrap().customer;
        assert_eq!(first, keys.authenticate("secret123").unwrap().customer);
        assert_ne!(first, keys.authenticate("other").unwrap().customer);
        assert!(!first.as_str().contains("secret123"));
    }

    #[test]
    fn demo_keys_are_marked_as_demo() {
        let keys = ApiKeys::demo();
        assert!(keys.is_demo());
        assert_eq!(keys.authenticate("admin123").unwrap().role, Role::Admin);
        assert_eq!(keys.authenticate("secret123").unwrap().role, Role::Customer);
        assert!(!ApiKeys::parse("a:admin").unwrap().is_demo());
    }
}
