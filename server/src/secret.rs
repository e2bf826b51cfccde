//! Secrets (passwords, tokens) are kept and compared as SHA-256 digests.
//!
//! Comparing digests instead of the secrets makes every comparison the same length (32 bytes),
//! whatever was presented, so the time a comparison takes says nothing about the secret's
//! length or how many of its bytes matched. The server never keeps a password or a token in
//! clear: a memory dump or a `Debug` print shows digests at most.

use sha2::{Digest, Sha256};

/// The SHA-256 digest of a secret.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct SecretDigest([u8; 32]);

impl std::fmt::Debug for SecretDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretDigest(..)")
    }
}

impl SecretDigest {
    /// The digest of `secret`.
    pub(crate) fn of(secret: &[u8]) -> Self {
        work::digested();
        Self(Sha256::digest(secret).into())
    }

    /// A digest that no presented secret is expected to match: what an unknown user's
    /// password is compared against, so that an unknown user costs the same work.
    pub(crate) fn dummy() -> Self {
        Self([0x5a; 32])
    }

    /// True when both digests are equal, in time independent of where they differ: every
    /// byte is looked at, and differences are OR-ed (never XOR-ed, where two could cancel).
    pub(crate) fn matches(&self, other: &SecretDigest) -> bool {
        let diff = self.0.iter().zip(other.0.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b));
        work::compared(self.0.len());
        // Keeps the optimiser from turning the fold into an early-exit comparison.
        std::hint::black_box(diff) == 0
    }
}

/// What tests count to prove that every path does the same work: digests computed and bytes
/// compared on this thread. Nothing is counted outside tests.
#[cfg(test)]
pub(crate) mod work {
    use std::cell::Cell;

    thread_local! {
        static DIGESTS: Cell<usize> = const { Cell::new(0) };
        static COMPARED: Cell<usize> = const { Cell::new(0) };
    }

    pub(crate) fn digested() {
        DIGESTS.with(|c| c.set(c.get() + 1));
    }

    pub(crate) fn compared(bytes: usize) {
        COMPARED.with(|c| c.set(c.get() + bytes));
    }

    /// (digests, bytes compared) done on this thread since the last call.
    pub(crate) fn take() -> (usize, usize) {
        (DIGESTS.with(|c| c.replace(0)), COMPARED.with(|c| c.replace(0)))
    }
}

#[cfg(not(test))]
mod work {
    pub(crate) fn digested() {}
    pub(crate) fn compared(_bytes: usize) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_secrets_match_and_any_difference_does_not() {
        let a = SecretDigest::of(b"s3cret");
        assert!(a.matches(&SecretDigest::of(b"s3cret")));
        for other in [&b"r2cret"[..], b"s3cre", b"s3crett", b"", b"S3cret"] {
            assert!(!a.matches(&SecretDigest::of(other)), "{other:?}");
        }
        assert!(!a.matches(&SecretDigest::dummy()));
    }

    #[test]
    fn byte_differences_that_cancel_out_are_still_differences() {
        // 'a' ^ 'b' == 3 in two places: an XOR-folded comparison would call these equal.
        let x = SecretDigest([b'a'; 32]);
        let mut y = x;
        y.0[0] = b'b';
        y.0[1] = b'b';
        assert!(!x.matches(&y));
    }

    #[test]
    fn every_comparison_looks_at_all_32_bytes_whatever_the_input_lengths() {
        work::take();
        let stored = SecretDigest::of(b"a-long-stored-password");
        for presented in [&b""[..], b"a", b"a-long-stored-password", &[7u8; 4096]] {
            assert!(stored.matches(&SecretDigest::of(presented)) == (presented.len() == 22));
        }
        assert_eq!(work::take(), (5, 4 * 32));
    }

    #[test]
    fn debug_shows_no_digest_bytes() {
        assert_eq!(format!("{:?}", SecretDigest::of(b"pw")), "SecretDigest(..)");
    }
}
