//! The compiled-code cache: components compiled once, kept as native code.
//!
//! Loading a cached entry runs its machine code without checks, so the cache
//! is only as trustworthy as the directory: it must be a real directory
//! owned by this user and writable by nobody else, and every entry must be a
//! regular file owned by this user and writable by nobody else. New
//! directories are made 0700 and entries 0600. An entry is read once into
//! memory and deserialized from those bytes (no second look at the file).

use std::io::Write;
use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

use crate::HostError;
use crate::rule_file::{ReadError, read_regular};

/// Largest cache entry read back (compiled rules are a few MiB).
const MAX_ENTRY_BYTES: u64 = 512 << 20;

/// A checked cache directory.
#[derive(Clone, Debug)]
pub(crate) struct Cache {
    dir: PathBuf,
}

impl Cache {
    /// Creates the directory (0700) if missing and checks it is private.
    pub(crate) fn open(dir: &Path) -> Result<Cache, HostError> {
        let refuse = |why: String| {
            HostError::Engine(format!(
                "the compiled-code cache {} {why}; anyone who can write it can run code as you. Fix it (`chmod 700 {0}`, or remove it) or run with --no-cache",
                dir.display()
            ))
        };
        if let Some(parent) = dir.parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent).map_err(|e| {
                HostError::Engine(format!(
                    "cannot create the cache directory's parent {}: {e}",
                    parent.display()
                ))
            })?;
        }
        let mut builder = std::fs::DirBuilder::new();
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        match builder.create(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(HostError::Engine(format!(
                    "cannot create the cache directory {}: {e}",
                    dir.display()
                )));
            }
        }
        let metadata = std::fs::symlink_metadata(dir).map_err(|e| {
            HostError::Engine(format!("cannot examine cache {}: {e}", dir.display()))
        })?;
        if !metadata.is_dir() {
            return Err(refuse("is not a directory (a symbolic link?)".into()));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::{MetadataExt, PermissionsExt};
            let me = rustix::process::geteuid().as_raw();
            if metadata.uid() != me {
                return Err(refuse(format!(
                    "is owned by user {}, not by you ({me})",
                    metadata.uid()
                )));
            }
            let mode = metadata.mode() & 0o777;
            if mode & 0o022 != 0 {
                return Err(refuse(format!(
                    "is writable by others (mode {mode:o}) and its entries cannot be trusted"
                )));
            }
            if mode & 0o077 != 0 {
                // Readable by others only (an older trailguard made it with
                // the umask): nothing in it can have been changed by them.
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(
                    |e| HostError::Engine(format!("cannot make {} private: {e}", dir.display())),
                )?;
            }
        }
        Ok(Cache {
            dir: dir.to_owned(),
        })
    }

    /// The entry for a component with this source digest and engine.
    fn entry(&self, sha256: &str, engine: &Engine) -> PathBuf {
        use std::hash::{DefaultHasher, Hash, Hasher};
        let mut compat = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut compat);
        self.dir
            .join(format!("{sha256}-{:016x}.cwasm", compat.finish()))
    }

    /// The cached compilation of the source with digest `sha256`, if there
    /// is a trustworthy one.
    pub(crate) fn load(&self, sha256: &str, engine: &Engine) -> Option<Component> {
        let path = self.entry(sha256, engine);
        let bytes = match read_private(&path) {
            Ok(bytes) => bytes,
            Err(_) => return None,
        };
        // SAFETY: `bytes` were read, in one read, from a regular file owned by
        // this user and writable by no one else, in a directory with the
        // same property (checked in `Cache::open` and `read_private`); only
        // `store` writes such files, with `Component::serialize` output for
        // the engine compatibility hash in the name. wasmtime still checks
        // the header and the compatibility of what it loads.
        #[allow(unsafe_code)]
        let loaded = unsafe { Component::deserialize(engine, &bytes) };
        loaded.ok()
    }

    /// Stores a compilation; failing to is not an error (the cache is an
    /// optimization).
    pub(crate) fn store(&self, sha256: &str, engine: &Engine, component: &Component) {
        let Ok(serialized) = component.serialize() else {
            return;
        };
        let path = self.entry(sha256, engine);
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let written = options
            .open(&tmp)
            .and_then(|mut file| file.write_all(&serialized));
        if written.is_ok() {
            let _ = std::fs::rename(&tmp, &path);
        } else {
            let _ = std::fs::remove_file(&tmp);
        }
    }
}

/// Reads a cache entry if it is a regular file owned by this user and
/// writable by no one else.
fn read_private(path: &Path) -> Result<Vec<u8>, ReadError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let metadata = std::fs::symlink_metadata(path).map_err(ReadError::Io)?;
        if !metadata.is_file()
            || metadata.uid() != rustix::process::geteuid().as_raw()
            || metadata.mode() & 0o022 != 0
        {
            return Err(ReadError::Refused("not a private regular file".into()));
        }
    }
    read_regular(path, MAX_ENTRY_BYTES)
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).expect("stat").permissions().mode() & 0o777
    }

    #[test]
    fn a_new_cache_is_private_and_an_open_one_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = dir.path().join("a/cache");
        Cache::open(&cache).expect("created");
        assert_eq!(mode(&cache), 0o700);

        // Made by an older version under umask 022: tightened.
        let readable = dir.path().join("readable");
        std::fs::create_dir(&readable).expect("mkdir");
        std::fs::set_permissions(&readable, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        Cache::open(&readable).expect("tightened");
        assert_eq!(mode(&readable), 0o700);

        // Group-writable (umask 002): its entries may have been swapped.
        let shared = dir.path().join("shared");
        std::fs::create_dir(&shared).expect("mkdir");
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o775)).expect("chmod");
        let e = Cache::open(&shared).expect_err("refused");
        assert!(e.to_string().contains("writable by others"), "{e}");

        // A symbolic link to a directory someone else controls.
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&cache, &link).expect("symlink");
        let e = Cache::open(&link).expect_err("refused");
        assert!(e.to_string().contains("not a directory"), "{e}");
    }

    #[test]
    fn an_entry_writable_by_others_is_not_loaded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let entry = dir.path().join("x.cwasm");
        std::fs::write(&entry, b"not code").expect("write");
        std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        assert!(read_private(&entry).is_ok());
        std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(0o664)).expect("chmod");
        assert!(read_private(&entry).is_err());
    }
}
