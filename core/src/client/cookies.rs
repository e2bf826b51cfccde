//! An opt-in cookie jar: `set-cookie` answers are kept and sent back as `cookie`.
//!
//! Dremio keeps session state in cookies (ADBC's `with_cookie_middleware`). The jar implements
//! the subset of RFC 6265 that gRPC needs, deliberately stricter than a browser:
//!
//! - A cookie goes back only to the origin (scheme, host and port) that set it. `Domain` and
//!   `Path` are ignored: a gRPC path names a method, not a resource tree, and a cookie never
//!   widens to other hosts (the same rule that keeps credentials off foreign endpoint
//!   locations).
//! - `Max-Age` (seconds; zero or less deletes) wins over `Expires` (an HTTP date); a cookie
//!   with neither lives as long as the client.
//! - `Secure` cookies are sent over TLS only.
//! - A `set-cookie` that cannot be parsed is ignored (logged at debug level without its
//!   value), as RFC 6265 asks; it never fails the call.
//!
//! Cookie values are credentials: they are marked sensitive in requests and never logged.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use tonic::metadata::{MetadataMap, MetadataValue};

/// Most cookies kept per origin, so a hostile server cannot grow the jar without bound.
const MAX_COOKIES_PER_ORIGIN: usize = 64;

/// One stored cookie.
#[derive(Clone, PartialEq, Eq)]
struct Cookie {
    value: String,
    /// `None`: lives as long as the client.
    expires: Option<DateTime<Utc>>,
    secure: bool,
}

/// Cookies by origin (`http://host:port` / `https://host:port`), then by name.
#[derive(Default)]
pub(crate) struct CookieJar {
    origins: Mutex<BTreeMap<String, BTreeMap<String, Cookie>>>,
}

impl fmt::Debug for CookieJar {
    // Names and counts only: values are session credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let origins = self.origins.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut map = f.debug_map();
        for (origin, cookies) in origins.iter() {
            map.entry(origin, &cookies.keys().collect::<Vec<_>>());
        }
        map.finish()
    }
}

impl CookieJar {
    /// Stores every `set-cookie` of a response (headers or trailers) from `origin`.
    pub(crate) fn store(&self, origin: &str, metadata: &MetadataMap) {
        self.store_at(origin, metadata, Utc::now());
    }

    /// Adds the `cookie` header for a request to `origin`, replacing any the request had.
    pub(crate) fn apply(&self, origin: &str, tls: bool, metadata: &mut MetadataMap) {
        let Some(header) = self.header_at(origin, tls, Utc::now()) else {
            return;
        };
        match MetadataValue::try_from(header) {
            Ok(mut value) => {
                value.set_sensitive(true);
                metadata.insert("cookie", value);
            }
            // Values were checked to be header-safe when stored; nothing else can fail here.
            Err(_) => tracing::debug!(origin, "cookie header is not valid metadata; not sent"),
        }
    }

    fn store_at(&self, origin: &str, metadata: &MetadataMap, now: DateTime<Utc>) {
        let mut origins = self.origins.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        for raw in metadata.get_all("set-cookie") {
            let Some((name, cookie)) = raw.to_str().ok().and_then(|text| parse(text, now)) else {
                tracing::debug!(origin, "ignoring a set-cookie header that cannot be parsed");
                continue;
            };
            let cookies = origins.entry(origin.to_string()).or_default();
            if cookie.expires.is_some_and(|at| at <= now) {
                cookies.remove(&name);
            } else if cookies.len() < MAX_COOKIES_PER_ORIGIN || cookies.contains_key(&name) {
                cookies.insert(name, cookie);
            }
        }
    }

    /// `name=value; name2=value2` of the live cookies for `origin`; expired ones are dropped.
    fn header_at(&self, origin: &str, tls: bool, now: DateTime<Utc>) -> Option<String> {
        let mut origins = self.origins.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let cookies = origins.get_mut(origin)?;
        cookies.retain(|_, cookie| cookie.expires.is_none_or(|at| at > now));
        let pairs: Vec<String> = cookies
            .iter()
            .filter(|(_, cookie)| tls || !cookie.secure)
            .map(|(name, cookie)| format!("{name}={}", cookie.value))
            .collect();
        (!pairs.is_empty()).then(|| pairs.join("; "))
    }
}

/// Parses one `set-cookie` value: `name=value` then `; attribute[=value]` pairs.
fn parse(text: &str, now: DateTime<Utc>) -> Option<(String, Cookie)> {
    let mut parts = text.split(';');
    let (name, value) = parts.next()?.split_once('=')?;
    let (name, value) = (name.trim(), trim_quotes(value.trim()));
    if name.is_empty() || !name.bytes().all(is_token_byte) || !value.bytes().all(is_value_byte) {
        return None;
    }
    let mut cookie = Cookie { value: value.to_string(), expires: None, secure: false };
    let mut max_age = None;
    for attribute in parts {
        let (key, val) = attribute.split_once('=').unwrap_or((attribute, ""));
        match key.trim().to_ascii_lowercase().as_str() {
            "max-age" => max_age = parse_max_age(val.trim(), now).or(max_age),
            "expires" => cookie.expires = cookie.expires.or_else(|| parse_http_date(val.trim())),
            "secure" => cookie.secure = true,
            _ => {}
        }
    }
    // RFC 6265 5.3: Max-Age takes precedence over Expires.
    if max_age.is_some() {
        cookie.expires = max_age;
    }
    Some((name.to_string(), cookie))
}

fn trim_quotes(value: &str) -> &str {
    value.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(value)
}

/// RFC 6265 `token` characters for cookie names.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b)
}

/// RFC 6265 `cookie-octet`s: printable ASCII except `"`, `,`, `;` and `\`.
fn is_value_byte(b: u8) -> bool {
    b.is_ascii_graphic() && !b"\",;\\".contains(&b)
}

/// `Max-Age=N`: N seconds from now; zero or negative means "already expired".
fn parse_max_age(value: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let seconds: i64 = value.parse().ok()?;
    if seconds <= 0 {
        return Some(DateTime::<Utc>::MIN_UTC);
    }
    Some(
        now.checked_add_signed(TimeDelta::try_seconds(seconds)?)
            .unwrap_or(DateTime::<Utc>::MAX_UTC),
    )
}

/// The HTTP date forms servers send in `Expires`: RFC 1123 (`Wed, 21 Oct 2015 07:28:00 GMT`),
/// its dashed variant (`Wed, 21-Oct-2015 07:28:00 GMT`, Java), RFC 850
/// (`Wednesday, 21-Oct-15 07:28:00 GMT`) and asctime (`Wed Oct 21 07:28:00 2015`).
fn parse_http_date(value: &str) -> Option<DateTime<Utc>> {
    if let Ok(date) = DateTime::parse_from_rfc2822(value) {
        return Some(date.with_timezone(&Utc));
    }
    let value = value.trim_end_matches(" GMT").trim_end_matches(" UTC");
    ["%a, %d-%b-%Y %H:%M:%S", "%A, %d-%b-%y %H:%M:%S", "%a %b %e %H:%M:%S %Y"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(value, format).ok())
        .map(|naive| naive.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGIN: &str = "http://127.0.0.1:1";

    fn now() -> DateTime<Utc> {
        "2024-01-01T00:00:00Z".parse().unwrap()
    }

    fn answer(set_cookies: &[&str]) -> MetadataMap {
        let mut metadata = MetadataMap::new();
        for value in set_cookies {
            metadata.append("set-cookie", value.parse().unwrap());
        }
        metadata
    }

    #[test]
    fn cookies_are_sent_back_to_their_origin_only() {
        let jar = CookieJar::default();
        jar.store_at(ORIGIN, &answer(&["session=abc; Path=/; HttpOnly", "b=\"q\""]), now());
        assert_eq!(jar.header_at(ORIGIN, false, now()).as_deref(), Some("b=q; session=abc"));
        assert_eq!(jar.header_at("http://127.0.0.1:2", false, now()), None);
        jar.store_at(ORIGIN, &answer(&["session=def"]), now());
        assert_eq!(jar.header_at(ORIGIN, false, now()).as_deref(), Some("b=q; session=def"));
    }

    #[test]
    fn max_age_and_expires_are_honoured() {
        let jar = CookieJar::default();
        let later = now() + TimeDelta::seconds(60);
        jar.store_at(
            ORIGIN,
            &answer(&[
                "short=1; Max-Age=30",
                "dated=2; Expires=Mon, 01 Jan 2024 00:00:45 GMT",
                "java=3; Expires=Mon, 01-Jan-2024 00:01:30 GMT",
                "both=4; Expires=Mon, 01 Jan 2024 00:00:01 GMT; Max-Age=120",
                "forever=5",
            ]),
            now(),
        );
        let all = jar.header_at(ORIGIN, false, now()).unwrap();
        assert_eq!(all, "both=4; dated=2; forever=5; java=3; short=1");
        assert_eq!(
            jar.header_at(ORIGIN, false, later).as_deref(),
            Some("both=4; forever=5; java=3")
        );
        // A server deletes a cookie by expiring it.
        jar.store_at(ORIGIN, &answer(&["forever=; Max-Age=0"]), later);
        jar.store_at(ORIGIN, &answer(&["java=x; Expires=Thu, 01 Jan 1970 00:00:00 GMT"]), later);
        assert_eq!(jar.header_at(ORIGIN, false, later).as_deref(), Some("both=4"));
    }

    #[test]
    fn secure_cookies_need_tls_and_garbage_is_ignored() {
        let jar = CookieJar::default();
        jar.store_at(
            ORIGIN,
            &answer(&["s=1; Secure", "=nameless", "no-equals", "bad name=1", "v=a,b", "ok=1"]),
            now(),
        );
        assert_eq!(jar.header_at(ORIGIN, false, now()).as_deref(), Some("ok=1"));
        assert_eq!(jar.header_at(ORIGIN, true, now()).as_deref(), Some("ok=1; s=1"));
    }

    #[test]
    fn the_jar_is_bounded_and_debug_hides_values() {
        let jar = CookieJar::default();
        let many: Vec<String> = (0..100).map(|i| format!("c{i}=secret{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        jar.store_at(ORIGIN, &answer(&many), now());
        let header = jar.header_at(ORIGIN, false, now()).unwrap();
        assert_eq!(header.split("; ").count(), MAX_COOKIES_PER_ORIGIN);
        let shown = format!("{jar:?}");
        assert!(shown.contains("c1") && !shown.contains("secret"), "{shown}");
    }

    #[test]
    fn http_date_forms() {
        let expected: DateTime<Utc> = "2015-10-21T07:28:00Z".parse().unwrap();
        for text in [
            "Wed, 21 Oct 2015 07:28:00 GMT",
            "Wed, 21-Oct-2015 07:28:00 GMT",
            "Wednesday, 21-Oct-15 07:28:00 GMT",
            "Wed Oct 21 07:28:00 2015",
        ] {
            assert_eq!(parse_http_date(text), Some(expected), "{text}");
        }
        assert_eq!(parse_http_date("tomorrow"), None);
    }

    #[test]
    fn apply_sets_a_sensitive_cookie_header() {
        let jar = CookieJar::default();
        jar.store(ORIGIN, &answer(&["a=1"]));
        let mut metadata = MetadataMap::new();
        metadata.insert("cookie", "stale=0".parse().unwrap());
        jar.apply(ORIGIN, false, &mut metadata);
        let value = metadata.get("cookie").unwrap();
        assert_eq!(value, "a=1");
        assert!(value.is_sensitive());
    }
}
