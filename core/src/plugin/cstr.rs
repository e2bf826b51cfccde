//! The C strings crossing the ABI, both ways, in one place: text never fails to cross (a NUL
//! inside becomes a space, invalid UTF-8 is replaced), because a log line or a name must not be
//! lost over one bad byte.

use std::borrow::Cow;
use std::ffi::{CStr, CString, c_char};

/// `text` as a C string; NUL characters inside become spaces.
pub(crate) fn lossy(text: &str) -> CString {
    match CString::new(text) {
        Ok(c) => c,
        // With the NULs replaced, `new` cannot fail again; an empty string is the fallback
        // that needs no unwrap.
        Err(_) => CString::new(text.replace('\0', " ")).unwrap_or_default(),
    }
}

/// The text at `ptr`, `None` for NULL.
///
/// # Safety
/// `ptr` is NULL or a NUL-terminated string valid for the call.
pub(crate) unsafe fn read_lossy(ptr: *const c_char) -> Option<String> {
    // SAFETY: the caller's promise.
    unsafe { borrow_lossy(ptr) }.map(Cow::into_owned)
}

/// The text at `ptr` without copying it when it is valid UTF-8; `None` for NULL.
///
/// # Safety
/// `ptr` is NULL or a NUL-terminated string that outlives `'a`.
pub(crate) unsafe fn borrow_lossy<'a>(ptr: *const c_char) -> Option<Cow<'a, str>> {
    // SAFETY: the caller's promise.
    (!ptr.is_null()).then(|| unsafe { CStr::from_ptr(ptr) }.to_string_lossy())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_crosses_with_nul_as_space_and_null_as_none() {
        let c = lossy("a\0b");
        assert_eq!(c.to_str().unwrap(), "a b");
        // SAFETY: `c` is a valid C string for the call; NULL is allowed.
        unsafe {
            assert_eq!(read_lossy(c.as_ptr()).as_deref(), Some("a b"));
            assert_eq!(read_lossy(std::ptr::null()), None);
        }
        let bad = CString::new(vec![b'x', 0xff]).unwrap();
        // SAFETY: as above.
        assert_eq!(unsafe { read_lossy(bad.as_ptr()) }.as_deref(), Some("x\u{fffd}"));
    }
}
