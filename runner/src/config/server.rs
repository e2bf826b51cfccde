//! `[server]` / `[servers.NAME]`: the job file's side of [`ServerSettings`], with the keys of
//! the command line's connection flags.
//!
//! The keys are listed on [`ServerConfig`].

use std::collections::BTreeMap;

use flightline_core::client::{
    ClientSecret, DEFAULT_CONNECT_TIMEOUT, MICROMEGAS_OIDC_AUDIENCE, MICROMEGAS_OIDC_CLIENT_ID,
    MICROMEGAS_OIDC_CLIENT_SECRET, MICROMEGAS_OIDC_ISSUER,
};

use super::check::{Checker, check_uri};
use super::env;
use super::raw::{RawFile, RawServer, TimeRangeMode};
use crate::connect::{
    Login, OidcSettings, PASSWORD_ENV, PasswordSource, ServerSettings, TokenSource,
};

/// A Flight SQL server jobs query: `[server]` or `[servers.NAME]` in the job file, whose keys
/// mirror the connection flags of the command line:
///
/// ```toml
/// [servers.prod]
/// uri = "grpc+tls://flight.example.com:443"   # grpc://, grpc+tls://, http://, https://
/// time_range = "sql"                          # default for its jobs: headers | sql | both
/// token_env = "FLIGHTLINE_TOKEN"              # bearer token from this variable, or
/// # token_file = "/run/secrets/token"         #   from this file (re-read before every call)
/// user = "alice"                              # Flight handshake (HTTP Basic), password from
/// password_env = "PROD_PASSWORD"              #   this variable (default FLIGHTLINE_PASSWORD)
/// # password_file = "/run/secrets/flightline" #   or this file
/// cookies = true                              # keep the server's cookies (Dremio)
/// headers = { x-tenant-id = "production", authorization = "Bearer ${TOKEN}" }
/// tls_ca = "ca.pem"                           # trust these CAs instead of the system roots
/// tls_domain = "flight.internal"              # verify the certificate against this name
/// allow_insecure_locations = false            # plaintext endpoints behind a TLS server
/// credential_hosts = ["replica.example.com"]  # other places that may get the credentials
/// connect_timeout = "10s"
/// request_timeout = "5m"
/// ```
///
/// A token or password is never written in the file: `token = "..."` and `password = "..."`
/// are refused with a message naming the keys to use instead.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Its name in the file (`[server]` is named `default`).
    pub name: String,
    /// The default time-range mode of its jobs.
    pub time_range: TimeRangeMode,
    /// How to connect: the same settings the command line's flags give.
    pub settings: ServerSettings,
}

pub(super) type Env<'e> = &'e dyn Fn(&str) -> Option<String>;

impl Checker<'_> {
    pub(super) fn servers(
        &mut self,
        raw: &RawFile,
        env: Env<'_>,
    ) -> BTreeMap<String, ServerConfig> {
        let mut out = BTreeMap::new();
        if let (Some(single), false) = (&raw.server, raw.servers.is_empty()) {
            self.at(
                single.span(),
                "both [server] and [servers.NAME] are given; move [server] under [servers.NAME]",
            );
        }
        let named = raw.server.iter().map(|s| ("default".to_string(), s));
        let all: Vec<_> = named.chain(raw.servers.iter().map(|(k, v)| (k.clone(), v))).collect();
        for (name, server) in all {
            let config = self.server(&name, server.get_ref(), env);
            out.insert(name, config);
        }
        out
    }

    fn server(&mut self, name: &str, raw: &RawServer, env: Env<'_>) -> ServerConfig {
        let uri = self.value(&raw.uri, check_uri);
        let mut headers = Vec::new();
        for (key, value) in &raw.headers {
            if let Some(v) = self.value(value, |text| env::expand(text, env)) {
                headers.push((key.clone(), v));
            }
        }
        let mut token = self.token(raw, env);
        let login = self.login(raw, env);
        if let Some(oidc) = self.oidc(raw, env) {
            let span = raw.oidc.as_ref().map(|m| m.span());
            let span = span.or_else(|| raw.oidc_issuer.as_ref().map(|i| i.span()));
            let other = if token.is_some() || raw.token_env.is_some() || raw.token_file.is_some() {
                Some("token_env / token_file")
            } else {
                raw.user.is_some().then_some("user")
            };
            match (other, span) {
                (Some(other), Some(span)) => self.at(
                    span,
                    format!(
                        "OIDC and {other} both give the server's credentials: keep one of them"
                    ),
                ),
                _ => token = Some(TokenSource::Oidc(oidc)),
            }
        }
        let connect_timeout = self.duration(&raw.connect_timeout);
        let request_timeout = self.duration(&raw.request_timeout);
        // A server with a bad key stays known, so its jobs do not also report "no such server";
        // the file is refused anyway.
        let settings = ServerSettings {
            uri: uri.unwrap_or_else(|| raw.uri.get_ref().clone()),
            token,
            login,
            cookies: raw.cookies,
            headers,
            tls_ca: raw.tls_ca.clone(),
            tls_domain: raw.tls_domain.clone(),
            allow_insecure_locations: raw.allow_insecure_locations,
            credential_hosts: raw.credential_hosts.clone(),
            connect_timeout: connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT),
            request_timeout,
        };
        ServerConfig {
            name: name.to_string(),
            time_range: raw.time_range.unwrap_or_default(),
            settings,
        }
    }

    /// `token_env` or `token_file`; an inline `token` is refused without showing it.
    fn token(&mut self, raw: &RawServer, env: Env<'_>) -> Option<TokenSource> {
        if let Some(inline) = &raw.token {
            self.issue(
                Some(inline.span()),
                None,
                "a token is never written in the job file: name the environment variable that \
                 holds it, token_env = \"FLIGHTLINE_TOKEN\", or a file, token_file = \
                 \"/run/secrets/token\""
                    .into(),
            );
        }
        match (&raw.token_env, &raw.token_file) {
            (Some(var), None) => {
                self.value(var, |name| set_variable(name, env)).map(TokenSource::Env)
            }
            (None, Some(path)) => Some(TokenSource::File(path.get_ref().clone())),
            (Some(var), Some(_)) => {
                self.at(var.span(), "give either token_env or token_file, not both");
                None
            }
            (None, None) => None,
        }
    }

    /// `oidc_issuer` with `oidc_client_id` and `oidc_client_secret_env` or
    /// `oidc_client_secret_file` (plus `oidc_audience`, `oidc_scope`), or `oidc = "env"` for the
    /// MICROMEGAS_OIDC_* variables. An inline secret is refused without showing it.
    fn oidc(&mut self, raw: &RawServer, env: Env<'_>) -> Option<OidcSettings> {
        if let Some(inline) = &raw.oidc_client_secret {
            self.issue(
                Some(inline.span()),
                None,
                "a client secret is never written in the job file: name the environment \
                 variable that holds it, oidc_client_secret_env = \"VARIABLE\", or a file, \
                 oidc_client_secret_file = \"/run/secrets/oidc\""
                    .into(),
            );
        }
        let audience =
            raw.oidc_audience.as_ref().and_then(|a| self.value(a, |t| env::expand(t, env)));
        let scope = raw.oidc_scope.as_ref().and_then(|s| self.value(s, |t| env::expand(t, env)));
        match (&raw.oidc, &raw.oidc_issuer) {
            (Some(mode), _) => {
                let explicit = [
                    raw.oidc_issuer.as_ref().map(|k| k.span()),
                    raw.oidc_client_id.as_ref().map(|k| k.span()),
                    raw.oidc_client_secret_env.as_ref().map(|k| k.span()),
                    raw.oidc_client_secret_file.as_ref().map(|k| k.span()),
                ];
                if let Some(span) = explicit.into_iter().flatten().next() {
                    self.at(span, "oidc = \"env\" takes the issuer, client id and secret from the MICROMEGAS_OIDC_* variables: remove this key, or remove `oidc`");
                    return None;
                }
                self.value(mode, |mode| oidc_from_env(mode, env)).map(|mut oidc| {
                    if audience.is_some() {
                        oidc.audience = audience;
                    }
                    oidc.scope = scope;
                    oidc
                })
            }
            (None, Some(issuer)) => {
                let issuer_url =
                    self.value(issuer, |text| env::expand(text, env).and_then(check_issuer))?;
                let Some(client_id) = &raw.oidc_client_id else {
                    self.at(
                        issuer.span(),
                        "an OIDC issuer needs a client: add oidc_client_id = \"ID\"",
                    );
                    return None;
                };
                let client_id =
                    self.value(client_id, |text| env::expand(text, env).and_then(non_empty))?;
                let secret = match (&raw.oidc_client_secret_env, &raw.oidc_client_secret_file) {
                    (Some(var), None) => {
                        ClientSecret::Env(self.value(var, |name| set_variable(name, env))?)
                    }
                    (None, Some(path)) => ClientSecret::File(path.get_ref().clone()),
                    (Some(var), Some(_)) => {
                        self.at(var.span(), "give either oidc_client_secret_env or oidc_client_secret_file, not both");
                        return None;
                    }
                    (None, None) => {
                        self.at(issuer.span(), "the OIDC client needs its secret: add oidc_client_secret_env = \"VARIABLE\" or oidc_client_secret_file = \"FILE\"");
                        return None;
                    }
                };
                Some(OidcSettings { issuer: issuer_url, client_id, secret, audience, scope })
            }
            (None, None) => {
                let stray = [
                    raw.oidc_client_id.as_ref().map(|k| k.span()),
                    raw.oidc_client_secret_env.as_ref().map(|k| k.span()),
                    raw.oidc_client_secret_file.as_ref().map(|k| k.span()),
                    raw.oidc_audience.as_ref().map(|k| k.span()),
                    raw.oidc_scope.as_ref().map(|k| k.span()),
                ];
                if let Some(span) = stray.into_iter().flatten().next() {
                    self.at(
                        span,
                        "this OIDC key needs oidc_issuer = \"URL\" (or oidc = \"env\") beside it",
                    );
                }
                None
            }
        }
    }

    /// `user` with `password_env` or `password_file` (FLIGHTLINE_PASSWORD when neither is
    /// given, as on the command line); an inline `password` is refused without showing it.
    fn login(&mut self, raw: &RawServer, env: Env<'_>) -> Option<Login> {
        if let Some(inline) = &raw.password {
            self.issue(
                Some(inline.span()),
                None,
                format!(
                    "a password is never written in the job file: name the environment variable \
                     that holds it, password_env = \"{PASSWORD_ENV}\", or a file, password_file = \
                     \"/run/secrets/flightline\""
                ),
            );
        }
        let password = self.password(raw, env);
        let Some(user) = &raw.user else {
            let source = raw.password_env.as_ref().map(|v| v.span());
            if let Some(span) = source.or_else(|| raw.password_file.as_ref().map(|f| f.span())) {
                self.at(span, "a password is for a `user`: add user = \"NAME\" beside it");
            }
            return None;
        };
        let name = self.value(user, |text| env::expand(text, env).and_then(check_user))?;
        let password = match password {
            Some(password) => password?,
            None => {
                let default = self.value(user, |_| {
                    set_variable(PASSWORD_ENV, env).map_err(|_| {
                        format!(
                            "the user needs a password: export {PASSWORD_ENV}, or name where it \
                             is with password_env = \"VARIABLE\" or password_file = \"FILE\""
                        )
                    })
                });
                PasswordSource::Env(default?)
            }
        };
        Some(Login { user: name, password })
    }

    /// The password source written, if any: `Some(None)` when it is wrong (already reported).
    fn password(&mut self, raw: &RawServer, env: Env<'_>) -> Option<Option<PasswordSource>> {
        match (&raw.password_env, &raw.password_file) {
            (Some(var), None) => {
                Some(self.value(var, |name| set_variable(name, env)).map(PasswordSource::Env))
            }
            (None, Some(path)) => Some(Some(PasswordSource::File(path.get_ref().clone()))),
            (Some(var), Some(_)) => {
                self.at(var.span(), "give either password_env or password_file, not both");
                Some(None)
            }
            (None, None) => None,
        }
    }
}

/// `name` when it is a variable name that is set (its value is never looked at further).
pub(super) fn set_variable(name: &str, env: Env<'_>) -> Result<String, String> {
    let name = name.trim();
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err("not an environment variable name; use letters, digits and `_`".into());
    }
    match env(name) {
        Some(_) => Ok(name.to_string()),
        None => Err(format!(
            "environment variable {name} is not set (export it before starting the runner)"
        )),
    }
}

/// `oidc = "env"`: the Micromegas variables, which must be set (the secret is read at every
/// token request, never kept).
fn oidc_from_env(mode: &str, env: Env<'_>) -> Result<OidcSettings, String> {
    if mode.trim() != "env" {
        return Err("the only value of `oidc` is \"env\" (the MICROMEGAS_OIDC_* variables); \
                    or give oidc_issuer, oidc_client_id and oidc_client_secret_env instead"
            .into());
    }
    let required = |name: &str| {
        env(name).filter(|v| !v.trim().is_empty()).ok_or_else(|| {
            format!(
                "oidc = \"env\" needs {name}; export {MICROMEGAS_OIDC_ISSUER}, \
                 {MICROMEGAS_OIDC_CLIENT_ID} and {MICROMEGAS_OIDC_CLIENT_SECRET} \
                 ({MICROMEGAS_OIDC_AUDIENCE} is optional) before starting the runner"
            )
        })
    };
    let issuer = check_issuer(required(MICROMEGAS_OIDC_ISSUER)?)?;
    let client_id = required(MICROMEGAS_OIDC_CLIENT_ID)?.trim().to_string();
    required(MICROMEGAS_OIDC_CLIENT_SECRET)?;
    Ok(OidcSettings {
        issuer,
        client_id,
        secret: ClientSecret::Env(MICROMEGAS_OIDC_CLIENT_SECRET.into()),
        audience: env(MICROMEGAS_OIDC_AUDIENCE).filter(|a| !a.trim().is_empty()),
        scope: None,
    })
}

/// An issuer is an http(s) URL (its discovery document lives below it).
fn check_issuer(issuer: String) -> Result<String, String> {
    let issuer = issuer.trim().trim_end_matches('/');
    if issuer.starts_with("https://") || issuer.starts_with("http://") {
        Ok(issuer.to_string())
    } else {
        Err(format!("the OIDC issuer {issuer:?} is not an https:// (or http://) URL"))
    }
}

fn non_empty(text: String) -> Result<String, String> {
    let text = text.trim();
    if text.is_empty() { Err("must not be empty".into()) } else { Ok(text.to_string()) }
}

/// A user name HTTP Basic can carry.
fn check_user(user: String) -> Result<String, String> {
    let user = user.trim();
    if user.is_empty() || user.contains(':') {
        return Err("a user name must not be empty nor contain `:` (HTTP Basic separates the \
                    user from the password with it)"
            .into());
    }
    Ok(user.to_string())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use clap::Parser;

    use super::*;
    use crate::RunnerError;
    use crate::config::Config;
    use crate::connect::{ConnectArgs, OidcSettings};
    use crate::error::ConfigIssue;

    const JOB: &str = "[[job]]\nname = \"j\"\nsql = \"SELECT 1\"\n";

    fn env(name: &str) -> Option<String> {
        matches!(name, "PROD_TOKEN" | "PROD_PASSWORD" | "FLIGHTLINE_PASSWORD")
            .then(|| "s3cr3t-from-env".to_string())
    }

    fn settings(server: &str) -> ServerSettings {
        let text = format!("[server]\n{server}\n{JOB}");
        match Config::parse(Path::new("jobs.toml"), &text, &env) {
            Ok(mut config) => config.servers.remove("default").unwrap().settings,
            Err(err) => panic!("refused: {err}"),
        }
    }

    fn issues(server: &str) -> Vec<ConfigIssue> {
        let text = format!("[server]\n{server}\n{JOB}");
        match Config::parse(Path::new("jobs.toml"), &text, &|_| None) {
            Err(RunnerError::Config(issues)) => issues,
            other => panic!("expected issues, got {other:?}"),
        }
    }

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        connect: ConnectArgs,
    }

    fn cli(args: &[&str]) -> ServerSettings {
        let cli = Cli::try_parse_from(std::iter::once("probe").chain(args.iter().copied()));
        cli.unwrap().connect.settings().unwrap()
    }

    #[test]
    fn the_command_line_and_the_job_file_give_the_same_settings() {
        let from_file = settings(
            "uri = \"grpc+tls://flight:443\"\ntoken_file = \"/run/token\"\nuser = \"alice\"\n\
             password_file = \"/run/pw\"\ncookies = true\nheaders = { x-tenant-id = \"prod\" }\n\
             tls_ca = \"ca.pem\"\ntls_domain = \"flight.internal\"\n\
             allow_insecure_locations = true\ncredential_hosts = [\"replica:443\"]\n\
             connect_timeout = \"3s\"\nrequest_timeout = \"1m\"",
        );
        let from_flags = cli(&[
            "--uri=grpc+tls://flight:443",
            "--token-file=/run/token",
            "--user=alice",
            "--password-file=/run/pw",
            "--cookies",
            "--header=x-tenant-id=prod",
            "--tls-ca=ca.pem",
            "--tls-domain=flight.internal",
            "--allow-insecure-locations",
            "--credential-host=replica:443",
            "--connect-timeout=3",
            "--request-timeout=60",
        ]);
        assert_eq!(from_file, from_flags);
        assert_eq!(from_file.request_timeout, Some(std::time::Duration::from_secs(60)));
        assert!(from_file.cookies && from_file.login.is_some(), "{from_file:?}");
    }

    #[test]
    fn a_user_reads_flightline_password_unless_told_otherwise() {
        let default = settings("uri = \"grpc://h:1\"\nuser = \"alice\"");
        let password = default.login.map(|l| l.password);
        assert_eq!(password, Some(PasswordSource::Env(PASSWORD_ENV.into())));
        let named =
            settings("uri = \"grpc://h:1\"\nuser = \"alice\"\npassword_env = \"PROD_PASSWORD\"");
        let password = named.login.map(|l| l.password);
        assert_eq!(password, Some(PasswordSource::Env("PROD_PASSWORD".into())));
        let token = settings("uri = \"grpc://h:1\"\ntoken_env = \"PROD_TOKEN\"").token;
        assert_eq!(token, Some(TokenSource::Env("PROD_TOKEN".into())));
    }

    #[test]
    fn an_inline_password_or_token_is_refused_without_being_shown() {
        for (key, instead) in [("password", "password_env"), ("token", "token_env")] {
            let found = issues(&format!("uri = \"grpc://h:1\"\nuser = \"u\"\n{key} = \"hunter2\""));
            let issue = found.iter().find(|i| i.key == format!("server.{key}"));
            let issue = issue.unwrap_or_else(|| panic!("{key} not refused: {found:?}"));
            let shown = issue.to_string();
            assert_eq!(issue.line, 4, "{shown}");
            assert!(shown.contains(instead) && shown.contains("never written"), "{shown}");
            assert!(!format!("{found:?}").contains("hunter2"), "{key} echoed: {found:?}");
        }
    }

    #[test]
    fn password_sources_need_a_user_a_set_variable_and_only_one_of_them() {
        let cases = [
            ("password_file = \"/pw\"", "server.password_file", "add user"),
            ("user = \"u\"", "server.user", "export FLIGHTLINE_PASSWORD"),
            ("user = \"u\"\npassword_env = \"NOPE\"", "server.password_env", "NOPE is not set"),
            (
                "user = \"u\"\npassword_env = \"A\"\npassword_file = \"f\"",
                "server.password_env",
                "not both",
            ),
            ("user = \"a:b\"\npassword_file = \"f\"", "server.user", "`:`"),
            ("token_env = \"T\"\ntoken_file = \"f\"", "server.token_env", "not both"),
            ("token_env = \"NO TOKEN\"", "server.token_env", "variable name"),
        ];
        for (keys, key, words) in cases {
            let found = issues(&format!("uri = \"grpc://h:1\"\n{keys}"));
            assert_eq!(found.len(), 1, "{keys}: {found:?}");
            assert_eq!(found[0].key, key, "{keys}: {found:?}");
            assert!(found[0].message.contains(words), "{keys}: {}", found[0]);
        }
    }

    #[test]
    fn oidc_keys_and_flags_give_the_same_settings() {
        let from_file = settings(
            "uri = \"grpc://h:1\"\noidc_issuer = \"https://idp.example/\"\n\
             oidc_client_id = \"svc\"\noidc_client_secret_env = \"PROD_TOKEN\"\n\
             oidc_audience = \"flightline\"\noidc_scope = \"read write\"",
        );
        let from_flags = cli(&[
            "--uri=grpc://h:1",
            "--oidc-issuer=https://idp.example",
            "--oidc-client-id=svc",
            "--oidc-client-secret-env=PROD_TOKEN",
            "--oidc-audience=flightline",
            "--oidc-scope=read write",
        ]);
        assert_eq!(from_file, from_flags);
        let Some(TokenSource::Oidc(oidc)) = from_file.token else {
            panic!("no OIDC settings: {from_file:?}")
        };
        assert_eq!(oidc.issuer, "https://idp.example");
        assert_eq!(oidc.secret, ClientSecret::Env("PROD_TOKEN".into()));
        let file = settings(
            "uri = \"grpc://h:1\"\noidc_issuer = \"https://idp.example\"\n\
             oidc_client_id = \"svc\"\noidc_client_secret_file = \"/run/oidc\"",
        );
        let shown = format!("{file:?}");
        assert!(shown.contains("/run/oidc") && shown.contains("svc"), "{shown}");
    }

    #[test]
    fn oidc_env_reads_the_micromegas_variables_only_when_asked() {
        let vars = |name: &str| match name {
            MICROMEGAS_OIDC_ISSUER => Some("https://idp.example".to_string()),
            MICROMEGAS_OIDC_CLIENT_ID => Some("svc".to_string()),
            MICROMEGAS_OIDC_CLIENT_SECRET => Some("hunter2".to_string()),
            _ => None,
        };
        let text = format!("[server]\nuri = \"grpc://h:1\"\noidc = \"env\"\n{JOB}");
        let config = Config::parse(Path::new("jobs.toml"), &text, &vars).unwrap();
        let settings = &config.servers["default"].settings;
        let expected = OidcSettings {
            issuer: "https://idp.example".into(),
            client_id: "svc".into(),
            secret: ClientSecret::Env(MICROMEGAS_OIDC_CLIENT_SECRET.into()),
            audience: None,
            scope: None,
        };
        assert_eq!(settings.token, Some(TokenSource::Oidc(expected)));
        assert!(!format!("{config:?}").contains("hunter2"));
        // Without `oidc`, the variables are not looked at.
        let text = format!("[server]\nuri = \"grpc://h:1\"\n{JOB}");
        let config = Config::parse(Path::new("jobs.toml"), &text, &vars).unwrap();
        assert_eq!(config.servers["default"].settings.token, None);
    }

    #[test]
    fn oidc_mistakes_are_refused_naming_the_key() {
        let issuer = "oidc_issuer = \"https://idp\"\noidc_client_id = \"svc\"";
        let cases = [
            (
                format!("{issuer}\noidc_client_secret_file = \"f\"\ntoken_file = \"t\""),
                "server.oidc_issuer",
                "keep one",
            ),
            (
                format!(
                    "{issuer}\noidc_client_secret_file = \"f\"\nuser = \"u\"\npassword_file = \"p\""
                ),
                "server.oidc_issuer",
                "keep one",
            ),
            (issuer.to_string(), "server.oidc_issuer", "needs its secret"),
            (
                "oidc_issuer = \"https://idp\"\noidc_client_secret_file = \"f\"".into(),
                "server.oidc_issuer",
                "oidc_client_id",
            ),
            ("oidc_client_id = \"svc\"".into(), "server.oidc_client_id", "needs oidc_issuer"),
            (
                format!("{issuer}\noidc_client_secret_env = \"NOPE\""),
                "server.oidc_client_secret_env",
                "NOPE is not set",
            ),
            (
                "oidc_issuer = \"idp\"\noidc_client_id = \"svc\"\noidc_client_secret_file = \"f\""
                    .into(),
                "server.oidc_issuer",
                "https://",
            ),
            ("oidc = \"yes\"".into(), "server.oidc", "\"env\""),
            ("oidc = \"env\"".into(), "server.oidc", "needs MICROMEGAS_OIDC_ISSUER"),
            ("oidc = \"env\"\noidc_client_id = \"svc\"".into(), "server.oidc_client_id", "remove"),
        ];
        for (keys, key, words) in cases {
            let found = issues(&format!("uri = \"grpc://h:1\"\n{keys}"));
            assert_eq!(found.len(), 1, "{keys}: {found:?}");
            assert_eq!(found[0].key, key, "{keys}: {found:?}");
            assert!(found[0].message.contains(words), "{keys}: {}", found[0]);
        }
        let found =
            issues(&format!("uri = \"grpc://h:1\"\n{issuer}\noidc_client_secret = \"hunter2\""));
        let refused = found.iter().find(|i| i.key == "server.oidc_client_secret");
        assert!(refused.is_some_and(|i| i.message.contains("never written")), "{found:?}");
        assert!(!format!("{found:?}").contains("hunter2"), "{found:?}");
    }

    #[test]
    fn oidc_flags_conflicting_with_a_token_or_missing_a_secret_are_refused() {
        let parse = |args: &[&str]| {
            let cli = Cli::try_parse_from(std::iter::once("probe").chain(args.iter().copied()));
            cli.unwrap().connect.settings().unwrap_err().to_string()
        };
        let oidc = ["--oidc-issuer=https://idp", "--oidc-client-id=svc"];
        let err = parse(&[&oidc[..], &["--oidc-client-secret-file=f", "--token=t"]].concat());
        assert!(err.contains("keep one of them") && !err.contains("=t"), "{err}");
        let err = parse(&oidc);
        assert!(err.contains("--oidc-client-secret-env"), "{err}");
        let err = parse(&["--oidc-audience=a"]);
        assert!(err.contains("need --oidc-issuer"), "{err}");
    }

    #[test]
    fn unknown_server_keys_are_still_refused() {
        let found = issues("uri = \"grpc://h:1\"\npasword_file = \"/pw\"");
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].message.contains("unknown field `pasword_file`"), "{}", found[0]);
        assert!(found[0].message.contains("password_file"), "{}", found[0]);
    }

    #[test]
    fn debug_of_the_file_shows_no_secret() {
        let text = format!(
            "[server]\nuri = \"grpc://h:1\"\nheaders = {{ authorization = \"Bearer ${{PROD_TOKEN}}\" }}\n\
             user = \"alice\"\npassword_env = \"PROD_PASSWORD\"\n{JOB}"
        );
        let config = Config::parse(Path::new("jobs.toml"), &text, &env).unwrap();
        let shown = format!("{config:?}");
        assert!(!shown.contains("s3cr3t-from-env"), "{shown}");
        assert!(shown.contains("authorization=<redacted>") && shown.contains("PROD_PASSWORD"));
    }
}
