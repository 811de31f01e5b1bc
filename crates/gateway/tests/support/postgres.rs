//! PostgreSQL test databases, shared by the test binaries that run against a real server
//! (`api` and `durability` include this file with `#[path]`): one database per test,
//! created and dropped through the server a URL names ([`server_url`]).

use sqlx::{Connection, Executor, PgConnection};

/// The variable naming the PostgreSQL server the tests create their databases on, e.g.
/// `postgres://postgres@127.0.0.1:5432/postgres`.
pub(crate) const POSTGRES_URL_VARIABLE: &str = "BOOKSTORE_TEST_POSTGRES_URL";

/// The server used when the variable is unset.
pub(crate) const LOCAL_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The PostgreSQL server to test against: `BOOKSTORE_TEST_POSTGRES_URL`, or the local one.
pub(crate) fn server_url() -> String {
    std::env::var(POSTGRES_URL_VARIABLE)
        .ok()
        .map(|url| url.trim().to_owned())
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| LOCAL_POSTGRES_URL.to_owned())
}

/// Why a PostgreSQL test failed to get a database: it was run (they are `#[ignore]`d, so it
/// was asked to) and no server answers.
pub(crate) fn needs_a_server(error: &sqlx::Error) -> String {
    format!(
        "a PostgreSQL test needs a server: none answers at the URL in {POSTGRES_URL_VARIABLE}, \
         or at {LOCAL_POSTGRES_URL} when it is unset ({error})"
    )
}

/// Creates the empty database `name` on the server of `server_url`.
pub(crate) async fn create_database(server_url: &str, name: &str) -> Result<(), sqlx::Error> {
    let mut admin = PgConnection::connect(server_url).await?;
    admin
        .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await?;
    admin.close().await
}

/// `DROP DATABASE IF EXISTS`, ending the sessions still connected to it (a pool not closed
/// yet, a server thread still stopping).
pub(crate) async fn drop_database(server_url: &str, name: &str) -> Result<(), sqlx::Error> {
    let mut admin = PgConnection::connect(server_url).await?;
    admin
        .execute(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .await?;
    admin.close().await
}

/// [`drop_database`] on a runtime of its own, for `Drop`, which cannot await and may run
/// while a test's runtime unwinds a panic. Call it from a thread of its own.
pub(crate) fn drop_database_blocking(server_url: &str, name: &str) -> Result<(), sqlx::Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(sqlx::Error::Io)?
        .block_on(drop_database(server_url, name))
}

/// `url` with its database name replaced by `name` (the query string kept).
pub(crate) fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |index| index + 3);
    let server = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{server}/{name}?{query}"),
        None => format!("{server}/{name}"),
    }
}
