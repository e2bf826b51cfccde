//! One id for one query, everywhere: the `x-request-id` a client sends with every call of a
//! query, the server's audit line and the error messages both sides produce.
//!
//! The client makes a new id per query unless the caller gives one
//! ([`QueryOptions::request_id`](crate::QueryOptions::request_id)); a server keeps a
//! well-formed incoming id ([`is_well_formed`]) and makes its own otherwise. An error names
//! the id as ` (request id: ID)` at the end of its message, which [`find`] reads back, so an
//! error that crossed a process boundary as text still gives its id.
//!
//! ```
//! use flightline_core::request_id;
//!
//! let id = request_id::new();
//! assert!(request_id::is_well_formed(&id));
//! let message = request_id::append("table t not found".into(), &id);
//! assert_eq!(request_id::find(&message), Some(id.as_str()));
//! ```

/// The header that carries the id.
pub const HEADER: &str = "x-request-id";
/// The W3C trace context header, passed through when the caller gives one.
pub const TRACEPARENT: &str = "traceparent";

const MARKER: &str = " (request id: ";
/// Ids longer than this are not kept: they are made up by someone, not a generator.
pub const MAX_LEN: usize = 128;

/// A new random id (a UUID v4).
pub fn new() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Whether `id` can be kept as sent: 1 to [`MAX_LEN`] characters of letters, digits and
/// `-_.:/+=@`, so that it is safe in a header, a log line and an error message alike.
pub fn is_well_formed(id: &str) -> bool {
    (1..=MAX_LEN).contains(&id.len())
        && id.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:/+=@".contains(c))
}

/// Whether `value` is a W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`, ids not all zero).
pub fn is_traceparent(value: &str) -> bool {
    let parts: Vec<&str> = value.split('-').collect();
    let hex = |s: &str, n: usize| s.len() == n && s.chars().all(|c| c.is_ascii_hexdigit());
    let nonzero = |s: &str| s.chars().any(|c| c != '0');
    matches!(parts.as_slice(), [v, trace, span, flags]
        if hex(v, 2) && *v != "ff" && hex(trace, 32) && nonzero(trace) && hex(span, 16)
            && nonzero(span) && hex(flags, 2))
}

/// `message` ending with ` (request id: ID)`, unless it already names `id`.
pub fn append(mut message: String, id: &str) -> String {
    if find(&message) != Some(id) {
        message.push_str(MARKER);
        message.push_str(id);
        message.push(')');
    }
    message
}

/// The id an error message names, if it names one (the last, when it names several).
pub fn find(message: &str) -> Option<&str> {
    let start = message.rfind(MARKER)? + MARKER.len();
    let rest = &message[start..];
    let id = &rest[..rest.find(')')?];
    is_well_formed(id).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_well_formed() {
        let (a, b) = (new(), new());
        assert_ne!(a, b);
        assert!(is_well_formed(&a) && a.len() == 36, "{a}");
    }

    #[test]
    fn only_safe_ids_of_reasonable_length_are_kept() {
        for ok in ["abc", "adbc-42", "mm:query/7", &"x".repeat(MAX_LEN)] {
            assert!(is_well_formed(ok), "{ok}");
        }
        for bad in ["", "a b", "a\nb", "é", "a)b", &"x".repeat(MAX_LEN + 1)] {
            assert!(!is_well_formed(bad), "{bad:?}");
        }
    }

    #[test]
    fn an_id_is_appended_once_and_read_back() {
        let once = append("boom".into(), "id-1");
        assert_eq!(once, "boom (request id: id-1)");
        assert_eq!(append(once.clone(), "id-1"), once);
        assert_eq!(find(&once), Some("id-1"));
        assert_eq!(find("no id here"), None);
        assert_eq!(find("x (request id: a b)"), None);
    }

    #[test]
    fn traceparent_follows_the_w3c_format() {
        assert!(is_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
        assert!(!is_traceparent("00-00000000000000000000000000000000-00f067aa0ba902b7-01"));
        assert!(!is_traceparent("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
        assert!(!is_traceparent("00-4bf92f35-00f067aa0ba902b7-01"));
    }
}
