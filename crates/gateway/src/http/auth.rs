//! API keys, roles, accounts and the extractors that authenticate a request.
//!
//! Keys are never stored or compared in clear: each configured key is kept as its SHA-256
//! digest, and a presented key is hashed and compared with every configured digest in
//! constant time, so neither timing nor an early exit reveals which keys exist.
//!
//! Every key acts for an account, the [`CustomerId`] that owns the orders it places (and
//! scopes its idempotency keys and its rate limit). `KEY:ROLE:ACCOUNT` names the account,
//! so that several keys (an old and a new one, while a key is rotated) share one; a
//! `KEY:ROLE` entry has an account of its own, `key_` and 24 hex digits of the key's digest,
//! which identifies the key without revealing it. Account names are not secrets: they are
//! stored with every order.

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
pub use crate::role::Role;

/// The header that carries the API key.
pub const API_KEY_HEADER: &str = "X-API-Key";

/// The name of an account, as written in `KEY:ROLE:ACCOUNT`: 1 to 64 lowercase ASCII letters,
/// digits, `.`, `_` and `-`, starting with a letter or a digit. Not a role name (an entry
/// ending in a role is a `KEY:ROLE` entry). A name starting with `key_` must be
/// the account of a `KEY:ROLE` entry, `key_` and 24 lowercase hex digits, so that a rotated
/// key can take over the orders of a key configured without an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountName(String);

impl AccountName {
    /// The longest account name.
    pub const MAX_LENGTH: usize = 64;

    /// Checks an account name; `None` if it breaks a rule.
    pub fn parse(text: &str) -> Option<Self> {
        let bytes = text.as_bytes();
        let allowed =
            |byte: &u8| byte.is_ascii_lowercase() || byte.is_ascii_digit() || b"._-".contains(byte);
        let well_formed = (1..=Self::MAX_LENGTH).contains(&bytes.len())
            && bytes.iter().all(allowed)
            && bytes[0].is_ascii_alphanumeric()
            && Role::parse(text).is_none();
        let key_account = match text.strip_prefix(KEY_ACCOUNT_PREFIX) {
            None => true,
            Some(hex) => {
                hex.len() == 2 * KEY_ACCOUNT_DIGEST_BYTES
                    && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            }
        };
        (well_formed && key_account).then(|| Self(text.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The start of the account of a `KEY:ROLE` entry.
const KEY_ACCOUNT_PREFIX: &str = "key_";

/// How many bytes of a key's digest name its account.
const KEY_ACCOUNT_DIGEST_BYTES: usize = 12;

/// A key as configured: its digest, its role and the account it acts for.
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
    /// An entry is not of the form `KEY:ROLE` or `KEY:ROLE:ACCOUNT`.
    #[error("entry {position} is not of the form KEY:ROLE or KEY:ROLE:ACCOUNT")]
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
    /// An account name that breaks the rules of [`AccountName`].
    #[error(
        "entry {position} names an invalid account (1 to 64 lowercase letters, digits, '.', '_' \
         or '-', starting with a letter or digit; not a role name; key_ only before the \
         24 hex digits of a key's account)"
    )]
    InvalidAccount {
        /// 1-based position of the entry in the list.
        position: usize,
    },
    /// One account given two roles.
    #[error("entry {position} gives its account another role than entry {earlier} does")]
    AccountRoleConflict {
        /// 1-based position of the entry in the list.
        position: usize,
        /// 1-based position of the earlier entry with the same account.
        earlier: usize,
    },
    /// The list has no entries.
    #[error("no API keys are configured")]
    Empty,
}

/// The demo keys used when no keys are configured.
pub const DEMO_KEYS: &str = "secret123:customer,admin123:admin";

impl ApiKeys {
    /// Parses a comma-separated list of `KEY:ROLE` and `KEY:ROLE:ACCOUNT` entries, e.g.
    /// `key1:customer,key2:admin,key3:customer:shop`. Whitespace around entries and their
    /// parts is ignored. An entry whose last part is a role is `KEY:ROLE` (the key may hold
    /// `:`); otherwise the last part is the account and the one before it the role.
    ///
    /// Every key must be distinct, and an account has one role: keys listed with the same
    /// account must have the same role.
    pub fn parse(list: &str) -> Result<Self, ApiKeysError> {
        let mut keys: Vec<ConfiguredKey> = Vec::new();
        // Each account with its role and the first entry that named it.
        let mut accounts: Vec<(CustomerId, Role, usize)> = Vec::new();
        for (index, entry) in list
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .enumerate()
        {
            let position = index + 1;
            let (rest, last) = entry
                .rsplit_once(':')
                .ok_or(ApiKeysError::MalformedEntry { position })?;
            let (key, role, account) = match Role::parse(last.trim()) {
                Some(role) => (rest, role, None),
                None => {
                    let (key, role) = rest
                        .rsplit_once(':')
                        .ok_or(ApiKeysError::UnknownRole { position })?;
                    let role =
                        Role::parse(role.trim()).ok_or(ApiKeysError::UnknownRole { position })?;
                    let account = AccountName::parse(last.trim())
                        .ok_or(ApiKeysError::InvalidAccount { position })?;
                    (key, role, Some(account))
                }
            };
            let key = key.trim();
            if key.is_empty() {
                return Err(ApiKeysError::MalformedEntry { position });
            }
            let digest = digest_of(key);
            if keys.iter().any(|k| k.digest == digest) {
                return Err(ApiKeysError::DuplicateKey { position });
            }
            let customer = match account {
                Some(account) => CustomerId::new(account.as_str()),
                None => customer_id_for(&digest),
            };
            match accounts.iter().find(|(known, ..)| *known == customer) {
                Some(&(_, earlier_role, earlier)) if earlier_role != role => {
                    return Err(ApiKeysError::AccountRoleConflict { position, earlier });
                }
                Some(_) => {}
                None => accounts.push((customer.clone(), role, position)),
            }
            keys.push(ConfiguredKey {
                digest,
                role,
                customer,
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

/// The account of a `KEY:ROLE` entry: `key_` and the first 12 bytes of the key's digest in
/// hex. Stable for a key, and it reveals nothing of the key.
fn customer_id_for(digest: &[u8; 32]) -> CustomerId {
    let hex = hex::encode(&digest[..KEY_ACCOUNT_DIGEST_BYTES]);
    CustomerId::new(format!("{KEY_ACCOUNT_PREFIX}{hex}"))
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
    /// The account the key acts for: the owner recorded on orders.
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
    fn malformed_key_lists_are_rejected_without_echoing_keys_or_accounts() {
        for (list, expected) in [
            ("alpha", ApiKeysError::MalformedEntry { position: 1 }),
            (
                "alpha:customer,:admin",
                ApiKeysError::MalformedEntry { position: 2 },
            ),
            (
                "alpha:customer,:admin:office",
                ApiKeysError::MalformedEntry { position: 2 },
            ),
            ("alpha:root", ApiKeysError::UnknownRole { position: 1 }),
            ("alpha:root:shop", ApiKeysError::UnknownRole { position: 1 }),
            (
                "alpha:customer,alpha:admin",
                ApiKeysError::DuplicateKey { position: 2 },
            ),
            (
                "alpha:customer,alpha:customer:shop",
                ApiKeysError::DuplicateKey { position: 2 },
            ),
            (
                "alpha:customer:shop,beta:admin:shop",
                ApiKeysError::AccountRoleConflict {
                    position: 2,
                    earlier: 1,
                },
            ),
            (
                "alpha:customer:Shop",
                ApiKeysError::InvalidAccount { position: 1 },
            ),
            ("", ApiKeysError::Empty),
            (" , ", ApiKeysError::Empty),
        ] {
            let error = ApiKeys::parse(list).unwrap_err();
            assert_eq!(error, expected, "{list:?}");
            let message = error.to_string();
            assert!(!message.contains("alpha"), "{message}");
            assert!(!message.to_lowercase().contains("shop"), "{message}");
        }
    }

    #[test]
    fn account_names_are_short_lowercase_identifiers() {
        let longest = "a".repeat(AccountName::MAX_LENGTH);
        let key_account = format!("key_{}", "0123456789abcdef01234567");
        for good in [
            "shop",
            "shop-front",
            "shop_2",
            "acme.eu",
            "7eleven",
            "a",
            longest.as_str(),
            key_account.as_str(),
        ] {
            assert!(AccountName::parse(good).is_some(), "{good:?}");
        }
        let too_long = "a".repeat(AccountName::MAX_LENGTH + 1);
        for bad in [
            "",
            "Shop",
            "shop front",
            "shop/front",
            "-shop",
            ".shop",
            "_shop",
            "shöp",
            "customer",
            "admin",
            "fulfilment",
            "key_shop",
            "key_0123456789ABCDEF01234567",
            "key_0123456789abcdef0123456",
            too_long.as_str(),
        ] {
            assert!(AccountName::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn keys_listed_with_one_account_act_for_that_account() {
        let keys = ApiKeys::parse(
            "old-key:customer:shop, new-key : customer : shop ,other:customer,office:admin:back-office",
        )
        .unwrap();
        let old = keys.authenticate("old-key").unwrap();
        let new = keys.authenticate("new-key").unwrap();
        assert_eq!(old.customer, CustomerId::new("shop"));
        assert_eq!(new.customer, old.customer);
        assert_eq!(new.role, Role::Customer);
        assert_ne!(keys.authenticate("other").unwrap().customer, old.customer);
        let office = keys.authenticate("office").unwrap();
        assert_eq!(office.customer, CustomerId::new("back-office"));
        assert_eq!(office.role, Role::Admin);
    }

    #[test]
    fn a_key_without_an_account_keeps_the_account_derived_from_its_digest() {
        // Orders placed before accounts existed are owned by this id: it must not change.
        let digest = Sha256::digest(b"secret123");
        let hex = hex::encode(&digest[..12]);
        let keys = ApiKeys::parse("secret123:customer,with:colon:admin").unwrap();
        assert_eq!(
            keys.authenticate("secret123").unwrap().customer,
            CustomerId::new(format!("key_{hex}"))
        );
        // A key may still hold `:` in the KEY:ROLE form.
        assert_eq!(keys.authenticate("with:colon").unwrap().role, Role::Admin);

        // A new key takes over that key's orders by naming its account.
        let rotated =
            ApiKeys::parse(&format!("secret123:customer,next-key:customer:key_{hex}")).unwrap();
        assert_eq!(
            rotated.authenticate("next-key").unwrap().customer,
            rotated.authenticate("secret123").unwrap().customer
        );
        assert_eq!(
            ApiKeys::parse(&format!("secret123:customer,next-key:admin:key_{hex}")).unwrap_err(),
            ApiKeysError::AccountRoleConflict {
                position: 2,
                earlier: 1
            }
        );
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
