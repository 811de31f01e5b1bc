//! `cargo xtask deps`: enforces the crate boundaries of the workspace.
//!
//! The domain crates are API boundaries for other teams: they must not pull in the web
//! stack, and they must not know about each other. The API client is built from the OpenAPI
//! document alone: it must reach no crate of the workspace, and not the code generator
//! (its generated code is committed). [`POLICY`] lists, per package, what it must never
//! reach through normal or build dependencies, directly or transitively. Dev-dependencies
//! are ignored: a test may use anything.
//!
//! The graph comes from `cargo metadata`, whose resolve is unified over the whole
//! workspace (features enabled by the gateway show up under shared dependencies too), so
//! the check errs on the strict side.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;

use serde_json::Value;

use crate::cargo;

/// A pattern matched against packages.
#[derive(Debug, Clone, Copy)]
enum Name {
    /// Exactly this name.
    Exact(&'static str),
    /// Any name starting with this prefix.
    Prefix(&'static str),
    /// Any package of this workspace.
    WorkspaceMember,
}

use Name::{Exact, Prefix, WorkspaceMember};

impl Name {
    fn matches(self, package: &str, is_workspace_member: bool) -> bool {
        match self {
            Exact(name) => package == name,
            Prefix(prefix) => package.starts_with(prefix),
            WorkspaceMember => is_workspace_member,
        }
    }
}

/// The web stack, which only the gateway may use.
const WEB_STACK: &[Name] = &[
    Prefix("actix"),
    Prefix("apistos"),
    Exact("awc"),
    Exact("hyper"),
];

/// SQL drivers: only `bookstore-storage` (and through it the gateway) may compile one, so a
/// team importing a domain crate never builds a database driver.
const SQL_DRIVERS: &[Name] = &[
    Prefix("sqlx"),
    Exact("rusqlite"),
    Exact("libsqlite3-sys"),
    Exact("bookstore-storage"),
];

/// The OpenAPI client generator, which only `cargo xtask openapi` runs.
const CODE_GENERATOR: &[Name] = &[
    Prefix("progenitor-impl"),
    Exact("progenitor-macro"),
    Exact("progenitor"),
    Prefix("typify"),
];

/// One line of the policy: `package` must not reach any name in `must_not_reach`.
#[derive(Debug)]
struct Rule {
    package: &'static str,
    must_not_reach: &'static [&'static [Name]],
}

/// The dependency policy of the workspace.
const POLICY: &[Rule] = &[
    // The shared value types depend on nothing of ours.
    Rule {
        package: "bookstore-types",
        must_not_reach: &[WEB_STACK, SQL_DRIVERS, &[Prefix("bookstore-")]],
    },
    // Each domain knows only the shared types.
    Rule {
        package: "bookstore-inventory",
        must_not_reach: &[
            WEB_STACK,
            SQL_DRIVERS,
            &[
                Exact("bookstore-sales"),
                Exact("bookstore-delivery"),
                Exact("bookstore-gateway"),
            ],
        ],
    },
    Rule {
        package: "bookstore-sales",
        must_not_reach: &[
            WEB_STACK,
            SQL_DRIVERS,
            &[
                Exact("bookstore-inventory"),
                Exact("bookstore-delivery"),
                Exact("bookstore-gateway"),
            ],
        ],
    },
    Rule {
        package: "bookstore-delivery",
        must_not_reach: &[
            WEB_STACK,
            SQL_DRIVERS,
            &[
                Exact("bookstore-inventory"),
                Exact("bookstore-sales"),
                Exact("bookstore-gateway"),
            ],
        ],
    },
    // The SQL stores know the domains but not the web.
    Rule {
        package: "bookstore-storage",
        must_not_reach: &[WEB_STACK, &[Exact("bookstore-gateway")]],
    },
    // The API client knows the API only through its OpenAPI document, and does not build
    // the generator. (It does reach `hyper`, through its HTTP client.)
    Rule {
        package: "bookstore-client",
        must_not_reach: &[
            &[WorkspaceMember],
            CODE_GENERATOR,
            &[Prefix("actix"), Prefix("apistos")],
        ],
    },
];

impl Rule {
    fn forbids(&self, package: &str, is_workspace_member: bool) -> bool {
        self.must_not_reach
            .iter()
            .flat_map(|names| names.iter())
            .any(|name| name.matches(package, is_workspace_member))
    }
}

/// Runs `cargo metadata` and checks the workspace against [`POLICY`].
pub(crate) fn check() -> Result<(), String> {
    let output = cargo(&["metadata", "--format-version", "1"])
        .output()
        .map_err(|error| format!("cannot run cargo metadata: {error}"))?;
    if !output.status.success() {
        return Err(format!(
            "cargo metadata failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let metadata: Value = serde_json::from_slice(&output.stdout)
        .map_err(|error| format!("cargo metadata printed invalid JSON: {error}"))?;

    let graph = DependencyGraph::from_metadata(&metadata)?;
    let violations = graph.violations(POLICY)?;
    if violations.is_empty() {
        println!(
            "deps: ok ({} packages checked against the policy)",
            POLICY.len()
        );
        return Ok(());
    }

    let mut message = format!(
        "{} forbidden dependency path(s), see POLICY in xtask/src/deps.rs:",
        violations.len()
    );
    for violation in &violations {
        message.push_str(&format!("\n  {violation}"));
    }
    Err(message)
}

/// The normal and build dependency edges of a resolved workspace, by package id.
#[derive(Debug)]
struct DependencyGraph {
    /// Package id → package name, for every package in the resolve.
    names: BTreeMap<String, String>,
    /// Package id → ids of its normal and build dependencies.
    dependencies: BTreeMap<String, Vec<String>>,
    /// Ids of the workspace's own packages.
    workspace_members: Vec<String>,
}

/// A forbidden package reached from a guarded one, with the shortest path that reaches it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Violation {
    /// Package names from the guarded package to the forbidden one, both included.
    path: Vec<String>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path.join(" -> "))
    }
}

impl DependencyGraph {
    /// Reads the graph out of `cargo metadata --format-version 1` output.
    fn from_metadata(metadata: &Value) -> Result<Self, String> {
        let malformed = |what: &str| format!("unexpected cargo metadata: {what}");

        let mut names = BTreeMap::new();
        for package in metadata["packages"]
            .as_array()
            .ok_or_else(|| malformed("no packages"))?
        {
            let id = package["id"]
                .as_str()
                .ok_or_else(|| malformed("package without id"))?;
            let name = package["name"]
                .as_str()
                .ok_or_else(|| malformed("package without name"))?;
            names.insert(id.to_owned(), name.to_owned());
        }

        let workspace_members = metadata["workspace_members"]
            .as_array()
            .ok_or_else(|| malformed("no workspace_members"))?
            .iter()
            .filter_map(|id| id.as_str().map(str::to_owned))
            .collect();

        let mut dependencies = BTreeMap::new();
        let nodes = metadata["resolve"]["nodes"]
            .as_array()
            .ok_or_else(|| malformed("no resolve.nodes"))?;
        for node in nodes {
            let id = node["id"]
                .as_str()
                .ok_or_else(|| malformed("node without id"))?;
            let mut deps = Vec::new();
            for dep in node["deps"]
                .as_array()
                .ok_or_else(|| malformed("node without deps"))?
            {
                let kinds = dep["dep_kinds"]
                    .as_array()
                    .ok_or_else(|| malformed("dep without dep_kinds"))?;
                if kinds.iter().any(|kind| is_normal_or_build(&kind["kind"])) {
                    let pkg = dep["pkg"]
                        .as_str()
                        .ok_or_else(|| malformed("dep without pkg"))?;
                    deps.push(pkg.to_owned());
                }
            }
            dependencies.insert(id.to_owned(), deps);
        }

        Ok(DependencyGraph {
            names,
            dependencies,
            workspace_members,
        })
    }

    /// Every forbidden package that a guarded package reaches, sorted.
    ///
    /// The search does not continue past a forbidden package, so `actix-web` is reported
    /// but the `actix-*` crates behind it are not. Fails if a rule names a package that is
    /// not in the workspace, so a renamed crate cannot silently escape the policy.
    fn violations(&self, policy: &[Rule]) -> Result<Vec<Violation>, String> {
        let mut violations = Vec::new();
        for rule in policy {
            let root = self
                .workspace_members
                .iter()
                .find(|id| self.name(id) == rule.package)
                .ok_or_else(|| {
                    format!(
                        "the policy guards `{}`, which is not a workspace member",
                        rule.package
                    )
                })?;
            violations.extend(self.forbidden_paths_from(root, rule));
        }
        violations.sort();
        Ok(violations)
    }

    /// Breadth-first search from `root`, so each forbidden package comes with a shortest
    /// path.
    fn forbidden_paths_from(&self, root: &str, rule: &Rule) -> Vec<Violation> {
        let mut parent: BTreeMap<&str, &str> = BTreeMap::new();
        let mut seen = BTreeSet::from([root]);
        let mut queue = VecDeque::from([root]);
        let mut violations = Vec::new();

        while let Some(id) = queue.pop_front() {
            for dep in self.dependencies.get(id).into_iter().flatten() {
                if !seen.insert(dep.as_str()) {
                    continue;
                }
                parent.insert(dep, id);
                let is_member = self.workspace_members.iter().any(|member| member == dep);
                if rule.forbids(self.name(dep), is_member) {
                    violations.push(Violation {
                        path: self.path_to(dep, &parent),
                    });
                } else {
                    queue.push_back(dep);
                }
            }
        }
        violations
    }

    /// The names on the path from the search root to `id`, following `parent` links.
    fn path_to(&self, id: &str, parent: &BTreeMap<&str, &str>) -> Vec<String> {
        let mut path = vec![self.name(id).to_owned()];
        let mut current = id;
        while let Some(&previous) = parent.get(current) {
            path.push(self.name(previous).to_owned());
            current = previous;
        }
        path.reverse();
        path
    }

    fn name<'a>(&'a self, id: &'a str) -> &'a str {
        self.names.get(id).map_or(id, String::as_str)
    }
}

/// `dep_kinds[].kind` is `null` for normal dependencies, `"build"` or `"dev"` otherwise.
fn is_normal_or_build(kind: &Value) -> bool {
    kind.is_null() || kind == "build"
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// A dependency by name, with its kind: `None` for normal, `Some("build" | "dev")`.
    type Dependency = (&'static str, Option<&'static str>);

    /// A package by name, with its dependencies.
    type Package = (&'static str, &'static [Dependency]);

    /// Builds `cargo metadata`-shaped JSON from hand-written packages. Package ids are the
    /// names followed by ` 1.0.0`; packages named `bookstore-*` or `xtask*` are the
    /// workspace members.
    fn metadata(graph: &[Package]) -> Value {
        let id = |name: &str| format!("{name} 1.0.0");
        let packages: Vec<Value> = graph
            .iter()
            .map(|(name, _)| json!({ "id": id(name), "name": name }))
            .collect();
        let members: Vec<String> = graph
            .iter()
            .filter(|(name, _)| name.starts_with("bookstore-") || name.starts_with("xtask"))
            .map(|(name, _)| id(name))
            .collect();
        let nodes: Vec<Value> = graph
            .iter()
            .map(|(name, deps)| {
                let deps: Vec<Value> = deps
                    .iter()
                    .map(|(dep, kind)| {
                        json!({
                            "name": dep.replace('-', "_"),
                            "pkg": id(dep),
                            "dep_kinds": [{ "kind": kind, "target": null }],
                        })
                    })
                    .collect();
                json!({ "id": id(name), "deps": deps, "features": [] })
            })
            .collect();
        json!({
            "packages": packages,
            "workspace_members": members,
            "resolve": { "nodes": nodes, "root": null },
            "version": 1,
        })
    }

    /// The violations of `graph` against the real [`POLICY`], as printed.
    fn check(graph: &[Package]) -> Vec<String> {
        let graph = DependencyGraph::from_metadata(&metadata(graph)).unwrap();
        graph
            .violations(POLICY)
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    /// The guarded crates: the domains depending only on the shared types (and `serde`),
    /// the SQL stores on the domains and sqlx, the gateway on everything.
    fn allowed_graph() -> Vec<Package> {
        vec![
            ("bookstore-types", &[("serde", None)]),
            (
                "bookstore-inventory",
                &[("bookstore-types", None), ("serde", None)],
            ),
            ("bookstore-sales", &[("bookstore-types", None)]),
            ("bookstore-delivery", &[("bookstore-types", None)]),
            (
                "bookstore-storage",
                &[
                    ("bookstore-inventory", None),
                    ("bookstore-sales", None),
                    ("bookstore-delivery", None),
                    ("sqlx", None),
                ],
            ),
            (
                "bookstore-gateway",
                &[
                    ("bookstore-inventory", None),
                    ("bookstore-sales", None),
                    ("bookstore-delivery", None),
                    ("bookstore-storage", None),
                    ("actix-web", None),
                ],
            ),
            (
                "bookstore-client",
                &[
                    ("progenitor-client", None),
                    ("reqwest", None),
                    ("serde", None),
                ],
            ),
            ("progenitor-client", &[("reqwest", None)]),
            ("reqwest", &[("hyper", None)]),
            ("hyper", &[]),
            ("sqlx", &[]),
            ("serde", &[]),
            ("actix-web", &[("actix-http", None)]),
            ("actix-http", &[]),
        ]
    }

    /// `graph` with the dependencies of `package` replaced.
    fn with_dependencies(
        mut graph: Vec<Package>,
        package: &'static str,
        dependencies: &'static [Dependency],
    ) -> Vec<Package> {
        let entry = graph
            .iter_mut()
            .find(|(name, _)| *name == package)
            .expect("the package is in the graph");
        entry.1 = dependencies;
        graph
    }

    #[test]
    fn an_allowed_graph_has_no_violations() {
        assert_eq!(check(&allowed_graph()), Vec::<String>::new());
    }

    #[test]
    fn a_domain_reaching_a_sql_driver_is_reported() {
        let mut graph = allowed_graph();
        graph.retain(|(name, _)| *name != "bookstore-sales");
        graph.push((
            "bookstore-sales",
            &[("bookstore-types", None), ("sqlx", None)],
        ));
        assert_eq!(check(&graph), ["bookstore-sales -> sqlx"]);
    }

    #[test]
    fn a_domain_reaching_actix_web_through_another_crate_is_reported_with_the_path() {
        let mut graph = allowed_graph();
        graph[2] = (
            "bookstore-sales",
            &[("bookstore-types", None), ("foo", None)],
        );
        graph.push(("foo", &[("actix-web", None)]));

        // The SQL stores depend on sales, so they are reported as reaching it too.
        assert_eq!(
            check(&graph),
            [
                "bookstore-sales -> foo -> actix-web",
                "bookstore-storage -> bookstore-sales -> foo -> actix-web"
            ]
        );
    }

    #[test]
    fn a_domain_depending_on_another_domain_is_reported() {
        let mut graph = allowed_graph();
        graph[3] = (
            "bookstore-delivery",
            &[("bookstore-types", None), ("bookstore-sales", None)],
        );

        assert_eq!(check(&graph), ["bookstore-delivery -> bookstore-sales"]);
    }

    #[test]
    fn the_shared_types_may_not_depend_on_any_bookstore_crate() {
        let mut graph = allowed_graph();
        graph[0] = ("bookstore-types", &[("bookstore-money", None)]);
        graph.push(("bookstore-money", &[]));

        assert_eq!(check(&graph), ["bookstore-types -> bookstore-money"]);
    }

    #[test]
    fn build_dependencies_count_but_dev_dependencies_do_not() {
        let mut graph = allowed_graph();
        graph[1] = (
            "bookstore-inventory",
            &[
                ("bookstore-types", None),
                ("hyper", Some("build")),
                ("awc", Some("dev")),
            ],
        );
        graph.push(("hyper", &[]));
        graph.push(("awc", &[]));

        assert_eq!(
            check(&graph),
            [
                "bookstore-inventory -> hyper",
                "bookstore-storage -> bookstore-inventory -> hyper"
            ]
        );
    }

    #[test]
    fn the_client_reaching_any_workspace_crate_is_reported() {
        let mut graph = with_dependencies(
            allowed_graph(),
            "bookstore-client",
            &[
                ("reqwest", None),
                ("bookstore-types", None),
                ("xtask-helpers", None),
            ],
        );
        graph.push(("xtask-helpers", &[]));

        assert_eq!(
            check(&graph),
            [
                "bookstore-client -> bookstore-types",
                "bookstore-client -> xtask-helpers"
            ]
        );
    }

    #[test]
    fn the_client_building_the_generator_is_reported() {
        let mut graph = with_dependencies(
            allowed_graph(),
            "bookstore-client",
            &[("reqwest", None), ("progenitor", Some("build"))],
        );
        graph.push(("progenitor", &[("progenitor-impl", None)]));
        graph.push(("progenitor-impl", &[]));

        assert_eq!(check(&graph), ["bookstore-client -> progenitor"]);
    }

    #[test]
    fn a_guarded_package_missing_from_the_workspace_is_an_error() {
        let mut graph = allowed_graph();
        graph.remove(3);
        let graph = DependencyGraph::from_metadata(&metadata(&graph)).unwrap();

        let error = graph.violations(POLICY).unwrap_err();

        assert!(error.contains("bookstore-delivery"), "{error}");
    }
}
