//! Text meant for the person at the terminal (the `print` processor's table): written through
//! the hook a host installs, so that a host drawing progress bars can put it above them
//! instead of across them. Without a hook it goes to standard output.
//!
//! ```
//! use std::sync::Arc;
//! use flightline_core::console;
//!
//! // A host that draws bars would suspend them around the write.
//! console::set_hook(Some(Arc::new(|text: &str| {
//!     use std::io::Write;
//!     let mut out = std::io::stdout().lock();
//!     out.write_all(text.as_bytes())?;
//!     out.flush()
//! })));
//! console::print("a table\n").unwrap();
//! console::set_hook(None);
//! ```

use std::io::Write;
use std::sync::{Arc, RwLock};

/// Writes one piece of text, whole.
pub type Hook = dyn Fn(&str) -> std::io::Result<()> + Send + Sync;

static HOOK: RwLock<Option<Arc<Hook>>> = RwLock::new(None);

/// Sends [`print()`]ed text through `hook` from now on (`None`: standard output again).
pub fn set_hook(hook: Option<Arc<Hook>>) {
    *HOOK.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = hook;
}

/// Writes `text` for the person at the terminal, in one piece.
pub fn print(text: &str) -> std::io::Result<()> {
    let hook = HOOK.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
    match hook {
        Some(hook) => hook(text),
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())?;
            out.flush()
        }
    }
}
