//! [`ServerSettings`]: everything needed to reach and authenticate to one server, whether it
//! came from the command line ([`ConnectArgs`](super::ConnectArgs)) or from a job file's
//! `[server]` / `[servers.NAME]` table. [`ServerSettings::builder`] is the only place a
//! [`ClientBuilder`] is made from settings, so both paths accept the same options and behave
//! the same way.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use flightline_core::Error;
use flightline_core::client::{
    BasicCredentials, ClientBuilder, ClientSecret, DEFAULT_CONNECT_TIMEOUT, EnvToken, FileToken,
    FlightSqlClient, OidcClientCredentials, is_secret_header,
};

use crate::RunnerError;

/// The environment variable the password of a user is read from when no other source is given.
pub const PASSWORD_ENV: &str = "FLIGHTLINE_PASSWORD";

/// Where and how to connect to one Flight SQL server.
///
/// `Debug` shows no secret: the token, and the values of secret headers (`authorization`,
/// `x-api-key`, ...), are redacted; a password is only ever named by where it is read from.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerSettings {
    /// `grpc://`, `grpc+tls://`, `http://` or `https://`.
    pub uri: String,
    /// The bearer token sent as `authorization: Bearer TOKEN`.
    pub token: Option<TokenSource>,
    /// A user for the Flight handshake (HTTP Basic) and where its password is read.
    pub login: Option<Login>,
    /// Keep the cookies the server sets and send them back.
    pub cookies: bool,
    /// Headers sent with every call, as (name, value).
    pub headers: Vec<(String, String)>,
    /// A PEM file of CA certificates to trust instead of the system roots.
    pub tls_ca: Option<PathBuf>,
    /// The name to verify the server certificate against, instead of the URI's host.
    pub tls_domain: Option<String>,
    /// Accept plaintext endpoint locations although the server is reached over TLS.
    pub allow_insecure_locations: bool,
    /// Other places (`host`, `host:port`, `grpc+tls://host:port`) that may receive credentials.
    pub credential_hosts: Vec<String>,
    /// How long to wait for the connection.
    pub connect_timeout: Duration,
    /// How long to wait for each answer (`None`: no limit).
    pub request_timeout: Option<Duration>,
}

/// Where a bearer token comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// Given as is (`--token`, FLIGHTLINE_TOKEN).
    Value(String),
    /// Read from this environment variable before every request (`token_env`).
    Env(String),
    /// Read from this file before every request, so a rotated token is picked up
    /// (`--token-file`, `token_file`).
    File(PathBuf),
    /// Tokens from an OIDC provider, by the client-credentials grant, refreshed before they
    /// expire (`--oidc-issuer`, `oidc_issuer`, ...).
    Oidc(OidcSettings),
}

/// An OIDC client-credentials client: where to get tokens and as whom. The secret is named by
/// where it is read (an environment variable or a file), never held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcSettings {
    /// The issuer URL (the `iss` of its tokens; discovery is at
    /// `ISSUER/.well-known/openid-configuration`).
    pub issuer: String,
    /// The client id.
    pub client_id: String,
    /// Where the client secret is read, at every token request.
    pub secret: ClientSecret,
    /// The audience to ask tokens for.
    pub audience: Option<String>,
    /// The scopes to ask for (space-separated).
    pub scope: Option<String>,
}

impl OidcSettings {
    /// The token provider these settings describe.
    pub fn provider(&self) -> Result<OidcClientCredentials, RunnerError> {
        let mut provider =
            OidcClientCredentials::new(&self.issuer, &self.client_id, self.secret.clone())?;
        if let Some(audience) = &self.audience {
            provider = provider.audience(audience);
        }
        if let Some(scope) = &self.scope {
            provider = provider.scope(scope);
        }
        Ok(provider)
    }
}

/// A user name and where its password is read, at every handshake (so a rotated password is
/// picked up). A password is never given as a value: not on the command line, not in a job file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    /// The user name.
    pub user: String,
    /// Where the password is.
    pub password: PasswordSource,
}

/// Where a password is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    /// This environment variable (FLIGHTLINE_PASSWORD unless `password_env` names another).
    Env(String),
    /// This file, one trailing newline ignored (`--password-file`, `password_file`).
    File(PathBuf),
}

impl ServerSettings {
    /// Settings for `uri` with nothing else: no credentials, system TLS roots, the default
    /// connect timeout, no request timeout.
    pub fn new(uri: impl Into<String>) -> Self {
        Self {
            uri: uri.into(),
            token: None,
            login: None,
            cookies: false,
            headers: Vec::new(),
            tls_ca: None,
            tls_domain: None,
            allow_insecure_locations: false,
            credential_hosts: Vec::new(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: None,
        }
    }

    /// Connects with these settings; a refused password fails here, naming the server.
    pub async fn connect(&self) -> Result<FlightSqlClient, RunnerError> {
        Ok(self.builder()?.connect().await?)
    }

    /// A client builder with these settings, not connected yet. Fails when a password
    /// variable is not set, so that the message says what to export before anything is sent.
    pub fn builder(&self) -> Result<ClientBuilder, RunnerError> {
        let mut builder = FlightSqlClient::builder(&self.uri)
            .connect_timeout(self.connect_timeout)
            .cookies(self.cookies)
            .allow_insecure_locations(self.allow_insecure_locations)
            .credential_hosts(self.credential_hosts.iter().cloned());
        for (name, value) in &self.headers {
            builder = builder.header(name, value);
        }
        builder = match &self.token {
            Some(TokenSource::Value(token)) => builder.bearer_token(token),
            Some(TokenSource::Env(var)) => builder.token_provider(Arc::new(EnvToken::new(var))),
            Some(TokenSource::File(path)) => builder.token_provider(Arc::new(FileToken::new(path))),
            Some(TokenSource::Oidc(oidc)) => builder.token_provider(Arc::new(oidc.provider()?)),
            None => builder,
        };
        if let Some(login) = &self.login {
            builder = builder.basic_credentials(login.credentials()?);
        }
        if let Some(ca) = &self.tls_ca {
            builder = builder.tls_ca_file(ca);
        }
        if let Some(domain) = &self.tls_domain {
            builder = builder.tls_domain(domain);
        }
        if let Some(timeout) = self.request_timeout {
            builder = builder.request_timeout(timeout);
        }
        Ok(builder)
    }
}

impl Login {
    /// The handshake credentials; the password itself is read at every handshake.
    pub fn credentials(&self) -> Result<BasicCredentials, RunnerError> {
        match &self.password {
            PasswordSource::File(path) => {
                Ok(BasicCredentials::password_from_file(&self.user, path))
            }
            PasswordSource::Env(var) if std::env::var_os(var).is_none() => {
                Err(Error::Config(format!(
                    "user {} needs a password: export {var}, or give a password file \
                     (--password-file FILE on the command line, password_file = \"FILE\" in a \
                     job file); a password is never taken from the command line or the job file",
                    self.user
                ))
                .into())
            }
            PasswordSource::Env(var) => Ok(BasicCredentials::password_from_env(&self.user, var)),
        }
    }
}

impl fmt::Debug for ServerSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<String> = self
            .headers
            .iter()
            .map(|(name, value)| {
                if is_secret_header(name) {
                    format!("{name}=<redacted>")
                } else {
                    format!("{name}={value}")
                }
            })
            .collect();
        f.debug_struct("ServerSettings")
            .field("uri", &self.uri)
            .field("token", &self.token)
            .field("login", &self.login)
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

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenSource::Value(_) => f.write_str("<redacted>"),
            TokenSource::Env(var) => write!(f, "<from ${var}>"),
            TokenSource::File(path) => write!(f, "<from {}>", path.display()),
            TokenSource::Oidc(oidc) => write!(
                f,
                "<OIDC client {:?} of {}, secret {:?}>",
                oidc.client_id, oidc.issuer, oidc.secret
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_secrets() -> ServerSettings {
        ServerSettings {
            token: Some(TokenSource::Value("hunter2".into())),
            login: Some(Login {
                user: "alice".into(),
                password: PasswordSource::File("/run/secrets/pw".into()),
            }),
            headers: vec![
                ("x-api-key".into(), "key-123".into()),
                ("x-tenant-id".into(), "production".into()),
            ],
            ..ServerSettings::new("grpc://127.0.0.1:1")
        }
    }

    #[test]
    fn debug_hides_the_token_and_secret_headers() {
        let shown = format!("{:?}", with_secrets());
        for secret in ["hunter2", "key-123"] {
            assert!(!shown.contains(secret), "{secret} leaked: {shown}");
        }
        assert!(shown.contains("token: Some(<redacted>)"), "{shown}");
        assert!(shown.contains("x-api-key=<redacted>"), "{shown}");
        assert!(shown.contains("x-tenant-id=production"), "{shown}");
        assert!(shown.contains("alice") && shown.contains("/run/secrets/pw"), "{shown}");
        let builder = format!("{:?}", with_secrets().builder().unwrap());
        assert!(!builder.contains("hunter2") && !builder.contains("key-123"), "{builder}");
    }

    #[test]
    fn token_sources_are_named_not_shown() {
        let env = format!("{:?}", TokenSource::Env("MY_TOKEN".into()));
        assert_eq!(env, "<from $MY_TOKEN>");
        let file = format!("{:?}", TokenSource::File("/run/token".into()));
        assert_eq!(file, "<from /run/token>");
    }

    #[test]
    fn every_setting_reaches_the_builder() {
        let settings = ServerSettings {
            cookies: true,
            tls_domain: Some("flight.internal".into()),
            allow_insecure_locations: true,
            credential_hosts: vec!["replica:50051".into()],
            connect_timeout: Duration::from_secs(3),
            request_timeout: Some(Duration::from_secs(42)),
            tls_ca: Some("ca.pem".into()),
            ..with_secrets()
        };
        let shown = format!("{:?}", settings.builder().unwrap());
        for part in [
            "cookies: true",
            "Some(\"flight.internal\")",
            "allow_insecure_locations: true",
            "replica:50051",
            "connect_timeout: 3s",
            "request_timeout: Some(42s)",
            "custom_ca: true",
            "credential_exchange: true",
            "x-tenant-id",
        ] {
            assert!(shown.contains(part), "{part} missing from {shown}");
        }
        let plain = format!("{:?}", ServerSettings::new("grpc://h:1").builder().unwrap());
        for part in ["cookies: false", "credential_exchange: false", "custom_ca: false"] {
            assert!(plain.contains(part), "{part} missing from {plain}");
        }
    }

    #[test]
    fn a_token_from_a_file_or_the_environment_is_a_provider() {
        for token in [TokenSource::Env("T".into()), TokenSource::File("t".into())] {
            let settings =
                ServerSettings { token: Some(token), ..ServerSettings::new("grpc://h:1") };
            let shown = format!("{:?}", settings.builder().unwrap());
            assert!(shown.contains("token_provider: true"), "{shown}");
        }
    }

    #[test]
    fn a_password_variable_that_is_not_set_is_named() {
        let var = "FLIGHTLINE_TEST_PASSWORD_NEVER_SET";
        assert!(std::env::var_os(var).is_none());
        let login = Login { user: "alice".into(), password: PasswordSource::Env(var.into()) };
        let err = login.credentials().unwrap_err().to_string();
        for part in [var, "alice", "--password-file", "password_file"] {
            assert!(err.contains(part), "{part} missing from {err}");
        }
    }
}
