//! TLS to a real PostgreSQL with libpq's `sslmode` / `sslrootcert` in the URL: what each mode
//! encrypts and checks, against a server whose certificate names `db.example` and `localhost`.

#[path = "../../interop/postgres.rs"]
mod postgres;

use flightline_plugins::postgres::PgConnection;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

struct Pki {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

fn ca(name: &str) -> (String, Issuer<'static, KeyPair>) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), Issuer::new(params, key))
}

fn pki() -> Pki {
    let (ca_pem, issuer) = ca("Flightline test CA");
    let names = vec!["db.example".to_string(), "localhost".to_string()];
    let mut params = CertificateParams::new(names).unwrap();
    params.distinguished_name.push(DnType::CommonName, "db.example");
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    Pki { ca_pem, cert_pem: cert.pem(), key_pem: key.serialize_pem() }
}

struct Fixture {
    pg: postgres::Postgres,
    dir: tempfile::TempDir,
}

impl Fixture {
    fn start() -> Self {
        let pki = pki();
        let pg = postgres::Postgres::start_tls(&pki.cert_pem, &pki.key_pem);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), &pki.ca_pem).unwrap();
        std::fs::write(dir.path().join("other-ca.pem"), ca("Someone else's CA").0).unwrap();
        std::fs::write(dir.path().join("password"), postgres::PASSWORD).unwrap();
        Self { pg, dir }
    }

    fn connection(&self, host: &str, query: &str) -> PgConnection {
        let query = query.replace("DIR", &self.dir.path().display().to_string());
        PgConnection {
            url: format!(
                "postgres://{}@{host}:{}/postgres?{query}",
                postgres::USER,
                self.pg.port()
            ),
            password_env: None,
            password_file: Some(self.dir.path().join("password")),
            connect_timeout_secs: Some(5),
        }
    }

    /// Connects; whether the session is encrypted, or the error.
    async fn encrypted(&self, host: &str, query: &str) -> Result<bool, String> {
        let client = self.connection(host, query).connect().await?;
        let row = client
            .query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[])
            .await
            .map_err(|e| e.to_string())?;
        Ok(row.get(0))
    }
}

#[tokio::test]
async fn each_sslmode_encrypts_and_checks_as_libpq_does() {
    let f = Fixture::start();
    assert_eq!(f.encrypted("127.0.0.1", "sslmode=disable").await, Ok(false));
    assert_eq!(f.encrypted("127.0.0.1", "").await, Ok(true), "prefer, the default, encrypts");
    assert_eq!(f.encrypted("127.0.0.1", "sslmode=require").await, Ok(true), "unchecked");
    let ca = "sslrootcert=DIR/ca.pem";
    assert_eq!(f.encrypted("localhost", &format!("sslmode=verify-full&{ca}")).await, Ok(true));
    // The certificate does not name 127.0.0.1: verify-ca accepts it, verify-full does not.
    assert_eq!(f.encrypted("127.0.0.1", &format!("sslmode=verify-ca&{ca}")).await, Ok(true));
    let err = f.encrypted("127.0.0.1", &format!("sslmode=verify-full&{ca}")).await.unwrap_err();
    assert!(err.contains("cannot connect to PostgreSQL at flightline@127.0.0.1"), "{err}");
    assert!(err.to_lowercase().contains("certificate"), "{err}");

    // Another CA: refused in every checking mode, `require` with a CA included.
    let other = "sslrootcert=DIR/other-ca.pem";
    for mode in ["require", "verify-ca", "verify-full"] {
        let err = f.encrypted("localhost", &format!("sslmode={mode}&{other}")).await.unwrap_err();
        assert!(err.to_lowercase().contains("certificate"), "{mode}: {err}");
        assert!(!err.contains(postgres::PASSWORD), "{err}");
    }
}

#[tokio::test]
async fn a_tls_mode_the_url_cannot_satisfy_is_refused_before_connecting() {
    let f = Fixture::start();
    let err = f.connection("localhost", "sslmode=sometimes").config().unwrap_err();
    assert!(err.contains("not one of disable, prefer, require"), "{err}");
    let err = f.encrypted("localhost", "sslmode=verify-ca&sslrootcert=DIR/missing.pem").await;
    let err = err.unwrap_err();
    assert!(err.contains("sslrootcert") && err.contains("missing.pem"), "{err}");
}
