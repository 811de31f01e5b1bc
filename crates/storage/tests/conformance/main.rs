//! One conformance suite for every store implementation: each check runs against the
//! in-memory stores of the domain crates, against SQLite (a fresh file per test) and against
//! PostgreSQL (a fresh database per test). Passing on all three is what "identical
//! behaviour" means.
//!
//! A check is an `async fn(Backend)`; [`conformance!`] turns a list of them into one test
//! per backend, named `<backend>::<check>`. The PostgreSQL tests are `#[ignore]`d with the
//! reason (they need a server): `cargo test` reports them as ignored, and `cargo xtask test`
//! runs them when a server answers (or run them yourself with `-- --include-ignored`, on
//! the server `BOOKSTORE_TEST_POSTGRES_URL` names, else on `127.0.0.1:5432`).

mod harness;

mod catalogue;
mod deliveries;
mod durability;
mod events;
mod idempotency;
mod instances;
mod orders;
mod payments;
mod relays;
mod webhooks;

/// Declares, for each check named, a test per backend (`in_memory::check`,
/// `sqlite::check`, `postgres::check`) in the module where it is invoked. Checks listed
/// after `sql_only:` do not run on the in-memory stores (they test what only a database
/// has: reopening, two pools, a closed connection).
macro_rules! conformance {
    ($($check:ident),* $(,)? $(; sql_only: $($sql_check:ident),* $(,)?)?) => {
        mod in_memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $check() {
                    super::$check($crate::harness::Backend::InMemory).await;
                }
            )*
        }

        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $check() {
                    super::$check($crate::harness::Backend::Sqlite).await;
                }
            )*
            $($(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $sql_check() {
                    super::$sql_check($crate::harness::Backend::Sqlite).await;
                }
            )*)?
        }

        mod postgres {
            $(
                #[ignore = "needs PostgreSQL: set BOOKSTORE_TEST_POSTGRES_URL or run a server on 127.0.0.1:5432"]
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $check() {
                    super::$check($crate::harness::Backend::Postgres).await;
                }
            )*
            $($(
                #[ignore = "needs PostgreSQL: set BOOKSTORE_TEST_POSTGRES_URL or run a server on 127.0.0.1:5432"]
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $sql_check() {
                    super::$sql_check($crate::harness::Backend::Postgres).await;
                }
            )*)?
        }
    };
}

pub(crate) use conformance;
