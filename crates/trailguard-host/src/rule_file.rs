//! A rule's bytes, read once.
//!
//! Everything the host decides about a rule file (its signature, its
//! digest, the code it compiles, the cache entry it is stored under) is
//! decided about the same bytes: the file is opened once, must be a regular
//! file, and is read up to a size limit. A FIFO, a device or a directory
//! named `*.wasm` is refused without blocking on it, and a file that grows
//! while it is read is refused rather than read twice.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::HostError;

/// The bytes of one rule file, with their SHA-256.
#[derive(Clone)]
pub struct RuleFile {
    path: PathBuf,
    bytes: Vec<u8>,
    sha256: String,
}

impl std::fmt::Debug for RuleFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuleFile")
            .field("path", &self.path)
            .field("len", &self.bytes.len())
            .field("sha256", &self.sha256)
            .finish()
    }
}

impl RuleFile {
    /// Reads `path` once: a regular file of at most `max_bytes`.
    pub fn read(path: &Path, max_bytes: u64) -> Result<RuleFile, HostError> {
        let bytes = read_regular(path, max_bytes).map_err(|e| match e {
            ReadError::Io(source) => HostError::Read {
                path: path.to_owned(),
                source,
            },
            ReadError::Refused(reason) => HostError::Refused {
                path: path.to_owned(),
                reason,
            },
        })?;
        let sha256 = format!("{:x}", Sha256::digest(&bytes));
        Ok(RuleFile {
            path: path.to_owned(),
            bytes,
            sha256,
        })
    }

    /// The file the bytes were read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The bytes as read.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// SHA-256 of the bytes, lower-case hex.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }
}

/// Why a file could not be read.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The operating system said no.
    Io(std::io::Error),
    /// The file is not one the host reads (its kind or its size).
    Refused(String),
}

/// Opens without blocking (a FIFO would block until a writer comes), checks
/// on the open handle that it is a regular file, and reads at most
/// `max_bytes`.
pub(crate) fn read_regular(path: &Path, max_bytes: u64) -> Result<Vec<u8>, ReadError> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32);
    }
    let file = options.open(path).map_err(ReadError::Io)?;
    let metadata = file.metadata().map_err(ReadError::Io)?;
    if !metadata.is_file() {
        return Err(ReadError::Refused(format!(
            "it is not a regular file (a {}); rules are read from regular files only",
            kind(&metadata)
        )));
    }
    if metadata.len() > max_bytes {
        return Err(ReadError::Refused(too_large(metadata.len(), max_bytes)));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(metadata.len()).unwrap_or(0));
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    if bytes.len() as u64 > max_bytes {
        return Err(ReadError::Refused(format!(
            "it grew while being read: {}",
            too_large(bytes.len() as u64, max_bytes)
        )));
    }
    Ok(bytes)
}

fn too_large(size: u64, max: u64) -> String {
    format!("it is {size} bytes or more, over the limit of {max} bytes")
}

fn kind(metadata: &std::fs::Metadata) -> &'static str {
    let ty = metadata.file_type();
    if ty.is_dir() {
        return "directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ty.is_fifo() {
            return "FIFO";
        }
        if ty.is_socket() {
            return "socket";
        }
        if ty.is_char_device() || ty.is_block_device() {
            return "device";
        }
    }
    "special file"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_regular_file_once_with_its_digest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("r.wasm");
        std::fs::write(&path, b"abc").expect("write");
        let file = RuleFile::read(&path, 3).expect("read");
        assert_eq!(file.bytes(), b"abc");
        assert_eq!(
            file.sha256(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn refuses_oversized_files_directories_and_fifos_without_blocking() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("big.wasm");
        std::fs::write(&path, b"abcd").expect("write");
        let e = RuleFile::read(&path, 3).expect_err("too large");
        assert!(e.to_string().contains("over the limit of 3 bytes"), "{e}");

        let sub = dir.path().join("dir.wasm");
        std::fs::create_dir(&sub).expect("mkdir");
        let e = RuleFile::read(&sub, 3).expect_err("a directory");
        assert!(e.to_string().contains("not a regular file"), "{e}");

        #[cfg(unix)]
        {
            let fifo = dir.path().join("fifo.wasm");
            rustix::fs::mkfifoat(rustix::fs::CWD, &fifo, rustix::fs::Mode::from(0o600))
                .expect("mkfifo");
            // No writer: a blocking open would hang here.
            let e = RuleFile::read(&fifo, 1 << 20).expect_err("a FIFO");
            assert!(e.to_string().contains("a FIFO"), "{e}");
            // Another spelling: a rule name linking to a device that never
            // ends.
            let device = dir.path().join("zero.wasm");
            std::os::unix::fs::symlink("/dev/zero", &device).expect("symlink");
            let e = RuleFile::read(&device, 1 << 20).expect_err("a device");
            assert!(e.to_string().contains("a device"), "{e}");
        }
    }
}
