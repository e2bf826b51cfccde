//! Connection options shared by every command that talks to a server: the CLI flags
//! ([`ConnectArgs`]) and the settings they turn into ([`ServerSettings`]), which a job file's
//! `[server]` table turns into as well.

mod settings;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use flightline_core::client::{
    ClientBuilder, ClientSecret, DEFAULT_URI, FlightSqlClient, MICROMEGAS_OIDC_AUDIENCE,
    MICROMEGAS_OIDC_CLIENT_ID, MICROMEGAS_OIDC_CLIENT_SECRET, MICROMEGAS_OIDC_ISSUER,
    is_secret_header,
};
use flightline_core::{Error, TimeRange};

pub use settings::{
    Login, OidcSettings, PASSWORD_ENV, PasswordSource, ServerSettings, TokenSource,
};

use crate::RunnerError;

/// Where the server is and how to authenticate: `--uri`, `--token`, `--user`, `--header`, TLS
/// options.
///
/// `Debug` redacts the token and the values of secret headers (`authorization`, `x-api-key`,
/// ...), so logging the parsed arguments never prints a credential.
#[derive(Clone, clap::Args)]
pub struct ConnectArgs {
    /// Flight SQL server (grpc://, grpc+tls://, http://, https://).
    #[arg(long, env = "FLIGHTLINE_URI", default_value = DEFAULT_URI)]
    pub uri: String,
    /// Bearer token, sent as `authorization: Bearer TOKEN`.
    #[arg(long, env = "FLIGHTLINE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// File holding the bearer token, read before every request so a rotated token is picked
    /// up; takes precedence over --token and FLIGHTLINE_TOKEN.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// User name for the Flight handshake (HTTP Basic, as Dremio and `flightline serve --user`
    /// expect); the server's session token then authenticates every call. The password comes
    /// from FLIGHTLINE_PASSWORD or --password-file, never from the command line.
    #[arg(long, env = "FLIGHTLINE_USER", value_name = "NAME")]
    pub user: Option<String>,
    /// File holding the password of --user (one trailing newline ignored).
    #[arg(long, value_name = "FILE", requires = "user")]
    pub password_file: Option<PathBuf>,
    /// OIDC client credentials instead of a token: get tokens from this issuer (discovered at
    /// URL/.well-known/openid-configuration) for --oidc-client-id, refreshed before they expire.
    #[arg(long, value_name = "URL", requires = "oidc_client_id", conflicts_with = "oidc_from_env")]
    pub oidc_issuer: Option<String>,
    /// The OIDC client id (with --oidc-issuer).
    #[arg(long, value_name = "ID", requires = "oidc_issuer")]
    pub oidc_client_id: Option<String>,
    /// Environment variable holding the OIDC client secret (read at every token request).
    #[arg(
        long,
        value_name = "VAR",
        requires = "oidc_issuer",
        conflicts_with = "oidc_client_secret_file"
    )]
    pub oidc_client_secret_env: Option<String>,
    /// File holding the OIDC client secret (read at every token request).
    #[arg(long, value_name = "FILE", requires = "oidc_issuer")]
    pub oidc_client_secret_file: Option<PathBuf>,
    /// The audience to ask OIDC tokens for (Auth0, Azure AD, ...).
    #[arg(long, value_name = "AUD")]
    pub oidc_audience: Option<String>,
    /// The scopes to ask OIDC tokens for (space-separated).
    #[arg(long, value_name = "SCOPES")]
    pub oidc_scope: Option<String>,
    /// OIDC client credentials from the Micromegas variables MICROMEGAS_OIDC_ISSUER,
    /// MICROMEGAS_OIDC_CLIENT_ID, MICROMEGAS_OIDC_CLIENT_SECRET and (optional)
    /// MICROMEGAS_OIDC_AUDIENCE; they are never used without this flag.
    #[arg(long)]
    pub oidc_from_env: bool,
    /// Keep the cookies the server sets and send them back (Dremio keeps sessions in cookies).
    #[arg(long)]
    pub cookies: bool,
    /// Extra header sent with every request, as NAME=VALUE (repeatable), e.g.
    /// `--header x-tenant-id=production`.
    #[arg(long = "header", value_name = "NAME=VALUE")]
    pub headers: Vec<String>,
    /// PEM file with the CA certificates to trust instead of the system roots (TLS URIs).
    #[arg(long, value_name = "PEM")]
    pub tls_ca: Option<PathBuf>,
    /// Name to verify the server certificate against, when it differs from the URI's host.
    #[arg(long, value_name = "NAME")]
    pub tls_domain: Option<String>,
    /// Accept plaintext (grpc://, http://) endpoint locations although the server is reached
    /// over TLS; without it such a location fails the query.
    #[arg(long)]
    pub allow_insecure_locations: bool,
    /// Another place that may receive the credentials when a result lives there: HOST,
    /// HOST:PORT or grpc+tls://HOST:PORT (repeatable).
    #[arg(long = "credential-host", value_name = "PLACE")]
    pub credential_hosts: Vec<String>,
    /// Seconds to wait for the connection.
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub connect_timeout: u64,
    /// Seconds to wait for the server to answer each call (reading a long result is not
    /// limited by it); no limit by default.
    #[arg(long, value_name = "SECONDS")]
    pub request_timeout: Option<u64>,
}

impl ConnectArgs {
    /// Connects with these options.
    pub async fn connect(&self) -> Result<FlightSqlClient, RunnerError> {
        self.settings()?.connect().await
    }

    /// A client builder with these options, not connected yet.
    pub fn builder(&self) -> Result<ClientBuilder, RunnerError> {
        self.settings()?.builder()
    }

    /// The settings these flags stand for; a malformed `--header` is refused here.
    pub fn settings(&self) -> Result<ServerSettings, RunnerError> {
        let headers = self
            .headers
            .iter()
            .map(|header| split_header(header).map(|(n, v)| (n.to_string(), v.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        let token = match (&self.token_file, self.token.as_deref().map(str::trim)) {
            (Some(path), _) => Some(TokenSource::File(path.clone())),
            (None, Some(token)) if !token.is_empty() => Some(TokenSource::Value(token.to_string())),
            (None, _) => None,
        };
        let token = match (self.oidc()?, token) {
            (Some(oidc), None) if self.user.is_none() => Some(TokenSource::Oidc(oidc)),
            (Some(_), _) => {
                return Err(Error::Config(
                    "OIDC (--oidc-issuer / --oidc-from-env) and --token, --token-file, \
                     FLIGHTLINE_TOKEN or --user / FLIGHTLINE_USER all give the server's \
                     credentials: keep one of them (unset FLIGHTLINE_TOKEN or FLIGHTLINE_USER \
                     if they are exported)"
                        .into(),
                )
                .into());
            }
            (None, token) => token,
        };
        Ok(ServerSettings {
            uri: self.uri.clone(),
            token,
            login: self.login(),
            cookies: self.cookies,
            headers,
            tls_ca: self.tls_ca.clone(),
            tls_domain: self.tls_domain.clone(),
            allow_insecure_locations: self.allow_insecure_locations,
            credential_hosts: self.credential_hosts.clone(),
            connect_timeout: Duration::from_secs(self.connect_timeout),
            request_timeout: self.request_timeout.map(Duration::from_secs),
        })
    }

    /// `--oidc-issuer` and its companions, or `--oidc-from-env`.
    fn oidc(&self) -> Result<Option<OidcSettings>, RunnerError> {
        let config = |message: String| RunnerError::from(Error::Config(message));
        if self.oidc_from_env {
            let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
            let required = |name: &str| {
                var(name).ok_or_else(|| {
                    config(format!(
                        "--oidc-from-env needs {name}; export {MICROMEGAS_OIDC_ISSUER}, \
                         {MICROMEGAS_OIDC_CLIENT_ID} and {MICROMEGAS_OIDC_CLIENT_SECRET} \
                         ({MICROMEGAS_OIDC_AUDIENCE} is optional)"
                    ))
                })
            };
            let issuer = required(MICROMEGAS_OIDC_ISSUER)?;
            let client_id = required(MICROMEGAS_OIDC_CLIENT_ID)?;
            required(MICROMEGAS_OIDC_CLIENT_SECRET)?;
            return Ok(Some(OidcSettings {
                issuer: issuer.trim().to_string(),
                client_id: client_id.trim().to_string(),
                secret: ClientSecret::Env(MICROMEGAS_OIDC_CLIENT_SECRET.into()),
                audience: self.oidc_audience.clone().or_else(|| var(MICROMEGAS_OIDC_AUDIENCE)),
                scope: self.oidc_scope.clone(),
            }));
        }
        let (Some(issuer), Some(client_id)) = (&self.oidc_issuer, &self.oidc_client_id) else {
            if self.oidc_audience.is_some() || self.oidc_scope.is_some() {
                return Err(config(
                    "--oidc-audience and --oidc-scope need --oidc-issuer (or --oidc-from-env)"
                        .into(),
                ));
            }
            return Ok(None);
        };
        let secret = match (&self.oidc_client_secret_env, &self.oidc_client_secret_file) {
            (Some(var), _) => ClientSecret::Env(var.clone()),
            (None, Some(path)) => ClientSecret::File(path.clone()),
            (None, None) => {
                return Err(config(format!(
                    "the OIDC client {client_id:?} needs its secret: give \
                     --oidc-client-secret-env VAR or --oidc-client-secret-file FILE (a secret is \
                     never taken from the command line)"
                )));
            }
        };
        Ok(Some(OidcSettings {
            issuer: issuer.trim().to_string(),
            client_id: client_id.trim().to_string(),
            secret,
            audience: self.oidc_audience.clone(),
            scope: self.oidc_scope.clone(),
        }))
    }

    /// `--user` with the password from `--password-file`, else from FLIGHTLINE_PASSWORD.
    fn login(&self) -> Option<Login> {
        let user = self.user.as_deref().map(str::trim).filter(|u| !u.is_empty())?;
        let password = match &self.password_file {
            Some(path) => PasswordSource::File(path.clone()),
            None => PasswordSource::Env(PASSWORD_ENV.to_string()),
        };
        Some(Login { user: user.to_string(), password })
    }
}

impl fmt::Debug for ConnectArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<String> = self.headers.iter().map(|h| redact_header(h)).collect();
        f.debug_struct("ConnectArgs")
            .field("uri", &self.uri)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("token_file", &self.token_file)
            .field("user", &self.user)
            .field("password_file", &self.password_file)
            .field("oidc_issuer", &self.oidc_issuer)
            .field("oidc_client_id", &self.oidc_client_id)
            .field("oidc_client_secret_env", &self.oidc_client_secret_env)
            .field("oidc_client_secret_file", &self.oidc_client_secret_file)
            .field("oidc_audience", &self.oidc_audience)
            .field("oidc_scope", &self.oidc_scope)
            .field("oidc_from_env", &self.oidc_from_env)
            .field("cookies", &self.cookies)
            .field("headers", &headers)
            .field("tls_ca", &self.tls_ca)
            .field("tls_domain", &self.tls_domain)
            .field("allow_insecure_locations", &self.allow_insecure_locations)
            .field("credential_hosts", &self.credential_hosts)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .finish()
    }
}

/// `NAME=VALUE` with the value hidden when the name is a secret one; a malformed header may be
/// a secret written the wrong way (`x-api-key:KEY`), so it is hidden whole.
fn redact_header(header: &str) -> String {
    match header.split_once('=') {
        Some((name, _)) if is_secret_header(name.trim()) => format!("{name}=<redacted>"),
        Some(_) => header.to_string(),
        None => "<redacted: not NAME=VALUE>".to_string(),
    }
}

/// `NAME=VALUE` → (`NAME`, `VALUE`); the value may itself contain `=`. A malformed argument
/// is never echoed: without the `=` nobody can tell its name from its value, and `--header
/// "Bearer abc"` is a token.
fn split_header(header: &str) -> Result<(&str, &str), RunnerError> {
    match header.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => Ok((name.trim(), value)),
        _ => Err(Error::Config(format!(
            "a --header argument ({} characters, not shown: it may hold a credential) is not \
             NAME=VALUE; write e.g. --header x-tenant-id=production or --header \
             authorization='Bearer TOKEN'",
            header.chars().count()
        ))
        .into()),
    }
}

/// The time range of a query: `--begin T --end T`, or `--last SPAN`, or neither.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RangeArgs {
    /// Start of the range, RFC 3339 (e.g. 2024-01-01T00:00:00Z); needs --end.
    #[arg(long, value_name = "RFC3339", requires = "end", conflicts_with = "last")]
    pub begin: Option<String>,
    /// End of the range (excluded), RFC 3339; needs --begin.
    #[arg(long, value_name = "RFC3339", requires = "begin", conflicts_with = "last")]
    pub end: Option<String>,
    /// Relative range ending now: 30s, 15m, 2h, 7d, 1w.
    #[arg(long, value_name = "SPAN")]
    pub last: Option<String>,
}

impl RangeArgs {
    /// The range asked for, or `None` to query without a time range.
    pub fn time_range(&self) -> Result<Option<TimeRange>, RunnerError> {
        let range = match (&self.begin, &self.end, &self.last) {
            (None, None, None) => None,
            (None, None, Some(span)) => Some(TimeRange::parse_relative(span)?),
            (Some(begin), Some(end), None) => Some(TimeRange::parse(begin, end)?),
            _ => {
                return Err(Error::TimeRange {
                    input: self.describe(),
                    reason: "give either both --begin and --end, or --last, or none".into(),
                }
                .into());
            }
        };
        Ok(range)
    }

    fn describe(&self) -> String {
        let parts = [("--begin", &self.begin), ("--end", &self.end), ("--last", &self.last)];
        parts
            .iter()
            .filter_map(|(flag, value)| value.as_ref().map(|v| format!("{flag} {v}")))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Probe {
        #[command(flatten)]
        connect: ConnectArgs,
        #[command(flatten)]
        range: RangeArgs,
    }

    fn parse(args: &[&str]) -> Result<Probe, clap::Error> {
        Probe::try_parse_from(std::iter::once("probe").chain(args.iter().copied()))
    }

    #[test]
    fn headers_split_on_the_first_equals_sign() {
        assert_eq!(split_header("x-tenant-id=prod").unwrap(), ("x-tenant-id", "prod"));
        assert_eq!(split_header("x-sig=a=b").unwrap(), ("x-sig", "a=b"));
        for bad in ["x-tenant-id", "=value", "x-api-key:s3cr3t", "Bearer abc.def"] {
            let err = split_header(bad).unwrap_err().to_string();
            assert!(err.contains("NAME=VALUE"), "{err}");
            for part in ["s3cr3t", "abc.def", "value"] {
                assert!(!err.contains(part), "{part} echoed: {err}");
            }
        }
    }

    #[test]
    fn debug_hides_the_token_and_secret_headers() {
        let probe = parse(&[
            "--token",
            "hunter2",
            "--header",
            "authorization=Bearer b3arer",
            "--header",
            "X-Api-Key=key-123",
            "--header",
            "x-api-key:colon-key",
            "--header",
            "x-tenant-id=production",
        ])
        .unwrap();
        let shown = format!("{probe:?}");
        for secret in ["hunter2", "b3arer", "key-123", "colon-key"] {
            assert!(!shown.contains(secret), "{secret} leaked: {shown}");
        }
        assert!(shown.contains("x-tenant-id=production"), "{shown}");
        assert!(shown.contains("authorization=<redacted>"), "{shown}");
        assert!(shown.contains("token: Some(\"<redacted>\")"), "{shown}");
    }

    #[test]
    fn user_needs_a_password_source_outside_the_command_line() {
        let probe = parse(&["--user", "alice", "--password-file", "/run/secrets/pw"]).unwrap();
        let login = probe.connect.settings().unwrap().login.unwrap();
        assert_eq!(login.user, "alice");
        assert_eq!(login.password, PasswordSource::File("/run/secrets/pw".into()));
        let credentials = login.credentials().unwrap();
        assert!(format!("{credentials:?}").contains("/run/secrets/pw"));
        assert!(parse(&["--password-file", "/pw"]).is_err(), "--password-file needs --user");
        assert!(parse(&["--user", "alice", "--password", "x"]).is_err(), "no --password flag");
        if std::env::var_os(PASSWORD_ENV).is_none() {
            let probe = parse(&["--user", "alice"]).unwrap();
            let err = probe.connect.builder().unwrap_err().to_string();
            assert!(err.contains(PASSWORD_ENV) && err.contains("--password-file"), "{err}");
        }
        assert!(parse(&["--user", " "]).unwrap().connect.settings().unwrap().login.is_none());
    }

    #[test]
    fn every_flag_lands_in_the_settings() {
        let probe = parse(&[
            "--uri",
            "grpc+tls://flight:443",
            "--token-file",
            "/run/token",
            "--user",
            "alice",
            "--password-file",
            "/run/pw",
            "--cookies",
            "--header",
            "x-tenant-id=prod",
            "--tls-ca",
            "ca.pem",
            "--tls-domain",
            "flight.internal",
            "--allow-insecure-locations",
            "--credential-host",
            "replica:443",
            "--connect-timeout",
            "3",
            "--request-timeout",
            "60",
        ])
        .unwrap();
        let expected = ServerSettings {
            token: Some(TokenSource::File("/run/token".into())),
            login: Some(Login {
                user: "alice".into(),
                password: PasswordSource::File("/run/pw".into()),
            }),
            cookies: true,
            headers: vec![("x-tenant-id".into(), "prod".into())],
            tls_ca: Some("ca.pem".into()),
            tls_domain: Some("flight.internal".into()),
            allow_insecure_locations: true,
            credential_hosts: vec!["replica:443".into()],
            connect_timeout: Duration::from_secs(3),
            request_timeout: Some(Duration::from_secs(60)),
            ..ServerSettings::new("grpc+tls://flight:443")
        };
        assert_eq!(probe.connect.settings().unwrap(), expected);
        let bad = parse(&["--header", "x-api-key:s3cr3t"]).unwrap().connect.settings();
        assert!(bad.is_err_and(|err| !err.to_string().contains("s3cr3t")));
    }

    #[test]
    fn ranges_from_flags() {
        let probe =
            parse(&["--begin", "2024-01-01T00:00:00Z", "--end", "2024-01-02T00:00:00Z"]).unwrap();
        let range = probe.range.time_range().unwrap().unwrap();
        assert_eq!(range.duration(), chrono::Duration::days(1));

        let probe = parse(&["--last", "2h"]).unwrap();
        let range = probe.range.time_range().unwrap().unwrap();
        assert!(range.duration() >= chrono::Duration::hours(2));

        assert!(parse(&[]).unwrap().range.time_range().unwrap().is_none());
        assert!(parse(&["--begin", "2024-01-01T00:00:00Z"]).is_err());
        assert!(parse(&["--last", "2h", "--end", "2024-01-01T00:00:00Z"]).is_err());
        let bad = parse(&["--last", "2 fortnights"]).unwrap().range.time_range();
        assert!(matches!(bad, Err(RunnerError::Core(Error::TimeRange { .. }))));
    }

    #[test]
    fn reversed_range_is_refused() {
        let range = RangeArgs {
            begin: Some("2024-01-02T00:00:00Z".into()),
            end: Some("2024-01-01T00:00:00Z".into()),
            last: None,
        };
        assert!(matches!(range.time_range(), Err(RunnerError::Core(Error::TimeRange { .. }))));
    }
}
