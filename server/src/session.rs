//! Users and the session tokens the Flight `Handshake` issues to them.
//!
//! A client sends `authorization: Basic base64(user:password)` with `Handshake`; the server
//! answers with a random bearer token (in the `authorization` response header and in the
//! handshake payload), valid for the session TTL. Every other call may then carry
//! `authorization: Bearer <token>`. This is how Dremio, Arrow's example Flight SQL servers and
//! the ADBC Flight SQL driver (`username` / `password` options) authenticate.
//!
//! Removing a user ([`SessionStore::remove_user`]) ends that user's sessions at once, and the
//! user can no longer handshake, so a revoked user cannot renew a token.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::{GeneralPurpose, PAD_INDIFFERENT, URL_SAFE_NO_PAD};
use tonic::Status;

use crate::auth::constant_time_eq;

/// How long an issued session token stays valid unless told otherwise.
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(3600);

/// Bytes of randomness in a session token (256 bits).
const TOKEN_BYTES: usize = 32;

/// Standard base64, padded or not: Go's Flight client (used by the ADBC driver) sends the
/// Basic credentials without padding.
const BASIC: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::STANDARD, PAD_INDIFFERENT);

/// The user a call proved to be with valid Basic credentials, put into the request's
/// extensions by [`TokenAuth`](crate::auth::TokenAuth) for the handshake to issue a token to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatedUser(pub String);

/// One live session, as tests and operators see it (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// Who the session belongs to.
    pub user: String,
    /// How many calls were accepted with its token, the handshake excluded.
    pub calls: u64,
}

struct Session {
    user: String,
    expires: Instant,
    calls: u64,
}

/// Users with their passwords and the live session tokens. Shared by the auth interceptor,
/// which accepts the tokens, and the service, which issues them in `Handshake`.
pub struct SessionStore {
    users: RwLock<HashMap<String, String>>,
    sessions: Mutex<HashMap<String, Session>>,
    ttl: Duration,
    handshakes: AtomicU64,
}

impl std::fmt::Debug for SessionStore {
    // Passwords and tokens never reach a log line; counts do.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let users = self.users.read().map(|u| u.len()).unwrap_or(0);
        f.debug_struct("SessionStore")
            .field("users", &users)
            .field("sessions", &self.lock().len())
            .field("ttl", &self.ttl)
            .finish()
    }
}

impl SessionStore {
    /// A store for `users` (name, password) whose tokens live `ttl`.
    pub fn new(users: impl IntoIterator<Item = (String, String)>, ttl: Duration) -> Self {
        Self {
            users: RwLock::new(users.into_iter().collect()),
            sessions: Mutex::new(HashMap::new()),
            ttl,
            handshakes: AtomicU64::new(0),
        }
    }

    /// How long a token lives.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Adds a user or changes a password. Sessions already issued stay valid.
    pub fn add_user(&self, name: impl Into<String>, password: impl Into<String>) {
        let mut users = self.users.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        users.insert(name.into(), password.into());
    }

    /// Removes a user and ends every session of that user. True if the user existed.
    pub fn remove_user(&self, name: &str) -> bool {
        let mut users = self.users.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        let existed = users.remove(name).is_some();
        self.lock().retain(|_, session| session.user != name);
        existed
    }

    /// Checks an `authorization: Basic ...` value; `Ok(user)` when the password matches.
    ///
    /// The password is compared in constant time, and an unknown user costs the same
    /// comparison, so timing tells neither which users exist nor how much of a password matched.
    pub fn verify_basic(&self, header: &str) -> Result<AuthenticatedUser, Status> {
        let (user, password) = parse_basic(header)?;
        let users = self.users.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (expected, known) = match users.get(&user) {
            Some(expected) => (expected.as_bytes(), true),
            None => (password.as_bytes(), false),
        };
        if constant_time_eq(expected, password.as_bytes()) & known {
            Ok(AuthenticatedUser(user))
        } else {
            Err(Status::unauthenticated(format!(
                "the user name or password was refused for user {user:?}"
            )))
        }
    }

    /// Issues a new session token for `user`, unless the user was removed meanwhile.
    pub fn issue(&self, user: &AuthenticatedUser) -> Result<String, Status> {
        let known = self
            .users
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .contains_key(&user.0);
        if !known {
            return Err(Status::unauthenticated(format!("user {:?} no longer exists", user.0)));
        }
        let mut bytes = [0u8; TOKEN_BYTES];
        getrandom::fill(&mut bytes).map_err(|e| {
            Status::internal(format!("cannot draw a random session token from the OS: {e}"))
        })?;
        let token = URL_SAFE_NO_PAD.encode(bytes);
        let now = Instant::now();
        let session = Session { user: user.0.clone(), expires: now + self.ttl, calls: 0 };
        let mut sessions = self.lock();
        // Expired sessions are dropped here so that the map never outgrows the live ones.
        sessions.retain(|_, s| s.expires > now);
        sessions.insert(token.clone(), session);
        self.handshakes.fetch_add(1, Ordering::Relaxed);
        Ok(token)
    }

    /// True when `token` is a live session; counts the call.
    pub fn accept(&self, token: &str) -> bool {
        let now = Instant::now();
        let mut sessions = self.lock();
        match sessions.get_mut(token) {
            Some(session) if session.expires > now => {
                session.calls += 1;
                true
            }
            Some(_) => {
                sessions.remove(token);
                false
            }
            None => false,
        }
    }

    /// Ends the session of `token` (Flight `CloseSession`). True if it was live.
    pub fn close(&self, token: &str) -> bool {
        self.lock().remove(token).is_some()
    }

    /// Makes every live token expire now, as if the TTL had passed (for tests and for an
    /// operator who wants every client to authenticate again).
    pub fn expire_all(&self) {
        let now = Instant::now();
        for session in self.lock().values_mut() {
            session.expires = now;
        }
    }

    /// The live sessions, in no particular order.
    pub fn sessions(&self) -> Vec<SessionInfo> {
        let now = Instant::now();
        self.lock()
            .values()
            .filter(|s| s.expires > now)
            .map(|s| SessionInfo { user: s.user.clone(), calls: s.calls })
            .collect()
    }

    /// How many tokens were issued since the start.
    pub fn handshakes(&self) -> u64 {
        self.handshakes.load(Ordering::Relaxed)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Session>> {
        self.sessions.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// `Basic base64(user:password)` → (user, password). The scheme is case-insensitive; the
/// user name ends at the first `:`, the password may contain more.
fn parse_basic(header: &str) -> Result<(String, String), Status> {
    let malformed = |why: &str| {
        Status::unauthenticated(format!(
            "malformed Basic credentials ({why}): send `authorization: Basic \
             base64(user:password)`"
        ))
    };
    let (scheme, encoded) = header.trim().split_once(' ').ok_or_else(|| malformed("no scheme"))?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(malformed("not the Basic scheme"));
    }
    let decoded = BASIC.decode(encoded.trim()).map_err(|_| malformed("not base64"))?;
    let text = String::from_utf8(decoded).map_err(|_| malformed("not UTF-8"))?;
    let (user, password) = text.split_once(':').ok_or_else(|| malformed("no ':'"))?;
    if user.is_empty() {
        return Err(malformed("empty user name"));
    }
    Ok((user.to_string(), password.to_string()))
}

/// Splits `name:password` as given to `--user`; the password may contain `:`.
pub fn parse_user(spec: &str) -> Result<(String, String), String> {
    match spec.split_once(':') {
        Some((name, password)) if !name.trim().is_empty() && !password.is_empty() => {
            Ok((name.trim().to_string(), password.to_string()))
        }
        _ => Err("a user must be given as NAME:PASSWORD, both non-empty".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user_password: &str) -> String {
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(user_password))
    }

    fn store() -> SessionStore {
        SessionStore::new([("alice".to_string(), "pa:ss".to_string())], DEFAULT_SESSION_TTL)
    }

    #[test]
    fn right_password_passes_and_others_are_refused() {
        let store = store();
        assert_eq!(store.verify_basic(&basic("alice:pa:ss")).unwrap().0, "alice");
        // Go's Flight client sends the credentials without base64 padding.
        let no_pad = base64::engine::general_purpose::STANDARD_NO_PAD.encode("alice:pa:ss");
        assert!(!no_pad.ends_with('='));
        let unpadded = format!("basic {no_pad}");
        assert_eq!(store.verify_basic(&unpadded).unwrap().0, "alice");
        for wrong in ["alice:pa:sS", "alice:", "bob:pa:ss", "alice:pa:ss "] {
            let err = store.verify_basic(&basic(wrong)).unwrap_err();
            assert_eq!(err.code(), tonic::Code::Unauthenticated, "{wrong}");
            assert!(err.message().contains("refused"), "{wrong}: {}", err.message());
            assert!(!err.message().contains("pa:s"), "{}", err.message());
        }
        for malformed in ["Basic", "Bearer abc", "Basic !!!", &basic("no-colon"), &basic(":pw")] {
            let err = store.verify_basic(malformed).unwrap_err();
            assert!(err.message().contains("malformed"), "{malformed}: {}", err.message());
        }
    }

    #[test]
    fn issued_tokens_are_accepted_counted_closed_and_expire() {
        let store = store();
        let user = store.verify_basic(&basic("alice:pa:ss")).unwrap();
        let token = store.issue(&user).unwrap();
        let other = store.issue(&user).unwrap();
        assert_ne!(token, other);
        assert!(token.len() >= 43, "{token}");
        assert!(store.accept(&token) && store.accept(&token) && !store.accept("guess"));
        let mut sessions = store.sessions();
        sessions.sort_by_key(|s| s.calls);
        assert_eq!(sessions[1], SessionInfo { user: "alice".into(), calls: 2 });
        assert_eq!(store.handshakes(), 2);
        assert!(store.close(&other) && !store.accept(&other));
        store.expire_all();
        assert!(!store.accept(&token));
        assert!(store.sessions().is_empty());
    }

    #[test]
    fn a_removed_user_loses_sessions_and_cannot_renew() {
        let store = store();
        let user = store.verify_basic(&basic("alice:pa:ss")).unwrap();
        let token = store.issue(&user).unwrap();
        assert!(store.remove_user("alice"));
        assert!(!store.accept(&token));
        assert!(store.verify_basic(&basic("alice:pa:ss")).is_err());
        assert_eq!(store.issue(&user).unwrap_err().code(), tonic::Code::Unauthenticated);
        store.add_user("alice", "new");
        assert!(store.verify_basic(&basic("alice:new")).is_ok());
    }

    #[test]
    fn short_ttl_expires_by_itself() {
        let store = SessionStore::new([("a".into(), "b".into())], Duration::ZERO);
        let token = store.issue(&AuthenticatedUser("a".into())).unwrap();
        assert!(!store.accept(&token));
    }

    #[test]
    fn user_specs_split_at_the_first_colon() {
        assert_eq!(parse_user("bob:a:b").unwrap(), ("bob".into(), "a:b".into()));
        for bad in ["bob", ":pw", "bob:", ""] {
            assert!(parse_user(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn debug_shows_counts_only() {
        let store = store();
        let token = store.issue(&AuthenticatedUser("alice".into())).unwrap();
        let shown = format!("{store:?}");
        assert!(!shown.contains("pa:ss") && !shown.contains(&token), "{shown}");
        assert!(shown.contains("users: 1"), "{shown}");
    }
}
