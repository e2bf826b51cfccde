//! The Python package's tests (python/tests/test_*.py, pytest) against two embedded servers on
//! loopback: one open, one with a bearer token and a user for the Flight handshake. The
//! package is assembled from python/flightline/ and the extension module this build made, so
//! the tests exercise exactly the code the build produced; the venv (pytest, pyarrow, pandas,
//! the Micromegas client to compare with) comes from interop/setup_venv.sh.

#[path = "../../interop/venv.rs"]
mod venv;

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use flightline_server::{RunningServer, ServerBuilder};

const DEMO_ROWS: u64 = 20_000;
const DEMO_END: &str = "2024-06-01T00:00:00Z";
const SEED: u64 = 7;
const TOKEN: &str = "python-secret-token";
const USER: &str = "python-user";
const PASSWORD: &str = "python:pass word";

/// The extension module cargo built for this test: beside the test binary, in `deps/`.
fn extension_module() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let deps = exe.parent().expect("the deps directory");
    [deps.join("libflightline_native.so"), deps.join("../libflightline_native.so")]
        .into_iter()
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("no libflightline_native.so near {}", exe.display()))
}

/// `flightline/` with its Python sources and the extension module, in `dir`.
fn assemble_package(root: &Path, dir: &Path) {
    let package = dir.join("flightline");
    std::fs::create_dir_all(&package).unwrap();
    for entry in std::fs::read_dir(root.join("python/flightline")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "py" || e == "pyi" || e == "typed") {
            std::fs::copy(&path, package.join(path.file_name().unwrap())).unwrap();
        }
    }
    std::fs::copy(extension_module(), package.join("_native.abi3.so")).unwrap();
}

/// The OIDC provider of test_oidc.py (interop/oidc_idp.py), killed when dropped.
struct Idp(Child);

impl Drop for Idp {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the provider with test_oidc.py's client and returns it with its issuer URL.
fn start_idp(root: &Path) -> (Idp, String) {
    let child = Command::new(venv::setup_venv().join("bin/python"))
        .arg(root.join("interop/oidc_idp.py"))
        .args(["--port", "0", "--lifetime", "3600", "--client", "python-oidc:python oidc secret"])
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start interop/oidc_idp.py");
    let mut idp = Idp(child);
    let mut line = String::new();
    let stdout = idp.0.stdout.take().expect("piped stdout");
    // It prints this one line and nothing else on stdout.
    std::io::BufReader::new(stdout).read_line(&mut line).expect("read the provider's line");
    let issuer = line.trim().strip_prefix("oidc-idp: listening on ").map(str::to_string);
    (idp, issuer.unwrap_or_else(|| panic!("unexpected first line {line:?}")))
}

fn demo(builder: ServerBuilder) -> ServerBuilder {
    builder.demo_rows(DEMO_ROWS).seed(SEED).demo_end(DEMO_END.parse().expect("an RFC 3339 instant"))
}

async fn start(builder: ServerBuilder) -> RunningServer {
    builder.spawn(([127, 0, 0, 1], 0).into()).await.expect("start an embedded server")
}

#[test]
fn the_python_package_passes_its_tests() {
    let root = venv::repo_root();
    let dir = tempfile::tempdir().unwrap();
    assemble_package(&root, dir.path());
    let (_idp, issuer) = start_idp(&root);
    // SAFETY: set before the runtime starts, while this is the process's only thread; pytest
    // (a child) inherits it.
    unsafe { std::env::set_var("FLIGHTLINE_TEST_OIDC_ISSUER", &issuer) };

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let open = runtime.block_on(start(demo(ServerBuilder::new())));
    let authed = runtime.block_on(start(
        demo(ServerBuilder::new()).token(TOKEN).user(USER, PASSWORD).oidc(&issuer, "flightline"),
    ));

    let (uri, auth_uri) = (open.uri(), authed.uri());
    let servers = venv::SuiteServers {
        uri: &uri,
        auth_uri: &auth_uri,
        token: TOKEN,
        user: USER,
        password: PASSWORD,
        demo_end: DEMO_END,
        rows: &DEMO_ROWS.to_string(),
        audit_log: None,
    };
    // The count of passed tests, in the test's output (shown with --no-capture).
    println!("pytest: {}", venv::run_pytest("python/tests", &servers, &[dir.path()]));
    runtime.block_on(async {
        open.shutdown().await.unwrap();
        authed.shutdown().await.unwrap();
    });
}
