//! The precompiled-component cache: compile a `.wasm` once, then load it in microseconds.
//!
//! Entries are keyed by the SHA-256 of the component's bytes and by the engine's
//! compatibility hash (wasmtime version, target, compiler flags, tunables), so a changed
//! component or a changed configuration never loads stale machine code. Entries are written to
//! a temporary file and renamed, so readers never see half an entry.
//!
//! Loading an entry runs native code that wasmtime wrote. Whoever can write the cache
//! directory can therefore run code as this process: keep it private to the user (it is
//! created with mode 0700).

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;

/// Whether a load used the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Loaded precompiled code from disk.
    Hit,
    /// Compiled, then stored for next time.
    Miss,
    /// Compiled; caching is off or storing failed (logged).
    Disabled,
}

/// A directory of precompiled components.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

/// Feeds `Hash` output into SHA-256, so the key is stable across processes (std's
/// `DefaultHasher` makes no such promise).
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn finish(&self) -> u64 {
        let digest = self.0.clone().finalize();
        u64::from_le_bytes([
            digest[0], digest[1], digest[2], digest[3], digest[4], digest[5], digest[6], digest[7],
        ])
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

impl Cache {
    /// A cache in `dir`, created on first store.
    pub fn new(dir: impl Into<PathBuf>) -> Cache {
        Cache { dir: dir.into() }
    }

    /// The default location: `$TESSERACT_WASM_CACHE_DIR`, else `$XDG_CACHE_HOME/tesseract-wasm`,
    /// else `~/.cache/tesseract-wasm`. `None` when none can be determined.
    pub fn default_dir() -> Option<PathBuf> {
        if let Some(dir) = std::env::var_os("TESSERACT_WASM_CACHE_DIR") {
            return Some(dir.into());
        }
        if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
            return Some(PathBuf::from(dir).join("tesseract-wasm"));
        }
        std::env::var_os("HOME")
            .map(|home| PathBuf::from(home).join(".cache").join("tesseract-wasm"))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file an entry for `wasm` lives in.
    pub fn entry_path(&self, engine: &wasmtime::Engine, wasm: &[u8]) -> PathBuf {
        let mut h = Sha256Hasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut h);
        let config = h.finish();
        let content = hex::encode(Sha256::digest(wasm));
        self.dir.join(format!("{content}-{config:016x}.cwasm"))
    }

    /// Loads `wasm` from the cache, or compiles and stores it.
    ///
    /// # Errors
    /// When compilation fails. Cache I/O problems are logged and fall back to compiling.
    pub fn load(
        &self,
        engine: &wasmtime::Engine,
        wasm: &[u8],
    ) -> wasmtime::Result<(Component, CacheOutcome)> {
        let path = self.entry_path(engine, wasm);
        if path.is_file() {
            // SAFETY: the file was written by `store` below from wasmtime's own output for this
            // engine configuration (the key covers it); see the module docs on who may write here.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(c) => return Ok((c, CacheOutcome::Hit)),
                Err(e) => {
                    tracing::warn!(path = %path.display(), "ignoring unusable cache entry: {e:#}")
                }
            }
        }
        let serialized = engine.precompile_component(wasm)?;
        match self.store(&path, &serialized) {
            Ok(()) => {
                // SAFETY: as above; we just wrote this file.
                let c = unsafe { Component::deserialize_file(engine, &path) }?;
                Ok((c, CacheOutcome::Miss))
            }
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), "cannot write the precompiled cache: {e}");
                // SAFETY: the bytes come straight from `precompile_component` on this engine.
                let c = unsafe { Component::deserialize(engine, &serialized) }?;
                Ok((c, CacheOutcome::Disabled))
            }
        }
    }

    fn store(&self, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        create_private_dir(&self.dir)?;
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir)?;
        tmp.write_all(bytes)?;
        tmp.as_file().sync_all()?;
        tmp.persist(path).map_err(|e| e.error)?;
        Ok(())
    }
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}
