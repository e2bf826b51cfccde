//! TLS to PostgreSQL, written the way libpq users write it: `sslmode` and `sslrootcert` in the
//! URL (`postgres://etl@db:5432/analytics?sslmode=verify-full&sslrootcert=/etc/ssl/db-ca.pem`)
//! or in the `key=value` form, with libpq's meaning:
//!
//! | `sslmode`     | encrypted                          | server certificate checked          |
//! |---------------|------------------------------------|-------------------------------------|
//! | `disable`     | no                                 | -                                   |
//! | `prefer`      | when the server offers it (default)| no                                  |
//! | `require`     | yes                                | chain, when a CA file is at hand    |
//! | `verify-ca`   | yes                                | chain to `sslrootcert`              |
//! | `verify-full` | yes                                | chain, and the host name            |
//!
//! `verify-ca` and `verify-full` need the CA: `sslrootcert`, else libpq's default
//! `~/.postgresql/root.crt`. tokio-postgres knows only `disable`, `prefer` and `require`, so both
//! keys are taken out of the URL here and the checks made with rustls (ring).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use percent_encoding::percent_decode_str;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres::config::SslMode as PgSslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SslMode {
    /// No TLS.
    Disable,
    /// TLS when the server offers it, unchecked (libpq's default).
    #[default]
    Prefer,
    /// TLS or no connection; the certificate checked only when `sslrootcert` is given.
    Require,
    /// TLS, the certificate's chain checked against `sslrootcert`.
    VerifyCa,
    /// TLS, the chain and the host name checked.
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Result<Self, String> {
        Ok(match value {
            "disable" => SslMode::Disable,
            "allow" | "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(format!(
                    "sslmode={other:?} is not one of disable, prefer, require, verify-ca, \
                     verify-full"
                ));
            }
        })
    }
}

/// The TLS part of a connection string.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tls {
    /// `sslmode`.
    pub mode: SslMode,
    /// `sslrootcert`: PEM file of the CA(s) the server's certificate must chain to.
    pub root_cert: Option<PathBuf>,
}

impl Tls {
    /// Takes `sslmode` and `sslrootcert` out of `url` (either form): the rest, for
    /// tokio-postgres, and the TLS settings.
    pub fn split(url: &str) -> Result<(String, Tls), String> {
        let mut tls = Tls::default();
        let mut take = |key: &str, value: &str| -> Result<bool, String> {
            match key {
                "sslmode" => tls.mode = SslMode::parse(value)?,
                "sslrootcert" => tls.root_cert = Some(PathBuf::from(value)),
                _ => return Ok(false),
            }
            Ok(true)
        };
        let rest = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let Some((base, query)) = url.split_once('?') else { return Ok((url.into(), tls)) };
            let mut kept = Vec::new();
            for pair in query.split('&').filter(|p| !p.is_empty()) {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                let value = percent_decode_str(value).decode_utf8_lossy();
                if !take(key, &value)? {
                    kept.push(pair);
                }
            }
            if kept.is_empty() { base.to_string() } else { format!("{base}?{}", kept.join("&")) }
        } else {
            let mut kept = Vec::new();
            for token in url.split_whitespace() {
                let (key, value) = token.split_once('=').unwrap_or((token, ""));
                if !take(key.trim(), value.trim_matches('\''))? {
                    kept.push(token);
                }
            }
            kept.join(" ")
        };
        Ok((rest, tls))
    }

    /// What tokio-postgres is told: whether to ask for TLS, and whether to insist.
    pub fn pg_mode(&self) -> PgSslMode {
        match self.mode {
            SslMode::Disable => PgSslMode::Disable,
            SslMode::Prefer => PgSslMode::Prefer,
            _ => PgSslMode::Require,
        }
    }

    /// The connector that makes and checks the TLS session.
    pub fn connector(&self) -> Result<MakeRustlsConnect, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS setup: {e}"))?;
        let checked = match (self.mode, &self.root_cert) {
            (SslMode::VerifyCa | SslMode::VerifyFull, None) => Some(default_root_cert()?),
            // libpq: `require` checks the chain when a CA is at hand, given or in the default
            // file.
            (SslMode::Require, None) => default_root_cert().ok(),
            (SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull, Some(path)) => {
                Some(path.clone())
            }
            _ => None,
        };
        let algorithms = provider.signature_verification_algorithms;
        let verifier: Arc<dyn ServerCertVerifier> = match checked {
            None => Arc::new(Libpq { chain: None, algorithms }),
            Some(path) => {
                let roots = Arc::new(roots(&path)?);
                let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider)
                    .build()
                    .map_err(|e| format!("sslrootcert {}: {e}", path.display()))?;
                if self.mode == SslMode::VerifyFull {
                    webpki
                } else {
                    Arc::new(Libpq { chain: Some(webpki), algorithms })
                }
            }
        };
        let config =
            builder.dangerous().with_custom_certificate_verifier(verifier).with_no_client_auth();
        Ok(MakeRustlsConnect::new(config))
    }
}

/// libpq's default CA file, required by `verify-ca` / `verify-full` without `sslrootcert`.
fn default_root_cert() -> Result<PathBuf, String> {
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
    let path = home.join(".postgresql/root.crt");
    if path.exists() {
        Ok(path)
    } else {
        Err(format!(
            "sslmode verify-ca / verify-full checks the server against a CA, and none was given: \
             add sslrootcert=/path/to/ca.pem to the URL (or put the CA in {})",
            path.display()
        ))
    }
}

fn roots(path: &Path) -> Result<RootCertStore, String> {
    let unreadable = |e: &dyn std::fmt::Display| format!("sslrootcert {}: {e}", path.display());
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| unreadable(&e))? {
        roots.add(cert.map_err(|e| unreadable(&e))?).map_err(|e| unreadable(&e))?;
    }
    if roots.is_empty() {
        return Err(unreadable(&"no PEM certificate in the file"));
    }
    Ok(roots)
}

/// What libpq checks short of `verify-full`: with a CA (`verify-ca`, or `require` with one at
/// hand) the chain but not the name; without one (`prefer`, `require`) nothing of the
/// certificate. The handshake's signatures are checked either way.
#[derive(Debug)]
struct Libpq {
    chain: Option<Arc<WebPkiServerVerifier>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Libpq {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else { return Ok(ServerCertVerified::assertion()) };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_keys_leave_the_url_with_libpq_meaning_and_the_rest_stays() {
        let (rest, tls) = Tls::split(
            "postgres://etl@db:5432/a?connect_timeout=3&sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem",
        )
        .unwrap();
        assert_eq!(rest, "postgres://etl@db:5432/a?connect_timeout=3");
        assert_eq!(tls.mode, SslMode::VerifyFull);
        assert_eq!(tls.root_cert.as_deref(), Some(Path::new("/etc/ca.pem")));
        assert_eq!(tls.pg_mode(), PgSslMode::Require);

        let (rest, tls) = Tls::split("host=db user=etl sslmode=disable dbname=a").unwrap();
        assert_eq!((rest.as_str(), tls.mode), ("host=db user=etl dbname=a", SslMode::Disable));
        let (rest, tls) = Tls::split("postgres://etl@db/a").unwrap();
        assert_eq!((rest.as_str(), tls), ("postgres://etl@db/a", Tls::default()));
        assert_eq!(Tls::default().pg_mode(), PgSslMode::Prefer);
        let err = Tls::split("postgres://etl@db/a?sslmode=verify").unwrap_err();
        assert!(err.contains("verify-full"), "{err}");
    }

    #[test]
    fn verifying_without_a_ca_names_sslrootcert() {
        let tls = Tls { mode: SslMode::VerifyFull, root_cert: None };
        // A machine with libpq's default CA file has nothing to refuse.
        let err = match std::env::var_os("HOME") {
            Some(home) if Path::new(&home).join(".postgresql/root.crt").exists() => return,
            _ => tls.connector().err().unwrap_or_default(),
        };
        assert!(err.contains("add sslrootcert="), "{err}");
        let missing = Tls { mode: SslMode::Require, root_cert: Some("/nonexistent/ca.pem".into()) };
        let err = missing.connector().err().unwrap_or_default();
        assert!(err.contains("sslrootcert /nonexistent/ca.pem"), "{err}");
    }
}
