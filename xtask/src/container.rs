//! `cargo xtask container`: builds the container image from `Containerfile` and runs a smoke
//! test against it: start, `/health/ready`, the image's health check, one order, stop, start
//! a new container on the same volume, the order is still there.
//!
//! By default the two base images are made locally, so that no container registry is needed:
//! the runtime base is Debian bookworm from `debootstrap --variant=minbase` (trimmed of
//! documentation), the builder base the same plus gcc, this machine's CA bundle and a copy
//! of its Rust toolchain (the one `rust-toolchain.toml` pins, without its documentation).
//! Both are imported once and reused. This needs root, `debootstrap`, and a Debian mirror
//! (`DEBIAN_MIRROR`, default `http://deb.debian.org/debian`); the build itself needs
//! crates.io. With `--pull` the `Containerfile`'s own defaults (the official `rust` and
//! `debian` images) are used instead.
//!
//! The engine is Podman or Docker (`--engine`, else the first found). Podman is given a
//! `containers.conf` with `default_ulimits = []` unless `CONTAINERS_CONF` is set: inside
//! some sandboxes it cannot set the default file limit of its containers.
//!
//! Not part of `cargo xtask test`: a release build in the container takes minutes.

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::workspace_root;

/// What `cargo xtask container --help` prints.
pub(crate) const USAGE: &str = "\
Usage: cargo xtask container [--pull] [--engine podman|docker] [--tag NAME]

Builds the image from Containerfile and smoke-tests it (start, /health/ready, the health
check, one order, stop, start again on the same volume, the order is still there).

Options:
  --pull            use the Containerfile's default base images (docker.io/library/rust
                    and debian) instead of making them locally with debootstrap
  --engine NAME     podman or docker (default: the first one found)
  --tag NAME        the image to build (default: localhost/bookstore:latest)

Making the bases locally needs root, debootstrap and a Debian mirror (DEBIAN_MIRROR,
default http://deb.debian.org/debian); they are kept as localhost/bookstore-base-builder
and localhost/bookstore-base-runtime and reused. The build needs crates.io.
";

/// The Debian release of both base images.
const DEBIAN_SUITE: &str = "bookworm";

/// The toolchain the builder base carries (as `rust-toolchain.toml` pins it).
const RUST_VERSION: &str = "1.95.0";

/// The locally made builder base.
const LOCAL_BUILDER_IMAGE: &str = "localhost/bookstore-base-builder:1.95.0-bookworm";

/// The locally made runtime base.
const LOCAL_RUNTIME_IMAGE: &str = "localhost/bookstore-base-runtime:bookworm";

/// Where Debian keeps its bundle of trusted certificates.
const HOST_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The longest the server in the container may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(90);

/// The Rust Programming Language, in the demo catalogue.
const ORDERED_ISBN: &str = "9781593278281";

/// The API keys the smoke test configures through the environment.
const CUSTOMER_KEY: &str = "smoke-customer";
const API_KEYS: &str = "smoke-customer:customer,smoke-admin:admin";

/// What the command line asked for.
#[derive(Debug)]
pub(crate) struct Options {
    pull: bool,
    engine: Option<String>,
    tag: String,
}

impl Options {
    /// Reads the options after `container`.
    pub(crate) fn parse(args: &[&str]) -> Result<Options, String> {
        let mut options = Options {
            pull: false,
            engine: None,
            tag: "localhost/bookstore:latest".to_owned(),
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match *arg {
                "--pull" => options.pull = true,
                "--engine" => {
                    let engine = args.next().ok_or("--engine needs podman or docker")?;
                    if !["podman", "docker"].contains(engine) {
                        return Err(format!("unknown engine `{engine}`: podman or docker"));
                    }
                    options.engine = Some((*engine).to_owned());
                }
                "--tag" => {
                    options.tag = (*args.next().ok_or("--tag needs an image name")?).to_owned();
                }
                other => return Err(format!("unknown option `{other}`")),
            }
        }
        Ok(options)
    }
}

/// Builds the image and smoke-tests it.
pub(crate) fn run(options: Options) -> Result<(), String> {
    let engine = Engine::find(options.engine.as_deref())?;
    println!("container: using {}", engine.program);
    let bases = if options.pull {
        None
    } else {
        Some((local_builder_base(&engine)?, local_runtime_base(&engine)?))
    };
    let started = Instant::now();
    build_image(&engine, bases, &options.tag)?;
    println!(
        "container: built {} in {:.0} s",
        options.tag,
        started.elapsed().as_secs_f64()
    );
    let size = engine.output(&["image", "inspect", "--format", "{{.Size}}", &options.tag])?;
    let bytes: f64 = size.trim().parse().unwrap_or(f64::NAN);
    println!(
        "container: image size {:.1} MB ({} bytes)",
        bytes / 1_000_000.0,
        size.trim()
    );
    let user = engine.output(&[
        "image",
        "inspect",
        "--format",
        "{{.Config.User}}",
        &options.tag,
    ])?;
    if user.trim().is_empty() || user.trim().starts_with('0') || user.trim() == "root" {
        return Err(format!(
            "the image runs as `{}`, not an unprivileged user",
            user.trim()
        ));
    }
    smoke_test(&engine, &options.tag)?;
    println!("container: smoke test passed");
    Ok(())
}

/// A container engine on `PATH`.
struct Engine {
    program: String,
    /// `CONTAINERS_CONF` for Podman, when this task provides it.
    containers_conf: Option<PathBuf>,
}

impl Engine {
    fn find(wanted: Option<&str>) -> Result<Engine, String> {
        let candidates = match wanted {
            Some(engine) => vec![engine],
            None => vec!["podman", "docker"],
        };
        let program = candidates
            .into_iter()
            .find(|program| {
                Command::new(program)
                    .arg("--version")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|status| status.success())
            })
            .ok_or("neither podman nor docker is installed (e.g. `apt-get install podman`)")?
            .to_owned();
        let containers_conf =
            if program == "podman" && std::env::var_os("CONTAINERS_CONF").is_none() {
                let path = work_directory()?.join("containers.conf");
                fs::write(
                &path,
                "# Written by `cargo xtask container`: containers inherit podman's own limits.\n\
                 [containers]\ndefault_ulimits = []\n",
            )
            .map_err(|error| format!("writing {}: {error}", path.display()))?;
                println!(
                    "container: CONTAINERS_CONF={} (set CONTAINERS_CONF to use your own)",
                    path.display()
                );
                Some(path)
            } else {
                None
            };
        Ok(Engine {
            program,
            containers_conf,
        })
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.program);
        command.args(args).current_dir(workspace_root());
        if let Some(conf) = &self.containers_conf {
            command.env("CONTAINERS_CONF", conf);
        }
        command
    }

    /// Runs the engine with the terminal as its output; fails unless it exits 0.
    fn run(&self, args: &[&str]) -> Result<(), String> {
        let status = self
            .command(args)
            .status()
            .map_err(|error| format!("running {}: {error}", self.program))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!(
                "`{} {}` failed: {status}",
                self.program,
                args.join(" ")
            ))
        }
    }

    /// Runs the engine and returns its standard output; fails unless it exits 0.
    fn output(&self, args: &[&str]) -> Result<String, String> {
        let output = self
            .command(args)
            .stderr(Stdio::inherit())
            .output()
            .map_err(|error| format!("running {}: {error}", self.program))?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(format!(
                "`{} {}` failed: {}",
                self.program,
                args.join(" "),
                output.status
            ))
        }
    }

    /// Whether the engine has the image `name`.
    fn has_image(&self, name: &str) -> bool {
        self.command(&["image", "inspect", name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    }

    /// Imports the directory `root` as the image `name`, with `changes` (`ENV …`).
    fn import(&self, root: &Path, name: &str, changes: &[&str]) -> Result<(), String> {
        let mut tar = Command::new("tar")
            .arg("-C")
            .arg(root)
            .args(["-c", "."])
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|error| format!("running tar: {error}"))?;
        let tar_output = tar.stdout.take().ok_or("tar has no output")?;
        let mut args = vec!["import".to_owned()];
        for change in changes {
            args.push("--change".to_owned());
            args.push((*change).to_owned());
        }
        args.extend(["-".to_owned(), name.to_owned()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let imported = self
            .command(&args)
            .stdin(tar_output)
            .stdout(Stdio::null())
            .status()
            .map_err(|error| format!("running {} import: {error}", self.program))?;
        let tarred = tar
            .wait()
            .map_err(|error| format!("waiting for tar: {error}"))?;
        if imported.success() && tarred.success() {
            Ok(())
        } else {
            Err(format!("importing {} as {name} failed", root.display()))
        }
    }
}

/// `target/container`, where the root file systems and the Podman configuration go.
fn work_directory() -> Result<PathBuf, String> {
    let directory = workspace_root().join("target").join("container");
    fs::create_dir_all(&directory)
        .map_err(|error| format!("creating {}: {error}", directory.display()))?;
    Ok(directory)
}

/// Runs a host command with the terminal as its output; fails unless it exits 0.
fn host(program: &str, args: &[&str]) -> Result<(), String> {
    let status = Command::new(program)
        .args(args)
        .status()
        .map_err(|error| format!("running {program}: {error} (is it installed?)"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{program} {}` failed: {status}", args.join(" ")))
    }
}

/// A minimal Debian root file system in `target/container/<name>`, with `include`d packages,
/// its documentation, manuals, translations and package lists removed.
fn debootstrap(name: &str, include: &[&str]) -> Result<PathBuf, String> {
    let root = work_directory()?.join(name);
    if root.exists() {
        fs::remove_dir_all(&root)
            .map_err(|error| format!("removing {}: {error}", root.display()))?;
    }
    let mirror = std::env::var("DEBIAN_MIRROR")
        .unwrap_or_else(|_| "http://deb.debian.org/debian".to_owned());
    let root_text = root.display().to_string();
    let include = format!("--include={}", include.join(","));
    let mut args = vec!["--variant=minbase"];
    if include != "--include=" {
        args.push(&include);
    }
    args.extend([DEBIAN_SUITE, &root_text, &mirror]);
    println!("container: debootstrap {}", args.join(" "));
    host("debootstrap", &args)?;
    for emptied in [
        "usr/share/doc",
        "usr/share/man",
        "usr/share/info",
        "usr/share/locale",
        "var/lib/apt/lists",
        "var/cache/apt",
        "var/log",
    ] {
        let directory = root.join(emptied);
        if directory.is_dir() {
            fs::remove_dir_all(&directory)
                .and_then(|()| fs::create_dir_all(&directory))
                .map_err(|error| format!("emptying {}: {error}", directory.display()))?;
        }
    }
    Ok(root)
}

/// The runtime base: Debian bookworm, minimal.
fn local_runtime_base(engine: &Engine) -> Result<String, String> {
    if engine.has_image(LOCAL_RUNTIME_IMAGE) {
        println!("container: reusing {LOCAL_RUNTIME_IMAGE}");
        return Ok(LOCAL_RUNTIME_IMAGE.to_owned());
    }
    let root = debootstrap("runtime-root", &[])?;
    engine.import(&root, LOCAL_RUNTIME_IMAGE, &[])?;
    let _ = fs::remove_dir_all(&root);
    Ok(LOCAL_RUNTIME_IMAGE.to_owned())
}

/// The builder base: Debian bookworm with gcc (for SQLite and ring), CA certificates (for
/// crates.io) and this machine's Rust toolchain, which must be the pinned one.
fn local_builder_base(engine: &Engine) -> Result<String, String> {
    if engine.has_image(LOCAL_BUILDER_IMAGE) {
        println!("container: reusing {LOCAL_BUILDER_IMAGE}");
        return Ok(LOCAL_BUILDER_IMAGE.to_owned());
    }
    let version = host_output("rustc", &["--version"])?;
    if !version.starts_with(&format!("rustc {RUST_VERSION} ")) {
        return Err(format!(
            "the builder base needs Rust {RUST_VERSION}, but rustc here is `{}`",
            version.trim()
        ));
    }
    let sysroot = PathBuf::from(host_output("rustc", &["--print", "sysroot"])?.trim());
    let root = debootstrap("builder-root", &["gcc", "libc6-dev", "ca-certificates"])?;
    let rust = root.join("usr/local/rust");
    fs::create_dir_all(&rust).map_err(|error| format!("creating {}: {error}", rust.display()))?;
    // The toolchain without `share/` (its documentation: most of its size).
    for part in ["bin", "lib", "libexec", "etc"] {
        let source = sysroot.join(part);
        if source.exists() {
            host(
                "cp",
                &[
                    "-a",
                    &source.display().to_string(),
                    &rust.display().to_string(),
                ],
            )?;
        }
    }
    for tool in ["cargo", "rustc", "rustdoc"] {
        let link = root.join("usr/local/bin").join(tool);
        std::os::unix::fs::symlink(format!("../rust/bin/{tool}"), &link)
            .map_err(|error| format!("linking {}: {error}", link.display()))?;
    }
    fs::create_dir_all(root.join("usr/local/cargo"))
        .map_err(|error| format!("creating CARGO_HOME: {error}"))?;
    // This machine's CA bundle, so that the build trusts what the machine trusts (a proxy
    // that inspects TLS on the way to crates.io, say). Only the local builder gets it.
    let bundle = Path::new(HOST_CA_BUNDLE);
    if bundle.is_file() {
        fs::copy(bundle, root.join(HOST_CA_BUNDLE.trim_start_matches('/')))
            .map_err(|error| format!("copying {HOST_CA_BUNDLE}: {error}"))?;
    }
    engine.import(
        &root,
        LOCAL_BUILDER_IMAGE,
        &[
            "ENV CARGO_HOME=/usr/local/cargo",
            "ENV PATH=/usr/local/cargo/bin:/usr/local/bin:/usr/bin:/bin",
        ],
    )?;
    let _ = fs::remove_dir_all(&root);
    Ok(LOCAL_BUILDER_IMAGE.to_owned())
}

/// Runs a host command and returns its standard output; fails unless it exits 0.
fn host_output(program: &str, args: &[&str]) -> Result<String, String> {
    let output = Command::new(program)
        .args(args)
        .current_dir(workspace_root())
        .output()
        .map_err(|error| format!("running {program}: {error}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!(
            "`{program} {}` failed: {}",
            args.join(" "),
            output.status
        ))
    }
}

/// Builds `Containerfile` as `tag`, from the given (builder, runtime) bases or its defaults.
fn build_image(engine: &Engine, bases: Option<(String, String)>, tag: &str) -> Result<(), String> {
    let mut args: Vec<String> = ["build", "--file", "Containerfile", "--tag", tag]
        .map(str::to_owned)
        .to_vec();
    if engine.program == "podman" {
        // The OCI format has no HEALTHCHECK; the docker format keeps it.
        args.extend(["--format".to_owned(), "docker".to_owned()]);
    }
    if let Some((builder, runtime)) = bases {
        args.extend([
            "--build-arg".to_owned(),
            format!("BUILDER_IMAGE={builder}"),
            "--build-arg".to_owned(),
            format!("RUNTIME_IMAGE={runtime}"),
        ]);
    }
    args.push(".".to_owned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    println!("container: {} {}", engine.program, args.join(" "));
    engine.run(&args)
}

/// The containers and the volume of one smoke test, removed when dropped.
struct SmokeTest<'engine> {
    engine: &'engine Engine,
    volume: String,
    containers: Vec<String>,
}

impl Drop for SmokeTest<'_> {
    fn drop(&mut self) {
        for container in &self.containers {
            let _ = self
                .engine
                .command(&["rm", "--force", container])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let _ = self
            .engine
            .command(&["volume", "rm", "--force", &self.volume])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl SmokeTest<'_> {
    /// Starts a container of `image` on the test's volume, published on 127.0.0.1:`port`,
    /// and waits until it is ready.
    fn start(&mut self, image: &str, port: u16) -> Result<String, String> {
        let name = format!("{}-{}", self.volume, self.containers.len() + 1);
        self.containers.push(name.clone());
        let publish = format!("127.0.0.1:{port}:5001");
        let mount = format!("{}:/var/lib/bookstore", self.volume);
        let keys = format!("BOOKSTORE_API_KEYS={API_KEYS}");
        self.engine.output(&[
            "run",
            "--detach",
            "--name",
            &name,
            "--publish",
            &publish,
            "--volume",
            &mount,
            "--env",
            &keys,
            image,
        ])?;
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok((200, _)) = http(port, "GET", "/health/ready", None, None) {
                println!("container: {name} is ready on 127.0.0.1:{port}");
                return Ok(name);
            }
            let running = self
                .engine
                .output(&[
                    "container",
                    "inspect",
                    "--format",
                    "{{.State.Running}}",
                    &name,
                ])
                .unwrap_or_default();
            if running.trim() != "true" || Instant::now() > deadline {
                let _ = self.engine.run(&["logs", &name]);
                return Err(format!(
                    "{name} did not become ready (running: {})",
                    running.trim()
                ));
            }
            thread::sleep(Duration::from_millis(200));
        }
    }

    /// Stops `name` with SIGTERM and checks that it exited 0.
    fn stop(&self, name: &str) -> Result<(), String> {
        self.engine.output(&["stop", "--time", "40", name])?;
        let code = self.engine.output(&[
            "container",
            "inspect",
            "--format",
            "{{.State.ExitCode}}",
            name,
        ])?;
        if code.trim() == "0" {
            println!("container: {name} stopped with exit code 0");
            Ok(())
        } else {
            let _ = self.engine.run(&["logs", name]);
            Err(format!("{name} exited with {} after SIGTERM", code.trim()))
        }
    }

    /// Runs the image's health check in `name` (Podman runs it on demand; Docker is polled
    /// until it has run it).
    fn health_check(&self, name: &str) -> Result<(), String> {
        if self.engine.program == "podman" {
            return self
                .engine
                .output(&["healthcheck", "run", name])
                .map(|_| println!("container: the health check passes"))
                .map_err(|error| format!("the image's health check failed: {error}"));
        }
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let health = self.engine.output(&[
                "container",
                "inspect",
                "--format",
                "{{.State.Health.Status}}",
                name,
            ])?;
            if health.trim() == "healthy" {
                println!("container: the health check passes");
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("the health check says `{}`", health.trim()));
            }
            thread::sleep(Duration::from_millis(500));
        }
    }
}

/// Start, health, an order, stop, start again on the same volume, the order is there.
fn smoke_test(engine: &Engine, image: &str) -> Result<(), String> {
    let mut test = SmokeTest {
        engine,
        volume: format!("bookstore-smoke-{}", std::process::id()),
        containers: Vec::new(),
    };
    engine.output(&["volume", "create", &test.volume])?;

    let port = free_port()?;
    let first = test.start(image, port)?;
    test.health_check(&first)?;
    let order = format!(
        r#"{{"items":[{{"isbn":"{ORDERED_ISBN}","quantity":1}}],"payment":{{"token":"tok_visa"}}}}"#
    );
    let (status, body) = http(
        port,
        "POST",
        "/api/orders",
        Some(&order),
        Some("smoke-test-order-1"),
    )?;
    if status != 201 {
        return Err(format!("placing an order answered {status}: {body}"));
    }
    let id = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|order| order["id"].as_str().map(str::to_owned))
        .ok_or_else(|| format!("no order id in {body}"))?;
    println!("container: placed order {id}");
    test.stop(&first)?;

    let port = free_port()?;
    let second = test.start(image, port)?;
    let (status, body) = http(port, "GET", &format!("/api/orders/{id}"), None, None)?;
    if status != 200 || !body.contains(&id) {
        return Err(format!(
            "after a restart on the same volume, order {id} answered {status}: {body}"
        ));
    }
    println!("container: order {id} is still there after a restart on the same volume");
    test.stop(&second)?;
    Ok(())
}

/// A free TCP port on 127.0.0.1.
fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .map_err(|error| format!("finding a free port: {error}"))
}

/// One HTTP/1.0 exchange with 127.0.0.1:`port` as the smoke-test customer: the status and
/// the body.
fn http(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&str>,
    idempotency_key: Option<&str>,
) -> Result<(u16, String), String> {
    let failed = |error: std::io::Error| format!("{method} {path}: {error}");
    let mut stream = TcpStream::connect(("127.0.0.1", port)).map_err(failed)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(failed)?;
    let mut request =
        format!("{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nX-API-Key: {CUSTOMER_KEY}\r\n");
    if let Some(key) = idempotency_key {
        request.push_str(&format!("Idempotency-Key: {key}\r\n"));
    }
    if let Some(body) = body {
        request.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ));
    } else {
        request.push_str("\r\n");
    }
    stream.write_all(request.as_bytes()).map_err(failed)?;
    let mut response = String::new();
    stream.read_to_string(&mut response).map_err(failed)?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("{method} {path}: no complete answer"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|status| status.parse().ok())
        .ok_or_else(|| format!("{method} {path}: no status in {head}"))?;
    Ok((status, body.to_owned()))
}
