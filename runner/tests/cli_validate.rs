//! `flightline validate` and `flightline schema` end to end: the real binary against the
//! embedded server started in this process on 127.0.0.1:0.

use std::process::{Command, Output};

use flightline_server::{RunningServer, ServerBuilder};

const ISSUE_QUERY: &str = "SELECT time, msg FROM log_entries ORDER BY time DESC";

async fn demo_server() -> RunningServer {
    ServerBuilder::new().demo_rows(500).seed(3).spawn("127.0.0.1:0".parse().unwrap()).await.unwrap()
}

/// Runs the `flightline` binary off the runtime's worker threads, so the in-process server
/// keeps answering while the command waits for it.
async fn flightline(args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_flightline"))
            .args(&args)
            .env_remove("FLIGHTLINE_URI")
            .env_remove("FLIGHTLINE_TOKEN")
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn show(output: &Output) -> String {
    format!(
        "status: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        stdout(output),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn json_codes(output: &Output) -> Vec<(String, String)> {
    let findings: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let mut codes: Vec<(String, String)> = findings
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (f["severity"].as_str().unwrap().to_string(), f["code"].as_str().unwrap().to_string())
        })
        .collect();
    codes.sort();
    codes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_query_prints_order_by_and_time_filter_warnings_with_recommendations() {
    let server = demo_server().await;
    let uri = server.uri();
    let output = flightline(&["validate", "--uri", &uri, ISSUE_QUERY]).await;
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{}", show(&output));
    assert!(text.contains("warn order_by_without_limit: ORDER BY without LIMIT"), "{text}");
    assert!(text.contains("recommendation: add a LIMIT"), "{text}");
    assert!(text.contains("warn no_time_filter: no time restriction"), "{text}");
    assert!(text.contains("recommendation: pass a time range"), "{text}");
    assert!(text.contains("2 finding(s): 0 deny, 2 warn, 0 info; allowed"), "{text}");
    // stdout is a pipe here, so no terminal icons.
    assert!(!text.contains('⚠'), "{text}");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_lists_every_finding_with_its_recommendation() {
    let server = demo_server().await;
    let uri = server.uri();
    let output = flightline(&["validate", "--json", "--uri", &uri, ISSUE_QUERY]).await;
    assert_eq!(output.status.code(), Some(0), "{}", show(&output));
    assert_eq!(
        json_codes(&output),
        [
            ("warn".to_string(), "no_time_filter".to_string()),
            ("warn".to_string(), "order_by_without_limit".to_string())
        ]
    );
    let findings: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    for finding in findings.as_array().unwrap() {
        assert!(!finding["message"].as_str().unwrap().is_empty());
        assert!(!finding["recommendation"].as_str().unwrap().is_empty());
    }
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_time_range_and_a_limit_leave_nothing_to_say() {
    let server = demo_server().await;
    let uri = server.uri();
    let sql = "SELECT time, msg FROM log_entries ORDER BY time DESC LIMIT 10";
    let output = flightline(&["validate", "--uri", &uri, "--last", "1h", sql]).await;
    assert_eq!(output.status.code(), Some(0), "{}", show(&output));
    assert_eq!(stdout(&output).trim(), "no findings: the query passes every rule");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_schema_feeds_the_select_star_rule() {
    let server = demo_server().await;
    let uri = server.uri();
    let sql = "SELECT * FROM log_entries LIMIT 10";
    let output = flightline(&[
        "validate",
        "--json",
        "--uri",
        &uri,
        "--begin",
        "2024-01-01T00:00:00Z",
        "--end",
        "2024-01-02T00:00:00Z",
        sql,
    ])
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", show(&output));
    // Warn, not info: the prepared schema says log_entries has 12 columns.
    assert_eq!(json_codes(&output), [("warn".to_string(), "select_star_wide".to_string())]);
    assert!(stdout(&output).contains("SELECT * returns 12 columns"), "{}", show(&output));
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_are_refused_with_exit_status_1() {
    let server = demo_server().await;
    let uri = server.uri();
    let output = flightline(&["validate", "--uri", &uri, "DROP TABLE log_entries"]).await;
    assert_eq!(output.status.code(), Some(1), "{}", show(&output));
    let text = stdout(&output);
    assert!(text.contains("deny not_read_only: DROP TABLE is not a read-only query"), "{text}");
    assert!(text.ends_with("refused\n"), "{text}");
    // The refused statement never reached the server: the table is still there.
    let output = flightline(&["schema", "--uri", &uri, "SELECT level FROM log_entries"]).await;
    assert_eq!(output.status.code(), Some(0), "{}", show(&output));
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_the_server_refuses_is_a_deny_finding_not_a_crash() {
    let server = demo_server().await;
    let uri = server.uri();
    let sql = "SELECT no_such_column FROM log_entries WHERE time > now() - interval '1 hour'";
    let output = flightline(&["validate", "--json", "--uri", &uri, sql]).await;
    assert_eq!(output.status.code(), Some(1), "{}", show(&output));
    assert_eq!(json_codes(&output), [("deny".to_string(), "server_rejected".to_string())]);
    assert!(stdout(&output).contains("no_such_column"), "{}", show(&output));
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_that_does_not_parse_is_denied_with_its_position() {
    let output =
        flightline(&["validate", "--offline", "--json", "SELECT msg FROM log_entries WHERE"]).await;
    assert_eq!(output.status.code(), Some(1), "{}", show(&output));
    let findings: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(findings[0]["code"], "parse_error");
    assert_eq!(findings[0]["severity"], "deny");
    assert_eq!(findings[0]["position"]["line"], 1);
    assert_eq!(findings[0]["position"]["column"], 34);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overrides_raise_a_warning_to_a_refusal() {
    let server = demo_server().await;
    let uri = server.uri();
    let output = flightline(&[
        "validate",
        "--uri",
        &uri,
        "--override",
        "no_time_filter=deny",
        "--override",
        "order_by_without_limit=mute",
        ISSUE_QUERY,
    ])
    .await;
    assert_eq!(output.status.code(), Some(1), "{}", show(&output));
    let text = stdout(&output);
    assert!(text.contains("deny no_time_filter"), "{text}");
    assert!(!text.contains("order_by_without_limit"), "{text}");

    let output = flightline(&["validate", "--uri", &uri, "--override", "oops", ISSUE_QUERY]).await;
    assert_eq!(output.status.code(), Some(2), "{}", show(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("CODE=ACTION"), "{}", show(&output));
    server.shutdown().await.unwrap();
}

/// A URI on a port that was free a moment ago: nothing listens there.
fn unreachable_uri() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    format!("grpc://127.0.0.1:{port}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_fails_closed_with_exit_status_3() {
    let uri = unreachable_uri();
    let output = flightline(&["validate", "--json", "--uri", &uri, ISSUE_QUERY]).await;
    assert_eq!(output.status.code(), Some(3), "{}", show(&output));
    assert!(stdout(&output).is_empty(), "no verdict without the server: {}", show(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&format!("cannot validate against {uri}")), "{}", show(&output));
    assert!(stderr.contains("--offline"), "{}", show(&output));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_failure_fails_closed_with_exit_status_3() {
    // The demo server speaks plain gRPC: a TLS handshake with it cannot succeed.
    let server = demo_server().await;
    let tls_uri = server.uri().replacen("grpc://", "grpc+tls://", 1);
    let output = flightline(&["validate", "--uri", &tls_uri, ISSUE_QUERY]).await;
    assert_eq!(output.status.code(), Some(3), "{}", show(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot validate against"), "{}", show(&output));
    assert!(stdout(&output).is_empty(), "{}", show(&output));
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_runs_the_local_rules_without_a_server() {
    let uri = unreachable_uri();
    let output = flightline(&["validate", "--offline", "--json", "--uri", &uri, ISSUE_QUERY]).await;
    assert_eq!(output.status.code(), Some(0), "{}", show(&output));
    assert_eq!(
        json_codes(&output),
        [
            ("warn".to_string(), "no_time_filter".to_string()),
            ("warn".to_string(), "order_by_without_limit".to_string())
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_the_local_rules_refuse_needs_no_server() {
    let uri = unreachable_uri();
    let output = flightline(&["validate", "--uri", &uri, "DELETE FROM log_entries"]).await;
    assert_eq!(output.status.code(), Some(1), "{}", show(&output));
    assert!(stdout(&output).contains("deny not_read_only"), "{}", show(&output));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_or_missing_token_is_an_error_not_a_pass() {
    let server = ServerBuilder::new()
        .demo_rows(100)
        .seed(3)
        .token("s3cret")
        .spawn("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let uri = server.uri();
    let sql = "SELECT time, msg FROM log_entries ORDER BY time DESC LIMIT 10";
    for credentials in [&["--token", "wrong"][..], &[][..]] {
        let mut args = vec!["validate", "--last", "1h", "--uri", &uri];
        args.extend_from_slice(credentials);
        args.push(sql);
        let output = flightline(&args).await;
        assert_eq!(output.status.code(), Some(2), "{credentials:?}: {}", show(&output));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("not authenticated"), "{credentials:?}: {}", show(&output));
        // The runner, not the SDK, names its flags.
        assert!(stderr.contains("hint: pass a valid token with --token"), "{}", show(&output));
        assert!(!stderr.contains("wrong"), "the token leaked: {}", show(&output));
        assert!(stdout(&output).is_empty(), "{}", show(&output));
    }
    // The right token passes, with the server's schema (no schema_unavailable).
    let output = flightline(&[
        "validate", "--json", "--last", "1h", "--uri", &uri, "--token", "s3cret", sql,
    ])
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", show(&output));
    assert!(json_codes(&output).is_empty(), "{}", show(&output));
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_prints_the_columns_and_the_row_size() {
    let server = demo_server().await;
    let uri = server.uri();
    let sql = "SELECT time, level, msg, target FROM log_entries";
    let output = flightline(&["schema", "--uri", &uri, sql]).await;
    assert_eq!(output.status.code(), Some(0), "{}", show(&output));
    let text = stdout(&output);
    let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows[0], ["column", "type", "nullable", "est.", "bytes"]);
    assert_eq!(rows[1], ["time", "Timestamp(ns,", "\"+00:00\")", "no", "8"]);
    assert_eq!(rows[2], ["level", "Int32", "no", "4"]);
    assert_eq!(rows[3], ["msg", "Utf8", "no", "36"]);
    // Dictionary columns arrive as plain strings unless preserve_dictionary is set.
    assert_eq!(rows[4], ["target", "Utf8", "no", "36"]);
    assert!(text.contains("total columns: 4"), "{text}");
    // 8 + 4 + (32 + 4) + (32 + 4)
    assert!(text.contains("estimated row size: 84 bytes"), "{text}");

    let output =
        flightline(&["schema", "--json", "--string-bytes", "100", "--uri", &uri, sql]).await;
    assert_eq!(output.status.code(), Some(0), "{}", show(&output));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["column_count"], 4);
    assert_eq!(json["estimated_row_bytes"], 220.0);
    assert_eq!(json["columns"][0]["data_type"], "Timestamp(ns, \"+00:00\")");
    assert_eq!(json["columns"][2]["estimated_bytes"], 104.0);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_of_a_bad_query_is_an_error_naming_it() {
    let server = demo_server().await;
    let uri = server.uri();
    let output = flightline(&["schema", "--uri", &uri, "SELECT nope FROM nowhere"]).await;
    assert_eq!(output.status.code(), Some(2), "{}", show(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("invalid query"), "{stderr}");
    assert!(stderr.contains("nowhere"), "{stderr}");
    server.shutdown().await.unwrap();
}
