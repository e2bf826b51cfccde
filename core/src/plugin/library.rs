//! Opening a plugin library: the SHA-256 pin, `dlopen`, the entry symbol, version negotiation,
//! and the process-wide registry that keeps every library loaded.

use std::collections::BTreeMap;
use std::ffi::{CStr, c_void};
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use super::abi::{self, FlightlineError, InitFn, PluginTable};
use super::error::PluginErrorKind;
use super::instance::take_error;
use crate::error::{Error, Result};

/// What a plugin declares it implements (the table's `kind` bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PluginKind {
    /// `open` / `process` / `finish` are implemented.
    pub processor: bool,
    /// `validate` is implemented.
    pub validator: bool,
}

impl fmt::Display for PluginKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match (self.processor, self.validator) {
            (true, true) => "processor+validator",
            (true, false) => "processor",
            (false, true) => "validator",
            (false, false) => "nothing (no kind bit set)",
        })
    }
}

/// A loaded plugin library: its table for the negotiated ABI version and what it declares.
///
/// Obtained from [`load`]; shared (`Arc`) by every instance made from it. The library itself is
/// never unloaded (see [`load`]).
#[derive(Debug)]
pub struct Plugin {
    path: PathBuf,
    sha256: String,
    abi_version: u32,
    abi_versions: Vec<u32>,
    pub(crate) table: PluginTable,
    name: String,
    version: String,
    kind: PluginKind,
}

// SAFETY: the table holds function pointers and pointers to static strings of a library that is
// never unloaded; nothing in it is mutated after load.
unsafe impl Send for Plugin {}
// SAFETY: as above; the header allows `create` from any thread, concurrently.
unsafe impl Sync for Plugin {}

impl Plugin {
    /// The path the library was loaded from, as given.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's SHA-256, lowercase hex, as hashed before loading.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// The ABI version in use: the newest both sides speak.
    pub fn abi_version(&self) -> u32 {
        self.abi_version
    }

    /// Every host ABI version the plugin accepted, newest first.
    pub fn abi_versions(&self) -> &[u32] {
        &self.abi_versions
    }

    /// The plugin's name (the table's `name`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The plugin's own version string.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Processor, validator or both.
    pub fn kind(&self) -> PluginKind {
        self.kind
    }

    pub(crate) fn error(&self, kind: PluginErrorKind) -> Error {
        Error::Plugin { path: self.path.clone(), kind }
    }
}

impl fmt::Display for Plugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |v: &[u32]| v.iter().map(u32::to_string).collect::<Vec<_>>().join(", ");
        writeln!(f, "path:         {}", self.path.display())?;
        writeln!(f, "name:         {}", self.name)?;
        writeln!(f, "version:      {}", self.version)?;
        writeln!(f, "kind:         {}", self.kind)?;
        writeln!(
            f,
            "ABI versions: {} (in use: {}; host speaks {})",
            list(&self.abi_versions),
            self.abi_version,
            list(abi::HOST_ABI_VERSIONS)
        )?;
        write!(f, "sha256:       {}", self.sha256)
    }
}

/// Every library loaded by this process, by canonical path. Entries are never removed: see [`load`].
static REGISTRY: Mutex<BTreeMap<PathBuf, Arc<Plugin>>> = Mutex::new(BTreeMap::new());

/// Loads the plugin at `path` once per process and returns it; later calls for the same file
/// return the same [`Plugin`].
///
/// With `sha256` (64 hex digits) the file is hashed first and refused on mismatch, before the
/// dynamic loader runs any of its code. The loader then checks the entry symbol
/// `flightline_plugin_init` and asks for each ABI version this host speaks, newest first.
///
/// Libraries are never unloaded (no `dlclose`): a Rust cdylib registers thread-local destructors
/// that crash the process when they run after its code is unmapped, and an instance or a batch
/// the plugin still holds would dangle. ADBC's driver manager never unloads drivers either. The
/// cost is the mapping staying resident until exit.
///
/// ```no_run
/// # fn main() -> flightline_core::Result<()> {
/// let plugin = flightline_core::plugin::load("target/debug/libtop_targets.so", None)?;
/// println!("{plugin}");
/// # Ok(()) }
/// ```
pub fn load(path: impl AsRef<Path>, sha256: Option<&str>) -> Result<Arc<Plugin>> {
    let path = path.as_ref();
    let fail = |kind| Error::Plugin { path: path.to_path_buf(), kind };
    if !path.is_file() {
        return Err(fail(PluginErrorKind::NotFound));
    }
    let pin = sha256.map(normalise_pin).transpose().map_err(fail)?;
    let actual = hash_file(path).map_err(fail)?;
    if let Some(pin) = &pin
        && *pin != actual
    {
        return Err(fail(PluginErrorKind::HashMismatch { expected: pin.clone(), actual }));
    }
    let canonical = path
        .canonicalize()
        .map_err(|e| fail(PluginErrorKind::Unreadable { message: e.to_string() }))?;
    let mut registry = REGISTRY.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(loaded) = registry.get(&canonical) {
        // The file may have been replaced since it was loaded: the pin must match what runs.
        if let Some(pin) = pin
            && pin != loaded.sha256
        {
            let actual = loaded.sha256.clone();
            return Err(fail(PluginErrorKind::HashMismatch { expected: pin, actual }));
        }
        return Ok(loaded.clone());
    }
    let plugin = Arc::new(open(path, &canonical, actual)?);
    registry.insert(canonical, plugin.clone());
    Ok(plugin)
}

/// Loads `path` (see [`load`]) for `flightline plugins inspect`: name, version, kind, ABI
/// versions and SHA-256, via [`Plugin`]'s `Display`.
pub fn inspect(path: impl AsRef<Path>) -> Result<Arc<Plugin>> {
    load(path, None)
}

/// The SHA-256 of a file, lowercase hex.
pub fn sha256_file(path: impl AsRef<Path>) -> Result<String> {
    let path = path.as_ref();
    hash_file(path).map_err(|kind| Error::Plugin { path: path.to_path_buf(), kind })
}

fn hash_file(path: &Path) -> Result<String, PluginErrorKind> {
    let unreadable = |e: std::io::Error| PluginErrorKind::Unreadable { message: e.to_string() };
    let mut file = std::fs::File::open(path).map_err(unreadable)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let read = file.read(&mut buffer).map_err(unreadable)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(hex::encode(hasher.finalize()))
}

fn normalise_pin(pin: &str) -> Result<String, PluginErrorKind> {
    let pin = pin.trim().to_ascii_lowercase();
    if pin.len() == 64 && pin.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(pin)
    } else {
        Err(PluginErrorKind::BadPin { pin })
    }
}

/// `dlopen`, the entry symbol, the version negotiation. The library is leaked on every path,
/// success or not: its initialisers have run, and unloading is what this module never does.
fn open(path: &Path, canonical: &Path, sha256: String) -> Result<Plugin> {
    let fail = |kind| Error::Plugin { path: path.to_path_buf(), kind };
    // SAFETY: loading a library runs its initialisers; that is what loading a plugin means. The
    // operator chose the file (and may pin its hash).
    let library = unsafe { libloading::Library::new(canonical) }
        .map_err(|e| fail(PluginErrorKind::NotALibrary { message: e.to_string() }))?;
    let library: &'static libloading::Library = Box::leak(Box::new(library));
    // SAFETY: the symbol's type is the header's `FlightlinePluginInitFunc`.
    let init: InitFn = unsafe { library.get::<InitFn>(abi::ENTRY_SYMBOL.as_bytes()) }
        .map(|symbol| *symbol)
        .map_err(|_| fail(PluginErrorKind::MissingSymbol { symbol: abi::ENTRY_SYMBOL.into() }))?;
    let (abi_version, table, abi_versions) = negotiate(init).map_err(fail)?;
    let (name, version, kind) = describe(&table, abi_version).map_err(fail)?;
    Ok(Plugin {
        path: path.to_path_buf(),
        sha256,
        abi_version,
        abi_versions,
        table,
        name,
        version,
        kind,
    })
}

/// Asks for every version the host speaks, newest first; keeps the newest accepted table.
fn negotiate(init: InitFn) -> Result<(u32, PluginTable, Vec<u32>), PluginErrorKind> {
    let mut chosen = None;
    let mut accepted = Vec::new();
    let mut detail = None;
    for &version in abi::HOST_ABI_VERSIONS {
        match init_version(init, version) {
            Ok(table) => {
                accepted.push(version);
                chosen.get_or_insert((version, table));
            }
            Err(why) => detail = Some(format!("version {version}: {why}")),
        }
    }
    match chosen {
        Some((version, table)) => Ok((version, table, accepted)),
        None => Err(PluginErrorKind::NoCommonVersion { detail }),
    }
}

fn init_version(init: InitFn, version: u32) -> Result<PluginTable, String> {
    let mut table = PluginTable::zeroed();
    let mut error = FlightlineError::empty();
    // SAFETY: `table` is a zeroed table as large as the newest version this host speaks, and
    // `error` a zeroed error, as the header requires. (A panic cannot unwind out of an
    // `extern "C"` function; Rust plugins catch their own in the export glue.)
    let status =
        unsafe { init(version, (&mut table as *mut PluginTable).cast::<c_void>(), &mut error) };
    // SAFETY: the plugin filled `error` per the header, or left it zeroed.
    let message = unsafe { take_error(&mut error) };
    if status != abi::STATUS_OK {
        let message = message.map(|m| format!(": {m}")).unwrap_or_default();
        return Err(format!("init answered {}{message}", abi::status_name(status)));
    }
    let wanted = abi::table_size(version).unwrap_or(u32::MAX);
    if table.size < wanted {
        return Err(format!(
            "init filled {} bytes of table, version {version} needs {wanted}",
            table.size
        ));
    }
    Ok(table)
}

/// Reads and checks the declared name, version and kind, and the functions the kind needs.
fn describe(
    table: &PluginTable,
    version: u32,
) -> Result<(String, String, PluginKind), PluginErrorKind> {
    let bad = |message: &str| PluginErrorKind::BadTable { version, message: message.into() };
    // SAFETY: the header makes `name` and `version` static NUL-terminated strings (or NULL).
    let name = unsafe { static_str(table.name) }.ok_or_else(|| bad("`name` is NULL"))?;
    let plugin_version = unsafe { static_str(table.version) }.unwrap_or_default();
    if name.is_empty() {
        return Err(bad("`name` is empty"));
    }
    let kind = PluginKind {
        processor: table.kind & abi::KIND_PROCESSOR != 0,
        validator: table.kind & abi::KIND_VALIDATOR != 0,
    };
    let required = [
        ("create", table.create.is_some()),
        ("destroy", table.destroy.is_some()),
        ("release_string", table.release_string.is_some()),
        ("open", !kind.processor || table.open.is_some()),
        ("process", !kind.processor || table.process.is_some()),
        ("finish", !kind.processor || table.finish.is_some()),
        ("validate", !kind.validator || table.validate.is_some()),
    ];
    if let Some((missing, _)) = required.iter().find(|(_, present)| !present) {
        return Err(bad(&format!("`{missing}` is NULL but the plugin declares kind {kind}")));
    }
    Ok((name, plugin_version, kind))
}

/// # Safety
/// `ptr` is NULL or a NUL-terminated string that outlives the call.
unsafe fn static_str(ptr: *const std::ffi::c_char) -> Option<String> {
    (!ptr.is_null()).then(|| unsafe { CStr::from_ptr(ptr) }.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_are_64_hex_digits_in_any_case() {
        let pin = "AB".repeat(32);
        assert_eq!(normalise_pin(&pin), Ok("ab".repeat(32)));
        assert!(matches!(normalise_pin("abc"), Err(PluginErrorKind::BadPin { .. })));
        assert!(matches!(normalise_pin(&"zz".repeat(32)), Err(PluginErrorKind::BadPin { .. })));
    }

    #[test]
    fn missing_files_and_non_libraries_have_their_own_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.so");
        assert!(matches!(
            load(&missing, None),
            Err(Error::Plugin { kind: PluginErrorKind::NotFound, .. })
        ));
        let text = dir.path().join("text.so");
        std::fs::write(&text, "not a library").unwrap();
        match load(&text, None) {
            Err(Error::Plugin { kind: PluginErrorKind::NotALibrary { message }, path }) => {
                assert_eq!(path, text);
                assert!(!message.is_empty());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_wrong_pin_refuses_before_loading() {
        let dir = tempfile::tempdir().unwrap();
        let text = dir.path().join("text.so");
        std::fs::write(&text, "not a library").unwrap();
        let actual = sha256_file(&text).unwrap();
        let err = load(&text, Some(&"0".repeat(64))).unwrap_err();
        match err {
            Error::Plugin {
                kind: PluginErrorKind::HashMismatch { expected, actual: got }, ..
            } => {
                assert_eq!(expected, "0".repeat(64));
                assert_eq!(got, actual);
            }
            other => panic!("{other:?}"),
        }
        // The right pin gets past the hash, to the dynamic loader.
        let err = load(&text, Some(&actual)).unwrap_err();
        assert!(matches!(err, Error::Plugin { kind: PluginErrorKind::NotALibrary { .. }, .. }));
    }
}
