//! A real PostgreSQL for the tests that need one: a fresh cluster made with `initdb` in a
//! temporary directory, started with `pg_ctl` on a free loopback port, stopped (and removed) when
//! dropped. Included by path (`#[path = "../../interop/postgres.rs"] mod postgres;`).
//!
//! The binaries come from `FLIGHTLINE_PG_BIN`, else `pg_config --bindir`, else the newest
//! `/usr/lib/postgresql/*/bin` (where Debian's `postgresql` package puts them). PostgreSQL
//! refuses to run as root, so under root the cluster belongs to the `postgres` user the
//! package creates, and its commands run through `runuser`.
#![allow(dead_code)]

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The user the cluster's superuser is called, and its password (host connections need it).
pub const USER: &str = "flightline";
/// [`USER`]'s password.
pub const PASSWORD: &str = "s3cret,with:odd chars";

/// A running cluster.
pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    /// Server options beyond the port (TLS).
    extra: String,
}

impl Postgres {
    /// Creates and starts a cluster; panics with what to install when PostgreSQL is missing.
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// [`Postgres::start`] with TLS on, serving `cert_pem` with `key_pem` (clients may still
    /// connect without TLS).
    pub fn start_tls(cert_pem: &str, key_pem: &str) -> Self {
        Self::start_with(Some((cert_pem, key_pem)))
    }

    fn start_with(tls: Option<(&str, &str)>) -> Self {
        let bin = bin_dir();
        let dir = tempfile::Builder::new().prefix("flightline-pg-").tempdir().expect("temp dir");
        let pwfile = dir.path().join("pwfile");
        std::fs::write(&pwfile, PASSWORD).expect("write the password file");
        if is_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .expect("chown");
            assert!(status.success(), "chown the cluster's directory to postgres");
        }
        let extra = match tls {
            None => String::new(),
            Some((cert, key)) => {
                let (cert_path, key_path) =
                    (dir.path().join("server.crt"), dir.path().join("server.key"));
                std::fs::write(&cert_path, cert).expect("write the server certificate");
                std::fs::write(&key_path, key).expect("write the server key");
                std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600))
                    .unwrap();
                if is_root() {
                    for path in [&cert_path, &key_path] {
                        let status =
                            Command::new("chown").arg("postgres:postgres").arg(path).status();
                        assert!(status.expect("chown").success(), "chown {}", path.display());
                    }
                }
                format!(
                    " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
                    cert_path.display(),
                    key_path.display()
                )
            }
        };
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let data = dir.path().join("data");
        run(
            &bin,
            dir.path(),
            "initdb",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-U".as_ref(),
                USER.as_ref(),
                "--pwfile".as_ref(),
                pwfile.as_os_str(),
                "--auth-local=trust".as_ref(),
                "--auth-host=scram-sha-256".as_ref(),
                "--no-sync".as_ref(),
                "-E".as_ref(),
                "UTF8".as_ref(),
            ],
        );
        // The free port is released before the server binds it, so another test may take it
        // in between: then the start fails, and a new port is tried.
        let mut last = String::new();
        for _ in 0..3 {
            let port = free_port();
            match pg_ctl_start(&bin, dir.path(), port, &extra) {
                Ok(()) => return Self { dir, bin, port, extra },
                Err(output) => last = output,
            }
        }
        let server_log = std::fs::read_to_string(dir.path().join("log")).unwrap_or_default();
        panic!("pg_ctl start failed three times\n{last}\n--- server log ---\n{server_log}");
    }

    /// Stops the server (fast: open sessions are cut), keeping its data: an outage.
    pub fn stop(&self) {
        let data = self.dir.path().join("data");
        let args: [&std::ffi::OsStr; 5] =
            ["-D".as_ref(), data.as_os_str(), "-m".as_ref(), "fast".as_ref(), "stop".as_ref()];
        run(&self.bin, self.dir.path(), "pg_ctl", &args);
    }

    /// Starts it again on its port, after [`Postgres::stop`].
    pub fn restart(&self) {
        if let Err(output) = pg_ctl_start(&self.bin, self.dir.path(), self.port, &self.extra) {
            panic!("pg_ctl start on port {} failed\n{output}", self.port);
        }
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A URL for [`USER`] on database `db`, without the password.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/{db}", self.port)
    }

    /// Runs `sql` with `psql` as the superuser on database `postgres`; returns its output rows.
    pub fn psql(&self, sql: &str) -> String {
        self.psql_on("postgres", sql)
    }

    /// Runs `sql` with `psql` on `db`.
    pub fn psql_on(&self, db: &str, sql: &str) -> String {
        let output = Command::new(self.bin.join("psql"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", USER, "-d", db])
            .args(["-v", "ON_ERROR_STOP=1", "-At", "-c", sql])
            .env("PGPASSWORD", PASSWORD)
            .output()
            .expect("run psql");
        assert!(output.status.success(), "psql {sql:?} failed\n{}", show(&output));
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }
}

/// Starts the cluster in `dir` on 127.0.0.1:`port` with `extra` options, logging to `dir/log`.
fn pg_ctl_start(bin: &Path, dir: &Path, port: u16, extra: &str) -> Result<(), String> {
    let (data, log) = (dir.join("data"), dir.join("log"));
    let options = format!(
        "-p {port} -c listen_addresses=127.0.0.1 -k {} -c fsync=off -c max_connections=200{extra}",
        dir.display()
    );
    let args: [&std::ffi::OsStr; 8] = [
        "-D".as_ref(),
        data.as_os_str(),
        "-o".as_ref(),
        options.as_ref(),
        "-l".as_ref(),
        log.as_os_str(),
        "-w".as_ref(),
        "start".as_ref(),
    ];
    try_run(bin, dir, "pg_ctl", &args)
}

/// Runs PostgreSQL's `tool` from `bin` in `dir`, as `postgres` under root; panics on failure.
fn run(bin: &Path, dir: &Path, tool: &str, args: &[&std::ffi::OsStr]) {
    if let Err(output) = try_run(bin, dir, tool, args) {
        panic!("{tool} failed\n{output}");
    }
}

/// [`run`], returning the output of a failure.
fn try_run(bin: &Path, dir: &Path, tool: &str, args: &[&std::ffi::OsStr]) -> Result<(), String> {
    let program = bin.join(tool);
    let mut command = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(&program);
        c
    } else {
        Command::new(&program)
    };
    let output = command.args(args).current_dir(dir).output().expect(tool);
    if output.status.success() { Ok(()) } else { Err(show(&output)) }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let args: [&std::ffi::OsStr; 5] =
            ["-D".as_ref(), data.as_os_str(), "-m".as_ref(), "immediate".as_ref(), "stop".as_ref()];
        // A failure here must not panic: this may run while a failed test unwinds.
        if let Err(output) = try_run(&self.bin, self.dir.path(), "pg_ctl", &args) {
            eprintln!("pg_ctl stop failed\n{output}");
        }
    }
}

fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("FLIGHTLINE_PG_BIN") {
        return PathBuf::from(dir);
    }
    if let Ok(output) = Command::new("pg_config").arg("--bindir").output()
        && output.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        if dir.join("initdb").exists() {
            return dir;
        }
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path().join("bin"))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    versions.sort_by_key(|p| version_of(p));
    versions.pop().unwrap_or_else(|| {
        panic!(
            "PostgreSQL's server binaries (initdb, pg_ctl) were not found: install them \
             (`apt-get install postgresql`) or set FLIGHTLINE_PG_BIN to their directory"
        )
    })
}

fn version_of(bin: &Path) -> u32 {
    bin.parent().and_then(|v| v.file_name()).and_then(|v| v.to_str()?.parse().ok()).unwrap_or(0)
}

fn is_root() -> bool {
    let uid = Command::new("id").arg("-u").output().expect("run id -u");
    String::from_utf8_lossy(&uid.stdout).trim() == "0"
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}

fn show(output: &Output) -> String {
    format!(
        "status: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}
