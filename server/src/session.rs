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

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::{GeneralPurpose, PAD_INDIFFERENT, URL_SAFE_NO_PAD};
use tonic::Status;

use crate::identity::AuthenticatedUser;
use crate::secret::SecretDigest;
use crate::throttle::{Backoff, Key, Throttle};

/// How long an issued session token stays valid unless told otherwise.
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(3600);

/// Live sessions one user may hold, unless told otherwise; a new handshake past it ends the
/// user's oldest session. Enough for a connection pool per client of a few clients.
pub const DEFAULT_MAX_SESSIONS_PER_USER: usize = 64;

/// Bytes of randomness in a session token (256 bits).
const TOKEN_BYTES: usize = 32;

/// Standard base64, padded or not: Go's Flight client (used by the ADBC driver) sends the
/// Basic credentials without padding.
const BASIC: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::STANDARD, PAD_INDIFFERENT);

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

/// The live sessions, keyed by the digest of their token (the tokens themselves are not kept).
///
/// Every session lives the same TTL, so the order of issue is the order of expiry: expired
/// sessions are dropped from the front of `expiry` as new ones are issued, without scanning
/// the live ones, and each user's sessions are listed oldest first for the per-user cap.
#[derive(Default)]
struct Sessions {
    live: HashMap<SecretDigest, Session>,
    /// Every issued session, oldest first; entries of sessions already ended are skipped.
    expiry: VecDeque<(Instant, SecretDigest)>,
    by_user: HashMap<String, VecDeque<SecretDigest>>,
}

impl Sessions {
    fn insert(&mut self, digest: SecretDigest, session: Session, cap: usize) {
        self.expiry.push_back((session.expires, digest));
        let mine = self.by_user.entry(session.user.clone()).or_default();
        mine.push_back(digest);
        if mine.len() > cap
            && let Some(oldest) = mine.pop_front()
        {
            self.live.remove(&oldest);
        }
        self.live.insert(digest, session);
        // Entries of sessions ended early (closed, evicted) linger in `expiry` until they
        // expire; rebuild it once they outnumber the live ones, which amortises to O(1).
        if self.expiry.len() > 2 * self.live.len() + 64 {
            self.expiry.retain(|(_, d)| self.live.contains_key(d));
        }
    }

    /// Drops the sessions expired by `now`, oldest first, stopping at the first live one.
    fn prune(&mut self, now: Instant) {
        while let Some(&(expires, digest)) = self.expiry.front() {
            if expires > now {
                break;
            }
            self.expiry.pop_front();
            if let Some(session) = self.live.remove(&digest) {
                self.forget(&session.user, &digest);
            }
        }
    }

    fn remove(&mut self, digest: &SecretDigest) -> Option<Session> {
        let session = self.live.remove(digest)?;
        self.forget(&session.user, digest);
        Some(session)
    }

    /// Removes `digest` from its user's list (at most the per-user cap long).
    fn forget(&mut self, user: &str, digest: &SecretDigest) {
        if let Some(mine) = self.by_user.get_mut(user) {
            mine.retain(|d| d != digest);
            if mine.is_empty() {
                self.by_user.remove(user);
            }
        }
    }

    fn remove_user(&mut self, user: &str) {
        for digest in self.by_user.remove(user).unwrap_or_default() {
            self.live.remove(&digest);
        }
    }
}

/// Users with the digests of their passwords, and the live session tokens. Shared by the auth
/// interceptor, which accepts the tokens, and the service, which issues them in `Handshake`.
pub struct SessionStore {
    users: RwLock<HashMap<String, SecretDigest>>,
    sessions: Mutex<Sessions>,
    ttl: Duration,
    max_per_user: usize,
    throttle: Throttle,
    handshakes: AtomicU64,
}

impl std::fmt::Debug for SessionStore {
    // Passwords and tokens never reach a log line; counts do.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let users = self.users.read().map(|u| u.len()).unwrap_or(0);
        f.debug_struct("SessionStore")
            .field("users", &users)
            .field("sessions", &self.lock().live.len())
            .field("ttl", &self.ttl)
            .field("max_per_user", &self.max_per_user)
            .finish()
    }
}

impl SessionStore {
    /// A store for `users` (name, password) whose tokens live `ttl`, with at most
    /// [`DEFAULT_MAX_SESSIONS_PER_USER`] sessions per user and the default [`Backoff`].
    pub fn new(users: impl IntoIterator<Item = (String, String)>, ttl: Duration) -> Self {
        let users = users.into_iter().map(|(name, pw)| (name, SecretDigest::of(pw.as_bytes())));
        Self {
            users: RwLock::new(users.collect()),
            sessions: Mutex::default(),
            ttl,
            max_per_user: DEFAULT_MAX_SESSIONS_PER_USER,
            throttle: Throttle::default(),
            handshakes: AtomicU64::new(0),
        }
    }

    /// At most `n` (at least 1) live sessions per user; a handshake past it ends the oldest.
    pub fn with_max_sessions_per_user(mut self, n: usize) -> Self {
        self.max_per_user = n.max(1);
        self
    }

    /// Slows failed sign-ins down with `backoff` instead of the default.
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.throttle = Throttle::new(backoff);
        self
    }

    /// How long a token lives.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Adds a user or changes a password. Sessions already issued stay valid.
    pub fn add_user(&self, name: impl Into<String>, password: impl Into<String>) {
        let digest = SecretDigest::of(password.into().as_bytes());
        let mut users = self.users.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        users.insert(name.into(), digest);
    }

    /// Removes a user and ends every session of that user. True if the user existed.
    pub fn remove_user(&self, name: &str) -> bool {
        let mut users = self.users.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        let existed = users.remove(name).is_some();
        self.lock().remove_user(name);
        existed
    }

    /// Checks an `authorization: Basic ...` value sent from `peer`; `Ok(user)` when the
    /// password matches.
    ///
    /// The digest of the presented password is compared in constant time with the stored
    /// one, and an unknown user's with a dummy digest, so every attempt does the same work:
    /// timing tells neither which users exist nor how much of a password matched. Repeated
    /// failures from `peer` are slowed down (see [`Backoff`]): while a wait runs, attempts are
    /// refused without looking at the password.
    pub fn verify_basic(
        &self,
        header: &str,
        peer: Option<IpAddr>,
    ) -> Result<AuthenticatedUser, Status> {
        let (user, password) = parse_basic(header)?;
        let keys = [Key::Address(peer), Key::UserAt(user.clone(), peer)];
        let now = Instant::now();
        if let Err(wait) = self.throttle.check(&keys, now) {
            return Err(Status::unauthenticated(format!(
                "too many failed sign-ins from this address: the password of user {user:?} \
                 was not checked; retry in {} s",
                wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
            )));
        }
        if self.password_matches(&user, &password) {
            self.throttle.succeeded(&keys[1]);
            Ok(AuthenticatedUser(user))
        } else {
            self.throttle.failed(&keys, now);
            Err(Status::unauthenticated(format!(
                "the user name or password was refused for user {user:?}"
            )))
        }
    }

    /// One digest and one 32-byte comparison, whether the user exists or not.
    fn password_matches(&self, user: &str, password: &str) -> bool {
        let presented = SecretDigest::of(password.as_bytes());
        let users = self.users.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (expected, known) = match users.get(user) {
            Some(expected) => (*expected, true),
            None => (SecretDigest::dummy(), false),
        };
        expected.matches(&presented) & known
    }

    /// Issues a new session token for `user`, unless the user was removed meanwhile. Past
    /// the per-user cap, the user's oldest session ends.
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
        sessions.prune(now);
        sessions.insert(SecretDigest::of(token.as_bytes()), session, self.max_per_user);
        self.handshakes.fetch_add(1, Ordering::Relaxed);
        Ok(token)
    }

    /// The user of `token` when it is a live session; counts the call.
    pub fn accept(&self, token: &str) -> Option<String> {
        let digest = SecretDigest::of(token.as_bytes());
        let now = Instant::now();
        let mut sessions = self.lock();
        match sessions.live.get_mut(&digest) {
            Some(session) if session.expires > now => {
                session.calls += 1;
                Some(session.user.clone())
            }
            Some(_) => {
                sessions.remove(&digest);
                None
            }
            None => None,
        }
    }

    /// Ends the session of `token` (Flight `CloseSession`). True if it was live.
    pub fn close(&self, token: &str) -> bool {
        self.lock().remove(&SecretDigest::of(token.as_bytes())).is_some()
    }

    /// Ends every live session now, as if the TTL had passed (for tests and for an operator
    /// who wants every client to authenticate again).
    pub fn expire_all(&self) {
        *self.lock() = Sessions::default();
    }

    /// The live sessions, in no particular order.
    pub fn sessions(&self) -> Vec<SessionInfo> {
        let now = Instant::now();
        self.lock()
            .live
            .values()
            .filter(|s| s.expires > now)
            .map(|s| SessionInfo { user: s.user.clone(), calls: s.calls })
            .collect()
    }

    /// How many tokens were issued since the start.
    pub fn handshakes(&self) -> u64 {
        self.handshakes.load(Ordering::Relaxed)
    }

    fn lock(&self) -> MutexGuard<'_, Sessions> {
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
        assert_eq!(store.verify_basic(&basic("alice:pa:ss"), None).unwrap().0, "alice");
        // Go's Flight client sends the credentials without base64 padding.
        let no_pad = base64::engine::general_purpose::STANDARD_NO_PAD.encode("alice:pa:ss");
        assert!(!no_pad.ends_with('='));
        let unpadded = format!("basic {no_pad}");
        assert_eq!(store.verify_basic(&unpadded, None).unwrap().0, "alice");
        for wrong in ["alice:pa:sS", "alice:", "bob:pa:ss", "alice:pa:ss "] {
            let err = store.verify_basic(&basic(wrong), None).unwrap_err();
            assert_eq!(err.code(), tonic::Code::Unauthenticated, "{wrong}");
            assert!(err.message().contains("refused"), "{wrong}: {}", err.message());
            assert!(!err.message().contains("pa:s"), "{}", err.message());
        }
        for malformed in ["Basic", "Bearer abc", "Basic !!!", &basic("no-colon"), &basic(":pw")] {
            let err = store.verify_basic(malformed, None).unwrap_err();
            assert!(err.message().contains("malformed"), "{malformed}: {}", err.message());
        }
    }

    #[test]
    fn issued_tokens_are_accepted_counted_closed_and_expire() {
        let store = store();
        let user = store.verify_basic(&basic("alice:pa:ss"), None).unwrap();
        let token = store.issue(&user).unwrap();
        let other = store.issue(&user).unwrap();
        assert_ne!(token, other);
        assert!(token.len() >= 43, "{token}");
        assert!(store.accept(&token).is_some() && store.accept(&token).is_some());
        assert_eq!(store.accept("guess"), None);
        let mut sessions = store.sessions();
        sessions.sort_by_key(|s| s.calls);
        assert_eq!(sessions[1], SessionInfo { user: "alice".into(), calls: 2 });
        assert_eq!(store.handshakes(), 2);
        assert!(store.close(&other) && store.accept(&other).is_none());
        store.expire_all();
        assert!(store.accept(&token).is_none());
        assert!(store.sessions().is_empty());
    }

    #[test]
    fn a_removed_user_loses_sessions_and_cannot_renew() {
        let store = store();
        let user = store.verify_basic(&basic("alice:pa:ss"), None).unwrap();
        let token = store.issue(&user).unwrap();
        assert!(store.remove_user("alice"));
        assert!(store.accept(&token).is_none());
        assert!(store.verify_basic(&basic("alice:pa:ss"), None).is_err());
        assert_eq!(store.issue(&user).unwrap_err().code(), tonic::Code::Unauthenticated);
        store.add_user("alice", "new");
        assert!(store.verify_basic(&basic("alice:new"), None).is_ok());
    }

    #[test]
    fn short_ttl_expires_by_itself() {
        let store = SessionStore::new([("a".into(), "b".into())], Duration::ZERO);
        let token = store.issue(&AuthenticatedUser("a".into())).unwrap();
        assert!(store.accept(&token).is_none());
    }

    #[test]
    fn user_specs_split_at_the_first_colon() {
        assert_eq!(parse_user("bob:a:b").unwrap(), ("bob".into(), "a:b".into()));
        for bad in ["bob", ":pw", "bob:", ""] {
            assert!(parse_user(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unknown_users_and_wrong_lengths_cost_the_same_work_as_the_right_password() {
        use crate::secret::work;
        let store = store();
        work::take();
        let mut spent = Vec::new();
        for attempt in ["alice:pa:ss", "alice:pa:sX", "alice:p", "alice:", "nobody:pa:ss", "x:y"] {
            let _ = store.verify_basic(&basic(attempt), None);
            spent.push((attempt, work::take()));
        }
        for (attempt, work) in &spent {
            assert_eq!(*work, (1, 32), "{attempt}: one digest and one 32-byte comparison");
        }
    }

    fn at(ip: u8) -> Option<IpAddr> {
        Some(IpAddr::from([192, 0, 2, ip]))
    }

    #[test]
    fn repeated_failures_are_slowed_but_the_right_password_still_gets_in() {
        let backoff = Backoff {
            free_per_user: 2,
            free_per_address: 100,
            base: Duration::from_secs(60),
            max: Duration::from_secs(120),
            ..Backoff::default()
        };
        let store = store().with_backoff(backoff);
        let attacker = at(66);
        for guess in ["alice:1", "alice:2", "alice:3"] {
            let err = store.verify_basic(&basic(guess), attacker).unwrap_err();
            assert!(err.message().contains("refused"), "{}", err.message());
        }
        // The attacker's next try, even the right one, waits without the password checked.
        let err = store.verify_basic(&basic("alice:pa:ss"), attacker).unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unauthenticated);
        assert!(err.message().contains("retry in 60 s"), "{}", err.message());
        assert!(!err.message().contains("pa:ss"), "{}", err.message());
        // Alice, from her own address, is not locked out.
        assert_eq!(store.verify_basic(&basic("alice:pa:ss"), at(1)).unwrap().0, "alice");
    }

    #[test]
    fn a_success_clears_the_users_failures_from_that_address() {
        let backoff = Backoff { free_per_user: 2, free_per_address: 100, ..Backoff::default() };
        let store = store().with_backoff(backoff);
        for _ in 0..2 {
            assert!(store.verify_basic(&basic("alice:typo"), at(1)).is_err());
            assert!(store.verify_basic(&basic("alice:pa:ss"), at(1)).is_ok());
        }
        // Four typos in all, never three in a row: no wait was earned.
        assert!(store.verify_basic(&basic("alice:pa:ss"), at(1)).is_ok());
    }

    #[test]
    fn past_the_cap_a_handshake_ends_the_users_oldest_session() {
        let store = SessionStore::new(
            [("alice".to_string(), "a".to_string()), ("bob".to_string(), "b".to_string())],
            DEFAULT_SESSION_TTL,
        )
        .with_max_sessions_per_user(2);
        let alice = AuthenticatedUser("alice".into());
        let bob = store.issue(&AuthenticatedUser("bob".into())).unwrap();
        let tokens: Vec<_> = (0..3).map(|_| store.issue(&alice).unwrap()).collect();
        assert!(store.accept(&tokens[0]).is_none(), "the oldest was evicted");
        assert!(store.accept(&tokens[1]).is_some() && store.accept(&tokens[2]).is_some());
        assert_eq!(store.accept(&bob).as_deref(), Some("bob"), "other users keep theirs");
        assert_eq!(store.sessions().len(), 3);
        // A closed session frees its place: the next handshake evicts nothing.
        assert!(store.close(&tokens[1]));
        let fourth = store.issue(&alice).unwrap();
        assert!(store.accept(&tokens[2]).is_some() && store.accept(&fourth).is_some());
    }

    #[test]
    fn expired_sessions_are_dropped_oldest_first_without_a_scan() {
        let store = SessionStore::new([("a".into(), "b".into())], Duration::ZERO);
        let user = AuthenticatedUser("a".into());
        for _ in 0..1000 {
            store.issue(&user).unwrap();
        }
        let sessions = store.lock();
        // Each handshake dropped the expired one before it: one left, and no stale entries.
        assert_eq!((sessions.live.len(), sessions.expiry.len()), (1, 1));
        assert_eq!(sessions.by_user.get("a").map(VecDeque::len), Some(1));
    }

    #[test]
    fn ended_sessions_leave_no_entries_behind() {
        let store = store().with_max_sessions_per_user(1);
        let user = AuthenticatedUser("alice".into());
        for i in 0..1000 {
            let token = store.issue(&user).unwrap();
            if i % 2 == 0 {
                store.close(&token);
            }
        }
        let sessions = store.lock();
        assert!(sessions.live.len() <= 1);
        assert!(sessions.expiry.len() <= 2 * sessions.live.len() + 65, "{}", sessions.expiry.len());
        assert!(sessions.by_user.get("alice").map_or(0, VecDeque::len) <= 1);
    }

    fn live_until(user: &str, expires: Instant) -> Session {
        Session { user: user.into(), expires, calls: 0 }
    }

    fn add(sessions: &mut Sessions, user: &str, expires: Instant) -> SecretDigest {
        let digest = SecretDigest::of(user.as_bytes());
        sessions.insert(digest, live_until(user, expires), 64);
        digest
    }

    #[test]
    fn entries_of_ended_sessions_are_swept_once_they_outnumber_the_live_ones() {
        let later = Instant::now() + Duration::from_secs(3600);
        let mut sessions = Sessions::default();
        for i in 0..9 {
            add(&mut sessions, &format!("live{i}"), later);
        }
        for i in 0..74 {
            let ended = add(&mut sessions, &format!("ended{i}"), later);
            sessions.remove(&ended);
        }
        let ninth = add(&mut sessions, "live9", later);
        // 84 entries for 10 live sessions: the sweep's threshold (2 × 10 + 64), not past it.
        assert_eq!((sessions.live.len(), sessions.expiry.len()), (10, 84));
        sessions.remove(&ninth);
        add(&mut sessions, "live10", later);
        assert_eq!((sessions.live.len(), sessions.expiry.len()), (10, 10), "one past: swept");
    }

    #[test]
    fn a_session_expiring_now_is_pruned_now() {
        let now = Instant::now();
        let mut sessions = Sessions::default();
        add(&mut sessions, "alice", now);
        add(&mut sessions, "bob", now + Duration::from_nanos(1));
        sessions.prune(now);
        assert_eq!(sessions.live.len(), 1);
        assert!(sessions.by_user.get("alice").is_none_or(VecDeque::is_empty));
    }

    #[test]
    fn ttl_is_the_one_given() {
        let store = SessionStore::new([("a".into(), "b".into())], Duration::from_secs(7));
        assert_eq!(store.ttl(), Duration::from_secs(7));
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
