//! OIDC end to end against a real identity provider: interop/oidc_idp.py (authlib's
//! authorization server with the client-credentials grant, run from the interop venv) issues
//! tokens that live 3 s; `flightline serve --oidc-issuer --audience` checks them against the
//! provider's JWKS; the SDK's `OidcClientCredentials` and `flightline run` fetch and refresh
//! them. What the provider served is counted on its side (`/stats`).

#[path = "../../interop/venv.rs"]
mod venv;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use flightline_core::client::{ClientSecret, OidcClientCredentials};
use flightline_core::{Error, FlightSqlClient};
use serde_json::Value;

const LIFETIME_SECS: u64 = 3;
const CLIENT: &str = "flightline-worker";
const SECRET: &str = "worker s3cret";
const AUDIENCE: &str = "flightline";
const SECRET_VAR: &str = "FLIGHTLINE_TEST_OIDC_SECRET";
/// Only guards against a process that never starts.
const STARTUP_LIMIT: Duration = Duration::from_secs(120);

/// A child process killed when dropped, even when an assertion fails.
struct Process {
    child: Child,
    /// What it printed after `prefix` on its first such line.
    address: String,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Process {
    /// Starts `command` with stdout piped, waits for the line starting with `prefix`, and keeps
    /// draining stdout so the child never blocks on it.
    fn start(mut command: Command, prefix: &'static str) -> Self {
        command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::inherit());
        let mut child = command.spawn().unwrap_or_else(|err| panic!("spawn {command:?}: {err}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let mut process = Self { child, address: String::new() };
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            let mut sender = Some(sender);
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix(prefix)
                    && let Some(sender) = sender.take()
                {
                    let _ = sender.send(rest.trim().to_string());
                }
            }
        });
        process.address = receiver
            .recv_timeout(STARTUP_LIMIT)
            .unwrap_or_else(|err| panic!("no '{prefix}...' line ({err}); see stderr above"));
        process
    }
}

/// The identity provider, with one client whose tokens live `LIFETIME_SECS` and are for
/// `AUDIENCE` unless the request names another.
fn start_idp() -> Process {
    let mut command = Command::new(venv::setup_venv().join("bin/python"));
    command
        .arg(venv::repo_root().join("interop/oidc_idp.py"))
        .args(["--port", "0", "--lifetime", &LIFETIME_SECS.to_string()])
        .args(["--client", &format!("{CLIENT}:{SECRET}"), "--audience", AUDIENCE])
        .env("PYTHONDONTWRITEBYTECODE", "1");
    let idp = Process::start(command, "oidc-idp: listening on ");
    assert!(idp.address.starts_with("http://127.0.0.1:"), "{}", idp.address);
    idp
}

/// `flightline serve` accepting the provider's tokens for `AUDIENCE`.
fn start_server(issuer: &str) -> Process {
    let mut command = Command::new(env!("CARGO_BIN_EXE_flightline"));
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--demo-rows", "2000"])
        .args(["--oidc-issuer", issuer, "--audience", AUDIENCE])
        .env_remove("FLIGHTLINE_SERVE_TOKENS")
        .env_remove("FLIGHTLINE_SERVE_USERS");
    Process::start(command, "flightline: listening on ")
}

async fn stats(idp: &str) -> Value {
    reqwest::get(format!("{idp}/stats")).await.unwrap().json().await.unwrap()
}

fn count(stats: &Value, what: &str) -> u64 {
    stats[what].as_u64().unwrap_or_else(|| panic!("no {what} in {stats}"))
}

/// POSTs `form` to the provider's `path` and returns the `access_token` of the answer.
async fn token_from(idp: &str, path: &str, form: &[(&str, &str)]) -> String {
    let response =
        reqwest::Client::new().post(format!("{idp}{path}")).form(form).send().await.unwrap();
    assert!(response.status().is_success(), "{path}: {}", response.status());
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_string()
}

fn provider(idp: &str) -> Arc<OidcClientCredentials> {
    let oidc = OidcClientCredentials::new(idp, CLIENT, ClientSecret::Value(SECRET.into()));
    Arc::new(oidc.unwrap().audience(AUDIENCE))
}

const SQL: &str = "SELECT count(*) AS n FROM log_entries";

async fn query_with(uri: &str, token: &str) -> Result<(), Error> {
    let client = FlightSqlClient::builder(uri).bearer_token(token).connect().await?;
    client.query(SQL, None).await.map(|_| ())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sdk_queries_across_four_lifetimes_never_fail_and_refresh_about_once_per_lifetime() {
    let idp = start_idp();
    let server = start_server(&idp.address);
    let oidc = provider(&idp.address);
    let client = FlightSqlClient::builder(&server.address)
        .token_provider(oidc.clone())
        .connect()
        .await
        .unwrap();

    // Eight concurrent first calls: one token request.
    let first: Vec<_> = (0..8)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.query(SQL, None).await.map(|_| ()) })
        })
        .collect();
    for call in first {
        call.await.unwrap().unwrap();
    }
    let after_first = stats(&idp.address).await;
    assert_eq!(count(&after_first, "tokens"), 1, "{after_first}");

    // Four tasks sharing the client query for four lifetimes.
    let lifetimes = 4;
    let started = Instant::now();
    let until = started + Duration::from_secs(LIFETIME_SECS * lifetimes);
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move {
                let (mut ok, mut failed) = (0u64, Vec::new());
                while Instant::now() < until {
                    match client.query(SQL, None).await {
                        Ok(_) => ok += 1,
                        Err(err) => failed.push(err.to_string()),
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                (ok, failed)
            })
        })
        .collect();
    let mut ok = 0;
    for task in tasks {
        let (done, failed) = task.await.unwrap();
        assert!(failed.is_empty(), "calls failed: {failed:?}");
        ok += done;
    }
    let elapsed = started.elapsed().as_secs_f64() / LIFETIME_SECS as f64;
    assert!(ok >= 40, "only {ok} queries in {elapsed:.1} lifetimes");
    let end = stats(&idp.address).await;
    let tokens = count(&end, "tokens") - 1;
    let lifetimes = elapsed.round() as u64;
    assert!(
        (lifetimes - 1..=2 * lifetimes + 2).contains(&tokens),
        "{tokens} tokens in {elapsed:.1} lifetimes: {end}"
    );
    assert_eq!(end["tokens_by_client"][CLIENT].as_u64(), Some(tokens + 1), "{end}");
    // The server fetched the keys once and kept them; each side discovered once.
    assert_eq!((count(&end, "jwks"), count(&end, "discovery")), (1, 2), "{end}");
    assert_eq!(count(&end, "refused"), 0, "{end}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_refuses_other_audiences_expired_garbage_and_keys_it_does_not_publish() {
    let idp = start_idp();
    let server = start_server(&idp.address);
    let (issuer, uri) = (idp.address.as_str(), server.address.as_str());
    let creds =
        [("grant_type", "client_credentials"), ("client_id", CLIENT), ("client_secret", SECRET)];

    // The controls: a token of the provider, and one forged with its current key, both pass.
    query_with(uri, &token_from(issuer, "/token", &creds).await).await.unwrap();
    query_with(uri, &token_from(issuer, "/forge", &[("aud", AUDIENCE)]).await).await.unwrap();

    let jwks: Value = reqwest::get(format!("{issuer}/jwks")).await.unwrap().json().await.unwrap();
    let kid = jwks["keys"][0]["kid"].as_str().unwrap().to_string();
    let other_audience = [&creds[..], &[("audience", "someone-else")]].concat();
    let cases = [
        ("another audience", token_from(issuer, "/token", &other_audience).await, "audience"),
        ("expired", token_from(issuer, "/forge", &[("exp_in", "-60")]).await, "expired"),
        ("garbage", "garbage".to_string(), "not a JWT"),
        ("three garbage parts", "abc.def.ghi".to_string(), "not a JWT"),
        (
            "an unpublished key",
            token_from(issuer, "/forge", &[("key", "stray")]).await,
            "does not publish",
        ),
        (
            "an unpublished key under a published kid",
            token_from(issuer, "/forge", &[("key", "stray"), ("kid", &kid)]).await,
            "signature",
        ),
        (
            "another issuer",
            token_from(issuer, "/forge", &[("iss", "http://127.0.0.1:1")]).await,
            "issuer",
        ),
    ];
    for (what, token, said) in &cases {
        match query_with(uri, token).await {
            Err(Error::Unauthenticated { message }) => {
                assert!(message.contains(said), "{what}: {message}");
                assert!(!message.contains(token.as_str()), "{what}: the token is echoed");
            }
            other => panic!("{what}: {other:?}"),
        }
    }

    // Made-up key ids make the server fetch the keys again, but only a few times.
    for i in 0..6 {
        let kid = format!("made-up-{i}");
        let token = token_from(issuer, "/forge", &[("key", "stray"), ("kid", &kid)]).await;
        let refused = query_with(uri, &token).await;
        assert!(matches!(refused, Err(Error::Unauthenticated { .. })), "{refused:?}");
    }
    // The server's fetches (one more was this test's own, for the kid): the first, one for the
    // unpublished key, one for the first made-up kid; then the limit holds.
    let fetched = count(&stats(issuer).await, "jwks") - 1;
    assert_eq!(fetched, flightline_server::oidc::JWKS_FETCHES_PER_WINDOW as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_signed_by_a_freshly_rotated_key_is_accepted() {
    let idp = start_idp();
    let server = start_server(&idp.address);
    let (issuer, uri) = (idp.address.as_str(), server.address.as_str());
    let creds =
        [("grant_type", "client_credentials"), ("client_id", CLIENT), ("client_secret", SECRET)];
    query_with(uri, &token_from(issuer, "/token", &creds).await).await.unwrap();
    assert_eq!(count(&stats(issuer).await, "jwks"), 1);

    let rotated = reqwest::Client::new().post(format!("{issuer}/rotate")).send().await.unwrap();
    assert!(rotated.status().is_success());
    let token = token_from(issuer, "/token", &creds).await;
    query_with(uri, &token).await.unwrap();
    assert_eq!(count(&stats(issuer).await, "jwks"), 2, "the new key was fetched once");
    // Tokens of the old key stay valid while the provider publishes it.
    query_with(uri, &token_from(issuer, "/forge", &[]).await).await.unwrap();
}

/// `flightline run JOBS --once` with the client secret in `SECRET_VAR` and `env` added.
fn run_once(jobs: &std::path::Path, env: &[(&str, &str)]) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_flightline"));
    command
        .arg("run")
        .arg(jobs)
        .args(["--once", "--progress", "never"])
        .env(SECRET_VAR, SECRET)
        .env_remove("FLIGHTLINE_TOKEN")
        .env_remove("FLIGHTLINE_USER")
        .envs(env.iter().copied());
    command.output().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_file_with_oidc_keys_or_the_micromegas_variables_runs() {
    let idp = start_idp();
    let server = start_server(&idp.address);
    let dir = tempfile::tempdir().unwrap();
    let jobs = |auth: &str, out: &str| {
        format!(
            "[server]\nuri = \"{}\"\n{auth}\n\
             [[job]]\nname = \"counted\"\nsql = \"{SQL}\"\n\
             processors = [{{ name = \"ndjson_sink\", options = {{ path = \"{}\", overwrite = true }} }}]\n",
            server.address,
            dir.path().join(out).display()
        )
    };
    let keys = format!(
        "oidc_issuer = \"{}\"\noidc_client_id = \"{CLIENT}\"\noidc_client_secret_env = \"{SECRET_VAR}\"\n\
         oidc_audience = \"{AUDIENCE}\"\noidc_scope = \"read\"",
        idp.address
    );
    let file = dir.path().join("keys.toml");
    std::fs::write(&file, jobs(&keys, "keys.ndjson")).unwrap();
    let output = tokio::task::spawn_blocking(move || run_once(&file, &[])).await.unwrap();
    assert!(output.status.success(), "{}", venv::show(&output));
    let written = std::fs::read_to_string(dir.path().join("keys.ndjson")).unwrap();
    assert_eq!(written.trim(), "{\"n\":2000}");

    let file = dir.path().join("env.toml");
    std::fs::write(&file, jobs("oidc = \"env\"", "env.ndjson")).unwrap();
    let issuer = idp.address.clone();
    let output = tokio::task::spawn_blocking(move || {
        run_once(
            &file,
            &[
                ("MICROMEGAS_OIDC_ISSUER", &issuer),
                ("MICROMEGAS_OIDC_CLIENT_ID", CLIENT),
                ("MICROMEGAS_OIDC_CLIENT_SECRET", SECRET),
                ("MICROMEGAS_OIDC_AUDIENCE", AUDIENCE),
            ],
        )
    })
    .await
    .unwrap();
    assert!(output.status.success(), "{}", venv::show(&output));
    let written = std::fs::read_to_string(dir.path().join("env.ndjson")).unwrap();
    assert_eq!(written.trim(), "{\"n\":2000}");
    let shown = venv::show(&output);
    assert!(!shown.contains(SECRET), "the secret leaked: {shown}");
    assert_eq!(stats(&idp.address).await["tokens_by_client"][CLIENT].as_u64(), Some(2));

    // `flightline query` with the flags, and with the Micromegas variables when asked to.
    let (uri, issuer) = (server.address.clone(), idp.address.clone());
    let output = tokio::task::spawn_blocking(move || {
        let query = |args: &[&str], env: &[(&str, &str)]| {
            Command::new(env!("CARGO_BIN_EXE_flightline"))
                .args(["query", SQL, "--uri", &uri, "--format", "csv"])
                .args(args)
                .env(SECRET_VAR, SECRET)
                .env_remove("FLIGHTLINE_TOKEN")
                .env_remove("FLIGHTLINE_USER")
                .envs(env.iter().copied())
                .output()
                .unwrap()
        };
        let flags = ["--oidc-issuer", &issuer, "--oidc-client-id", CLIENT];
        let secret = ["--oidc-client-secret-env", SECRET_VAR, "--oidc-audience", AUDIENCE];
        let micromegas = [
            ("MICROMEGAS_OIDC_ISSUER", issuer.as_str()),
            ("MICROMEGAS_OIDC_CLIENT_ID", CLIENT),
            ("MICROMEGAS_OIDC_CLIENT_SECRET", SECRET),
            ("MICROMEGAS_OIDC_AUDIENCE", AUDIENCE),
        ];
        [
            query(&[&flags[..], &secret[..]].concat(), &[]),
            query(&["--oidc-from-env"], &micromegas),
            // Exported, but not asked for: no credentials, refused.
            query(&[], &micromegas),
        ]
    })
    .await
    .unwrap();
    for output in &output[..2] {
        assert!(output.status.success(), "{}", venv::show(output));
        assert!(String::from_utf8_lossy(&output.stdout).contains("2000"), "{}", venv::show(output));
    }
    let unasked = venv::show(&output[2]);
    assert!(!output[2].status.success() && unasked.contains("missing credentials"), "{unasked}");

    // Tokens for another audience are refused by the server, and the run says so.
    let file = dir.path().join("other_audience.toml");
    let other = keys.replace(&format!("\"{AUDIENCE}\""), "\"someone-else\"");
    std::fs::write(&file, jobs(&other, "other.ndjson")).unwrap();
    let output = tokio::task::spawn_blocking(move || run_once(&file, &[])).await.unwrap();
    let shown = venv::show(&output);
    assert_eq!(output.status.code(), Some(1), "{shown}");
    assert!(shown.contains("not authenticated") && shown.contains("audience"), "{shown}");
}

/// The runs and failures of `job` in the summary table `flightline run` prints.
fn runs_and_failures(stdout: &str, job: &str) -> (u64, u64) {
    let line = stdout
        .lines()
        .find(|line| line.split_whitespace().next() == Some(job))
        .unwrap_or_else(|| panic!("no summary line for {job}: {stdout}"));
    let numbers: Vec<u64> =
        line.split_whitespace().skip(1).take(2).map(|n| n.parse().unwrap()).collect();
    (numbers[0], numbers[1])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_job_keeps_running_across_four_lifetimes() {
    let idp = start_idp();
    let server = start_server(&idp.address);
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[server]\nuri = \"{}\"\noidc_issuer = \"{}\"\noidc_client_id = \"{CLIENT}\"\n\
         oidc_client_secret_env = \"{SECRET_VAR}\"\noidc_audience = \"{AUDIENCE}\"\n\
         [runner]\nstate_dir = \"{}\"\n\
         [[job]]\nname = \"windows\"\nsql = \"{SQL}\"\nevery = \"500ms\"\nwindow = \"500ms\"\n\
         last = \"2s\"\n",
        server.address,
        idp.address,
        dir.path().join("state").display()
    );
    let jobs = dir.path().join("scheduled.toml");
    std::fs::write(&jobs, text).unwrap();
    let mut runner = Command::new(env!("CARGO_BIN_EXE_flightline"))
        .arg("run")
        .arg(&jobs)
        .args(["--progress", "never"])
        .env(SECRET_VAR, SECRET)
        .env_remove("FLIGHTLINE_TOKEN")
        .env_remove("FLIGHTLINE_USER")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lifetimes = 4;
    tokio::time::sleep(Duration::from_secs(LIFETIME_SECS * lifetimes)).await;
    let stopped = Command::new("kill").args(["-TERM", &runner.id().to_string()]).status();
    assert!(stopped.unwrap().success());
    let output = tokio::task::spawn_blocking(move || {
        let _ = runner.stdin.take();
        runner.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    let shown = venv::show(&output);
    let (runs, failed) = runs_and_failures(&String::from_utf8_lossy(&output.stdout), "windows");
    assert_eq!(failed, 0, "{shown}");
    assert!(runs >= 2 * lifetimes, "only {runs} runs: {shown}");
    assert!(!shown.contains("not authenticated"), "{shown}");
    let tokens = count(&stats(&idp.address).await, "tokens");
    assert!((lifetimes - 1..=2 * lifetimes + 2).contains(&tokens), "{tokens} tokens: {shown}");
}
