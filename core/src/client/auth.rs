//! Request headers and credentials: static headers, token providers, and redaction of secrets
//! in `Debug` output and log lines.

use std::fmt;
use std::path::PathBuf;

use futures::future::BoxFuture;
use tonic::metadata::{Ascii, MetadataKey, MetadataMap, MetadataValue};

use super::tls::{Target, host_and_port, scheme_tls};
use crate::error::{Error, Result};

/// Supplies the bearer token for each request, so a token can be refreshed or rotated while
/// one client stays in use (the Micromegas `auth_provider` idea).
///
/// The client calls [`TokenProvider::token`] before every gRPC call and sends
/// `authorization: Bearer <token>`; an error aborts that call. Implement it by returning a
/// boxed future, e.g. `Box::pin(async move { Ok(fetch_token().await?) })`.
pub trait TokenProvider: Send + Sync {
    /// The token to send with the next request.
    fn token(&self) -> BoxFuture<'_, Result<String>>;

    /// Called when the server refused `rejected` with `Unauthenticated` (it expired, or the
    /// server forgot its session): return a fresh token and the client retries that call once
    /// with it, or `None` to let the call fail. The default gives up; the handshake provider
    /// ([`HandshakeTokenProvider`](super::HandshakeTokenProvider)) authenticates again.
    fn renew<'a>(&'a self, rejected: &'a str) -> BoxFuture<'a, Result<Option<String>>> {
        let _ = rejected;
        Box::pin(async { Ok(None) })
    }
}

/// A token that never changes.
#[derive(Clone)]
pub struct StaticToken(String);

impl StaticToken {
    /// Wraps a fixed token.
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }
}

impl fmt::Debug for StaticToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StaticToken(<redacted>)")
    }
}

impl TokenProvider for StaticToken {
    fn token(&self) -> BoxFuture<'_, Result<String>> {
        Box::pin(async move { Ok(self.0.clone()) })
    }
}

/// Reads the token from an environment variable on every request, so a supervisor that
/// updates the variable (or a test) is honoured without reconnecting.
#[derive(Debug, Clone)]
pub struct EnvToken {
    var: String,
}

impl EnvToken {
    /// Reads `var` (e.g. `FLIGHTLINE_TOKEN`).
    pub fn new(var: impl Into<String>) -> Self {
        Self { var: var.into() }
    }
}

impl TokenProvider for EnvToken {
    fn token(&self) -> BoxFuture<'_, Result<String>> {
        Box::pin(async move {
            match std::env::var(&self.var) {
                Ok(token) if !token.trim().is_empty() => Ok(token.trim().to_string()),
                _ => Err(Error::Config(format!(
                    "the token provider reads the environment variable {} but it is not set or \
                     empty; export it or pass a token another way",
                    self.var
                ))),
            }
        })
    }
}

/// Reads the token from a file on every request (surrounding whitespace ignored), so a
/// sidecar that rotates the file (Kubernetes projected tokens, Vault agent) is honoured.
#[derive(Debug, Clone)]
pub struct FileToken {
    path: PathBuf,
}

impl FileToken {
    /// Reads the token from `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }
}

impl TokenProvider for FileToken {
    fn token(&self) -> BoxFuture<'_, Result<String>> {
        Box::pin(async move {
            let text = tokio::fs::read_to_string(&self.path).await.map_err(|err| {
                Error::Config(format!("cannot read the token file {}: {err}", self.path.display()))
            })?;
            let token = text.trim();
            if token.is_empty() {
                return Err(Error::Config(format!(
                    "the token file {} is empty",
                    self.path.display()
                )));
            }
            Ok(token.to_string())
        })
    }
}

/// Parts of a header name that mark its value as a credential. A substring rule rather than a
/// list of names, so `x-amz-security-token`, `x-goog-iap-jwt-assertion` or `db_passwd` are
/// caught without being known in advance; a false positive only hides a harmless value.
const SECRET_WORDS: &[&str] = &[
    "auth",
    "token",
    "key",
    "secret",
    "password",
    "passwd",
    "pwd",
    "session",
    "cookie",
    "signature",
    "credential",
    "jwt",
    "bearer",
    "csrf",
    "xsrf",
    "private",
];

/// True for header names whose values are credentials: they are never printed, and they go
/// only to the hosts allowed to see credentials. Case, `-`, `_` and `.` are ignored, so
/// `X-Pass-Word` counts as `password`.
pub fn is_secret_header(name: &str) -> bool {
    let name: String = name
        .chars()
        .filter(|c| !matches!(c, '-' | '_' | '.'))
        .map(|c| c.to_ascii_lowercase())
        .collect();
    SECRET_WORDS.iter().any(|word| name.contains(word))
}

/// Whether a request may carry credentials (secret headers, the token provider's token).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Credentials {
    /// The server itself, or a location the caller trusts with them.
    Send,
    /// Any other location: only the non-secret headers go there.
    Withhold,
}

/// The places besides the server itself that receive credentials.
///
/// A place is a scheme (TLS or plain), a host and optionally a port: a token the client sends
/// over TLS must not reach the same host in clear because the host alone was trusted.
#[derive(Debug, Clone, Default)]
pub(crate) struct CredentialScope {
    allowed: Vec<Allowed>,
    everywhere: bool,
    /// Whether the main connection uses TLS: `everywhere` never downgrades it.
    main_tls: bool,
}

/// One entry of [`ClientBuilder::credential_hosts`](super::ClientBuilder::credential_hosts).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Allowed {
    tls: bool,
    /// In lowercase (`[::1]` for IPv6).
    host: String,
    /// `None`: any port.
    port: Option<u16>,
}

impl CredentialScope {
    /// Reads `host`, `host:port` or `scheme://host[:port]` entries (`[::1]:50051` for IPv6);
    /// an entry without a scheme takes the main connection's (`main_tls`).
    pub(crate) fn new(hosts: &[String], everywhere: bool, main_tls: bool) -> Result<Self> {
        let allowed =
            hosts.iter().map(|entry| parse_allowed(entry, main_tls)).collect::<Result<_>>()?;
        Ok(Self { allowed, everywhere, main_tls })
    }

    /// The one place that decides whether a location sees credentials: its scheme, host and
    /// port must match an entry; with `everywhere`, any host does, but a client that reached
    /// its server over TLS still sends nothing in clear.
    pub(crate) fn for_location(&self, location: &Target) -> Credentials {
        let listed = self.allowed.iter().any(|allowed| {
            allowed.tls == location.tls
                && allowed.host.eq_ignore_ascii_case(&location.host)
                && allowed.port.is_none_or(|p| p == location.port)
        });
        let everywhere = self.everywhere && (location.tls || !self.main_tls);
        if everywhere || listed { Credentials::Send } else { Credentials::Withhold }
    }
}

fn parse_allowed(entry: &str, main_tls: bool) -> Result<Allowed> {
    let bad = || {
        Error::Config(format!(
            "credential host {entry:?} is not a host, host:port or scheme://host:port, e.g. \
             worker-1.internal, 10.0.0.7:50051 or grpc+tls://worker-1.internal:443"
        ))
    };
    let entry = entry.trim();
    let (tls, authority) = match entry.split_once("://") {
        Some((scheme, rest)) => (scheme_tls(scheme).ok_or_else(bad)?, rest.trim_end_matches('/')),
        None => (main_tls, entry),
    };
    if authority.is_empty() || authority.contains(['/', '@', '?', '#']) {
        return Err(bad());
    }
    let authority = authority.parse().map_err(|_| bad())?;
    let (host, port) = host_and_port(&authority).ok_or_else(bad)?;
    Ok(Allowed { tls, host, port })
}

/// Headers as the user wrote them, printed with secret values redacted.
pub(crate) struct Redacted<'a>(pub &'a [(String, String)]);

impl fmt::Debug for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (name, value) in self.0 {
            if is_secret_header(name) {
                map.entry(name, &"<redacted>");
            } else {
                map.entry(name, value);
            }
        }
        map.finish()
    }
}

/// Headers checked once to be valid gRPC metadata, ready to copy into each request.
#[derive(Clone, Default)]
pub(crate) struct HeaderSet {
    raw: Vec<(String, String)>,
    parsed: Vec<ParsedHeader>,
}

#[derive(Clone)]
struct ParsedHeader {
    key: MetadataKey<Ascii>,
    value: MetadataValue<Ascii>,
    secret: bool,
}

impl HeaderSet {
    /// Validates each header; the error names the offending header (never a secret value).
    pub(crate) fn parse(headers: &[(String, String)]) -> Result<Self> {
        let mut set = Self::default();
        for (name, value) in headers {
            set.push(name, value)?;
        }
        Ok(set)
    }

    pub(crate) fn push(&mut self, name: &str, value: &str) -> Result<()> {
        let key = MetadataKey::from_bytes(name.trim().as_bytes()).map_err(|_| {
            Error::Config(format!(
                "header name {name:?} is not a valid gRPC metadata key (use lowercase letters, \
                 digits, '-', '_' and '.', and no '-bin' suffix)"
            ))
        })?;
        // The value is never echoed: it may be a credential under an innocent name.
        let mut value_ok = MetadataValue::try_from(value).map_err(|_| {
            Error::Config(format!(
                "header {name:?} has a value that is not printable ASCII (value not shown)"
            ))
        })?;
        let secret = is_secret_header(name);
        value_ok.set_sensitive(secret);
        self.raw.push((key.as_str().to_string(), value.to_string()));
        self.parsed.push(ParsedHeader { key, value: value_ok, secret });
        Ok(())
    }

    /// Copies the headers into `metadata` (the secret ones only when `credentials` allows),
    /// replacing same-named entries so a later value (per-call) wins over an earlier one
    /// (client-wide).
    pub(crate) fn apply(&self, metadata: &mut MetadataMap, credentials: Credentials) {
        for header in &self.parsed {
            if !header.secret || credentials == Credentials::Send {
                metadata.insert(header.key.clone(), header.value.clone());
            }
        }
    }

    /// True when at least one header is a credential.
    pub(crate) fn has_secrets(&self) -> bool {
        self.parsed.iter().any(|header| header.secret)
    }

    pub(crate) fn raw(&self) -> &[(String, String)] {
        &self.raw
    }
}

impl fmt::Debug for HeaderSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Redacted(&self.raw).fmt(f)
    }
}

/// The `authorization` value for a token from a provider.
pub(crate) fn bearer_value(token: &str) -> Result<MetadataValue<Ascii>> {
    let mut value = MetadataValue::try_from(format!("Bearer {token}")).map_err(|_| {
        Error::Config("the token provider returned a token that is not printable ASCII".into())
    })?;
    value.set_sensitive(true);
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names_are_recognised() {
        for name in [
            "authorization",
            "Authorization",
            "x-api-key",
            "x-auth-token",
            "client_secret",
            "db-password",
            "apikey",
            "x-amz-security-token",
            "x-goog-iap-jwt-assertion",
            "X-Session-Id",
            "set-cookie",
            "x-amz-signature",
            "x-upstream-credentials",
            "db_passwd",
            "x-pass-word",
            "x-csrf",
            "x-private-thing",
            "x-bearer",
            "x-pwd",
        ] {
            assert!(is_secret_header(name), "{name}");
        }
        for name in
            ["x-tenant-id", "query_range_begin", "limit", "preserve_dictionary", "x-request-id"]
        {
            assert!(!is_secret_header(name), "{name}");
        }
    }

    #[test]
    fn debug_redacts_secret_values_only() {
        let headers = HeaderSet::parse(&[
            ("authorization".into(), "Bearer hunter2".into()),
            ("x-api-key".into(), "k-123".into()),
            ("x-tenant-id".into(), "production".into()),
        ])
        .unwrap();
        let shown = format!("{headers:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("k-123"), "{shown}");
        assert!(shown.contains("production"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }

    #[test]
    fn invalid_headers_are_config_errors_without_the_secret() {
        let err = HeaderSet::parse(&[("bad name".into(), "v".into())]).unwrap_err();
        assert!(matches!(&err, Error::Config(m) if m.contains("bad name")), "{err}");
        for name in ["x-api-key", "x-tenant-id"] {
            let err = HeaderSet::parse(&[(name.into(), "s\u{e9}cret\n".into())]).unwrap_err();
            assert!(
                matches!(&err, Error::Config(m) if m.contains(name) && !m.contains("cret")),
                "{err}"
            );
        }
    }

    #[test]
    fn secret_headers_are_withheld_from_untrusted_locations() {
        let headers = HeaderSet::parse(&[
            ("authorization".into(), "Bearer hunter2".into()),
            ("x-tenant-id".into(), "production".into()),
        ])
        .unwrap();
        let mut trusted = MetadataMap::new();
        headers.apply(&mut trusted, Credentials::Send);
        assert_eq!(trusted.get("authorization").unwrap(), "Bearer hunter2");
        let mut other = MetadataMap::new();
        headers.apply(&mut other, Credentials::Withhold);
        assert!(other.get("authorization").is_none());
        assert_eq!(other.get("x-tenant-id").unwrap(), "production");
    }

    fn target(uri: &str) -> Target {
        super::super::tls::parse_target(uri).unwrap()
    }

    #[test]
    fn credential_hosts_match_scheme_host_and_optional_port() {
        let hosts = ["Worker-1.Internal".to_string(), "10.0.0.7:50051".into(), "[::1]:9".into()];
        let scope = CredentialScope::new(&hosts, false, false).unwrap();
        assert_eq!(scope.for_location(&target("grpc://worker-1.internal:1")), Credentials::Send);
        assert_eq!(scope.for_location(&target("grpc://10.0.0.7:50051")), Credentials::Send);
        assert_eq!(scope.for_location(&target("grpc://10.0.0.7:50052")), Credentials::Withhold);
        assert_eq!(scope.for_location(&target("http://[::1]:9")), Credentials::Send);
        assert_eq!(
            scope.for_location(&target("grpc://worker-2.internal:1")),
            Credentials::Withhold
        );
        // Written without a scheme: the main connection's (plain here), so TLS is another place.
        assert_eq!(scope.for_location(&target("grpc+tls://10.0.0.7:50051")), Credentials::Withhold);
        for bad in
            ["", "user@host", "host/path", "host:port", "ftp://host", "grpc://", "grpc://h/x"]
        {
            let err = CredentialScope::new(&[bad.to_string()], false, false).unwrap_err();
            assert!(matches!(&err, Error::Config(m) if m.contains("credential host")), "{err}");
        }
    }

    #[test]
    fn a_tls_client_trusts_a_host_over_tls_only_unless_told_otherwise() {
        let hosts = ["10.0.0.7:50051".to_string(), "grpc://worker-1:7".into(), "https://w2".into()];
        let scope = CredentialScope::new(&hosts, false, true).unwrap();
        assert_eq!(scope.for_location(&target("grpc+tls://10.0.0.7:50051")), Credentials::Send);
        assert_eq!(scope.for_location(&target("grpc://10.0.0.7:50051")), Credentials::Withhold);
        assert_eq!(scope.for_location(&target("grpc://worker-1:7")), Credentials::Send);
        assert_eq!(scope.for_location(&target("grpc+tls://worker-1:7")), Credentials::Withhold);
        assert_eq!(scope.for_location(&target("grpc+tls://w2:8443")), Credentials::Send);
        assert_eq!(scope.for_location(&target("http://w2:8443")), Credentials::Withhold);
    }

    #[test]
    fn everywhere_never_downgrades_a_tls_client() {
        let tls = CredentialScope::new(&[], true, true).unwrap();
        assert_eq!(tls.for_location(&target("grpc+tls://anywhere:1")), Credentials::Send);
        assert_eq!(tls.for_location(&target("grpc://anywhere:1")), Credentials::Withhold);
        let plain = CredentialScope::new(&[], true, false).unwrap();
        assert_eq!(plain.for_location(&target("grpc://anywhere:1")), Credentials::Send);
        assert_eq!(plain.for_location(&target("grpc+tls://anywhere:1")), Credentials::Send);
        let none = CredentialScope::default();
        assert_eq!(none.for_location(&target("grpc://h:1")), Credentials::Withhold);
    }

    #[test]
    fn later_values_replace_earlier_ones() {
        let client_wide = HeaderSet::parse(&[("x-tenant-id".into(), "a".into())]).unwrap();
        let per_call = HeaderSet::parse(&[("x-tenant-id".into(), "b".into())]).unwrap();
        let mut metadata = MetadataMap::new();
        client_wide.apply(&mut metadata, Credentials::Send);
        per_call.apply(&mut metadata, Credentials::Send);
        assert_eq!(metadata.get_all("x-tenant-id").iter().count(), 1);
        assert_eq!(metadata.get("x-tenant-id").unwrap(), "b");
    }

    #[tokio::test]
    async fn file_and_env_tokens_are_reread() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "first\n").unwrap();
        let provider = FileToken::new(&path);
        assert_eq!(provider.token().await.unwrap(), "first");
        std::fs::write(&path, "second").unwrap();
        assert_eq!(provider.token().await.unwrap(), "second");
        let missing = FileToken::new(dir.path().join("absent"));
        assert!(matches!(missing.token().await, Err(Error::Config(m)) if m.contains("absent")));

        let unset = EnvToken::new("FLIGHTLINE_TEST_TOKEN_THAT_IS_NEVER_SET");
        assert!(matches!(unset.token().await, Err(Error::Config(m)) if m.contains("NEVER_SET")));
        assert_eq!(StaticToken::new("abc").token().await.unwrap(), "abc");

        // SAFETY: each variable is set once, by this test only, before it is read.
        unsafe {
            std::env::set_var("FLIGHTLINE_TEST_TOKEN_PADDED", "  tok-1  ");
            std::env::set_var("FLIGHTLINE_TEST_TOKEN_BLANK", " \t ");
        }
        let padded = EnvToken::new("FLIGHTLINE_TEST_TOKEN_PADDED");
        assert_eq!(padded.token().await.unwrap(), "tok-1");
        let blank = EnvToken::new("FLIGHTLINE_TEST_TOKEN_BLANK");
        assert!(matches!(blank.token().await, Err(Error::Config(m)) if m.contains("BLANK")));
        assert_eq!(format!("{:?}", StaticToken::new("abc")), "StaticToken(<redacted>)");
    }
}
