//! Opening a plugin library: the SHA-256 pin, `dlopen`, the entry symbol, version negotiation,
//! and the process-wide registry that keeps every library loaded.

use std::collections::BTreeMap;
use std::ffi::c_void;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use super::abi::{self, FlightlineError, InitFn, PluginTable};
use super::call::take_error;
use super::cstr;
use super::error::PluginErrorKind;
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

/// Every library loaded by this process, by SHA-256: the content is what was loaded, whatever
/// path it came from. Entries are never removed: see [`load`].
static REGISTRY: Mutex<BTreeMap<String, Arc<Plugin>>> = Mutex::new(BTreeMap::new());

/// What every file this process hashed and then loaded gave, by the file's [`Identity`]: a
/// runner loads a job's plugins for every window, and re-reading a library of megabytes each
/// time bought nothing, as an unchanged file can only hash to what was loaded already.
static LOADED_FILES: Mutex<BTreeMap<Identity, Arc<Plugin>>> = Mutex::new(BTreeMap::new());

/// What tells a file's content apart without reading it, on Unix: any write moves the change
/// time (which, unlike the modification time, no caller can set back), and a file replaced on
/// the path has another inode. `None` elsewhere: every load hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Identity {
    device: u64,
    inode: u64,
    size: u64,
    modified: (i64, i64),
    changed: (i64, i64),
}

impl Identity {
    #[cfg(unix)]
    fn of(metadata: &std::fs::Metadata) -> Option<Self> {
        use std::os::unix::fs::MetadataExt;
        Some(Self {
            device: metadata.dev(),
            inode: metadata.ino(),
            size: metadata.size(),
            modified: (metadata.mtime(), metadata.mtime_nsec()),
            changed: (metadata.ctime(), metadata.ctime_nsec()),
        })
    }

    #[cfg(not(unix))]
    fn of(_metadata: &std::fs::Metadata) -> Option<Self> {
        None
    }

    /// The plugin this process loaded from a file of this identity, if any.
    fn loaded(self) -> Option<Arc<Plugin>> {
        LOADED_FILES.lock().unwrap_or_else(|p| p.into_inner()).get(&self).cloned()
    }
}

/// A plugin library opened once: its size and SHA-256, read from the open file. Obtaining one
/// runs none of the library's code; [`LibraryFile::load`] then hands this same open file to the
/// dynamic loader, never the path again, so a file swapped on the path (or a symlink re-pointed)
/// after hashing is not what runs.
///
/// ```no_run
/// # fn main() -> flightline_core::Result<()> {
/// let file = flightline_core::plugin::LibraryFile::open("target/debug/libtop_targets.so")?;
/// println!("{file}"); // path, size, SHA-256: nothing of the library ran
/// let plugin = file.load()?; // runs its initialisers, reads its table
/// println!("{plugin}");
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct LibraryFile {
    path: PathBuf,
    file: std::fs::File,
    identity: Option<Identity>,
    size: u64,
    sha256: String,
}

impl LibraryFile {
    /// Opens `path` and hashes the open file, without loading it.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let (file, identity) = open_regular(path)?;
        Self::read(path, file, identity)
    }

    /// Hashes the opened `file`.
    fn read(path: &Path, mut file: std::fs::File, identity: Option<Identity>) -> Result<Self> {
        let (size, sha256) = hash(&mut file).map_err(|e| Error::Plugin {
            path: path.to_path_buf(),
            kind: PluginErrorKind::Unreadable { message: e.to_string() },
        })?;
        Ok(Self { path: path.to_path_buf(), file, identity, size, sha256 })
    }

    /// The path, as given.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes hashed.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The SHA-256 of the bytes read, lowercase hex.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// Loads this file (the one hashed) once per process, as [`load`] does. This runs the
    /// library's initialisers.
    pub fn load(self) -> Result<Arc<Plugin>> {
        self.load_checked(|| {})
    }

    /// [`Self::load`], with `before_load` run between the registry check and the dynamic loader:
    /// the window in which a path-based loader could be tricked.
    fn load_checked(self, before_load: impl FnOnce()) -> Result<Arc<Plugin>> {
        let mut registry = REGISTRY.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (identity, sha256) = (self.identity, self.sha256.clone());
        let plugin = match registry.get(&sha256) {
            Some(loaded) => loaded.clone(),
            None => {
                before_load();
                let plugin = Arc::new(open(self)?);
                registry.insert(sha256, plugin.clone());
                plugin
            }
        };
        if let Some(identity) = identity {
            LOADED_FILES.lock().unwrap_or_else(|p| p.into_inner()).insert(identity, plugin.clone());
        }
        Ok(plugin)
    }
}

impl fmt::Display for LibraryFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "path:         {}", self.path.display())?;
        writeln!(f, "size:         {} bytes", self.size)?;
        write!(f, "sha256:       {}", self.sha256)
    }
}

/// Loads the plugin at `path` once per process and returns it; later calls for the same file
/// content return the same [`Plugin`]. A file this process has loaded already and that has not
/// changed since (same inode, size, modification and change times) is not read again: a runner
/// asks for a job's plugins at every window, and pays the hash and `dlopen` once.
///
/// The file is opened once ([`LibraryFile::open`]) and hashed from the open descriptor; with
/// `sha256` (64 hex digits) a mismatch is refused before the dynamic loader runs any of its code.
/// The loader is then given that descriptor (`/proc/self/fd/N` on Linux, `/dev/fd/N` on other
/// Unix systems), not the path: what runs is what was hashed. (On other systems the path is
/// opened again.) It checks the entry symbol `flightline_plugin_init` and asks for each ABI
/// version this host speaks, newest first.
///
/// Libraries are never unloaded (no `dlclose`): a Rust cdylib registers thread-local destructors
/// that crash the process when they run after its code is unmapped, and an instance or a batch
/// the plugin still holds would dangle. ADBC's driver manager never unloads drivers either. The
/// cost is the mapping (and one file descriptor) staying until exit.
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
    let pin = sha256.map(normalise_pin).transpose().map_err(fail)?;
    let (file, identity) = open_regular(path)?;
    let check = |actual: &str| match &pin {
        Some(pin) if pin != actual => Err(fail(PluginErrorKind::HashMismatch {
            expected: pin.clone(),
            actual: actual.to_string(),
        })),
        _ => Ok(()),
    };
    if let Some(loaded) = identity.and_then(Identity::loaded) {
        check(loaded.sha256())?;
        return Ok(loaded);
    }
    let file = LibraryFile::read(path, file, identity)?;
    check(file.sha256())?;
    file.load()
}

/// Opens `path`, which must be a regular file, and reads its identity.
fn open_regular(path: &Path) -> Result<(std::fs::File, Option<Identity>)> {
    let fail = |kind| Error::Plugin { path: path.to_path_buf(), kind };
    let unreadable = |e: std::io::Error| PluginErrorKind::Unreadable { message: e.to_string() };
    let file = std::fs::File::open(path).map_err(|e| {
        fail(match e.kind() {
            std::io::ErrorKind::NotFound => PluginErrorKind::NotFound,
            _ => unreadable(e),
        })
    })?;
    let metadata = file.metadata().map_err(|e| fail(unreadable(e)))?;
    if !metadata.is_file() {
        return Err(fail(PluginErrorKind::NotALibrary { message: "not a regular file".into() }));
    }
    Ok((file, Identity::of(&metadata)))
}

/// Loads `path` (see [`load`]) for `flightline plugins inspect --abi`: name, version, kind, ABI
/// versions and SHA-256, via [`Plugin`]'s `Display`. This runs the library's code; for the size
/// and hash alone, use [`LibraryFile::open`].
pub fn inspect(path: impl AsRef<Path>) -> Result<Arc<Plugin>> {
    load(path, None)
}

/// The SHA-256 of a file, lowercase hex. Reads the file; runs none of it.
pub fn sha256_file(path: impl AsRef<Path>) -> Result<String> {
    LibraryFile::open(path).map(|file| file.sha256)
}

/// The size and SHA-256 of what `file` reads from its start.
fn hash(file: &mut std::fs::File) -> std::io::Result<(u64, String)> {
    #[cfg(test)]
    tests::HASHES.with(|n| n.set(n.get() + 1));
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        size += read as u64;
        hasher.update(&buffer[..read]);
    }
    Ok((size, hex::encode(hasher.finalize())))
}

fn normalise_pin(pin: &str) -> Result<String, PluginErrorKind> {
    let pin = pin.trim().to_ascii_lowercase();
    if pin.len() == 64 && pin.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(pin)
    } else {
        Err(PluginErrorKind::BadPin { pin })
    }
}

/// `dlopen` of the open file, the entry symbol, the version negotiation. The library is leaked
/// on every path, success or not: its initialisers have run, and unloading is what this module
/// never does.
fn open(file: LibraryFile) -> Result<Plugin> {
    let LibraryFile { path, file, sha256, .. } = file;
    let fail = |kind| Error::Plugin { path: path.clone(), kind };
    let loader_path = loader_path(&file, &path);
    // SAFETY: loading a library runs its initialisers; that is what loading a plugin means. The
    // operator chose the file (and may pin its hash).
    let library = unsafe { libloading::Library::new(&loader_path) }
        .map_err(|e| fail(PluginErrorKind::NotALibrary { message: e.to_string() }))?;
    // The loader knows the library by the name `/proc/self/fd/N` and would answer a later
    // `dlopen` of the same name with it: the descriptor stays open, so that N is never reused.
    std::mem::forget(file);
    let library: &'static libloading::Library = Box::leak(Box::new(library));
    // SAFETY: the symbol's type is the header's `FlightlinePluginInitFunc`.
    let init: InitFn = unsafe { library.get::<InitFn>(abi::ENTRY_SYMBOL.as_bytes()) }
        .map(|symbol| *symbol)
        .map_err(|_| fail(PluginErrorKind::MissingSymbol { symbol: abi::ENTRY_SYMBOL.into() }))?;
    let (abi_version, table, abi_versions) = negotiate(init).map_err(fail)?;
    let (name, version, kind) = describe(&table, abi_version).map_err(fail)?;
    Ok(Plugin { path, sha256, abi_version, abi_versions, table, name, version, kind })
}

/// The name under which the dynamic loader opens `file` itself rather than whatever `path`
/// names by now.
#[cfg(unix)]
fn loader_path(file: &std::fs::File, _path: &Path) -> PathBuf {
    use std::os::fd::AsRawFd;
    let dir = if cfg!(target_os = "linux") { "/proc/self/fd" } else { "/dev/fd" };
    PathBuf::from(format!("{dir}/{}", file.as_raw_fd()))
}

/// Without descriptor paths, the loader opens the path again (checked, then used).
#[cfg(not(unix))]
fn loader_path(_file: &std::fs::File, path: &Path) -> PathBuf {
    path.to_path_buf()
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
    unsafe { cstr::read_lossy(ptr) }
}

#[cfg(test)]
mod tests {
    use super::*;

    thread_local! {
        /// Files this thread hashed: a test's loads run on its own thread.
        pub(super) static HASHES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

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

    /// Builds `core/tests/support/named_plugin.c` as `dir/lib<name>.so`, a plugin named `name`
    /// whose constructor appends its name to `marker`, when given.
    #[cfg(unix)]
    fn named_plugin(dir: &Path, name: &str, marker: Option<&Path>) -> PathBuf {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let out = dir.join(format!("lib{name}.so"));
        let status = std::process::Command::new("cc")
            .args(["-shared", "-fPIC", "-O1", "-Wall", "-Werror", "-I"])
            .arg(root.join("../plugins/include"))
            .arg(format!("-DPLUGIN_NAME=\"{name}\""))
            .args(marker.map(|m| format!("-DMARKER_PATH=\"{}\"", m.display())))
            .arg("-o")
            .arg(&out)
            .arg(root.join("tests/support/named_plugin.c"))
            .status()
            .unwrap();
        assert!(status.success(), "cc failed");
        out
    }

    #[cfg(unix)]
    #[test]
    fn a_library_swapped_between_hash_and_load_is_not_what_runs() {
        let dir = tempfile::tempdir().unwrap();
        let pinned = named_plugin(dir.path(), "swap_pinned", None);
        let other = named_plugin(dir.path(), "swap_other", None);
        // The configured path is a symlink, as a deployment's `current` link would be.
        let path = dir.path().join("libplugin.so");
        std::os::unix::fs::symlink(&pinned, &path).unwrap();
        let pin = sha256_file(&pinned).unwrap();
        let file = LibraryFile::open(&path).unwrap();
        assert_eq!(file.sha256(), pin);
        // Between the hash and the dynamic loader, the link is re-pointed (atomically, by a
        // rename over it): a loader that opens the path again would run `swap_other`.
        let plugin = file
            .load_checked(|| {
                let replaced = dir.path().join("libplugin.so.new");
                std::os::unix::fs::symlink(&other, &replaced).unwrap();
                std::fs::rename(&replaced, &path).unwrap();
            })
            .unwrap();
        assert_eq!((plugin.name(), plugin.sha256()), ("swap_pinned", pin.as_str()));
        // What the path holds now is refused under the pin, and loads as itself without it.
        assert!(matches!(
            load(&path, Some(&pin)),
            Err(Error::Plugin { kind: PluginErrorKind::HashMismatch { .. }, .. })
        ));
        assert_eq!(load(&path, None).unwrap().name(), "swap_other");
    }

    #[cfg(unix)]
    #[test]
    fn opening_and_hashing_runs_none_of_the_library() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("marker");
        let path = named_plugin(dir.path(), "hash_only", Some(&marker));
        let file = LibraryFile::open(&path).unwrap();
        assert_eq!(file.size(), std::fs::metadata(&path).unwrap().len());
        assert!(file.to_string().contains(file.sha256()), "{file}");
        assert!(!marker.exists(), "hashing ran the library's constructor");
        file.load().unwrap();
        assert_eq!(std::fs::read_to_string(&marker).unwrap(), "hash_only\n");
    }

    #[cfg(unix)]
    #[test]
    fn an_unchanged_file_is_hashed_once_and_a_rewritten_one_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = named_plugin(dir.path(), "hash_once", None);
        let first = load(&path, None).unwrap();
        let hashed = HASHES.with(|n| n.get());
        let again = load(&path, Some(first.sha256())).unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        assert_eq!(HASHES.with(|n| n.get()), hashed, "an unchanged file was read again");
        // A wrong pin is still refused without reading the file: its hash is known.
        assert!(matches!(
            load(&path, Some(&"0".repeat(64))),
            Err(Error::Plugin { kind: PluginErrorKind::HashMismatch { .. }, .. })
        ));
        // Another library deployed on the same path (renamed over it, as installs do; a write
        // in place would change the pages of the library already mapped): read, hashed, loaded.
        let other = named_plugin(dir.path(), "hash_twice", None);
        std::fs::rename(&other, &path).unwrap();
        let rewritten = load(&path, None).unwrap();
        assert_eq!(HASHES.with(|n| n.get()), hashed + 1);
        assert_eq!(rewritten.name(), "hash_twice");
        assert_ne!(rewritten.sha256(), first.sha256());
    }
}
