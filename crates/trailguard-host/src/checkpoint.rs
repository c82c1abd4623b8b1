//! A state directory of durable checkpoints.
//!
//! Each checkpoint is one file, `checkpoint-NNNNNNNNNN.bin`: a magic line,
//! the SHA-256 of the payload, and the payload. It is written to a temporary
//! file, synced, renamed into place and the directory synced, so a crash
//! leaves either the old or the new file, never half of one. The two newest
//! are kept: if the newest is corrupt (checksum), the previous one is used,
//! with a warning.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

const MAGIC: &[u8] = b"TRAILGUARD-CHECKPOINT-1\n";

/// A directory of checkpoints.
#[derive(Debug)]
pub struct StateDir {
    dir: PathBuf,
    next: u64,
}

fn sequence(path: &Path) -> Option<u64> {
    let name = path.file_name()?.to_str()?;
    name.strip_prefix("checkpoint-")?
        .strip_suffix(".bin")?
        .parse()
        .ok()
}

impl StateDir {
    /// Opens (creating) a state directory.
    pub fn open(dir: &Path) -> std::io::Result<StateDir> {
        std::fs::create_dir_all(dir)?;
        let next = Self::checkpoints(dir)?
            .first()
            .map_or(0, |(seq, _)| seq + 1);
        Ok(StateDir {
            dir: dir.to_owned(),
            next,
        })
    }

    /// Checkpoint files, newest first.
    fn checkpoints(dir: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
        let mut found: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter_map(|p| sequence(&p).map(|s| (s, p)))
            .collect();
        found.sort_by_key(|(seq, _)| std::cmp::Reverse(*seq));
        Ok(found)
    }

    /// The newest checkpoint whose checksum holds, and warnings about newer
    /// ones that do not. `None` if there is none.
    pub fn load(&self) -> std::io::Result<(Option<Vec<u8>>, Vec<String>)> {
        let mut warnings = Vec::new();
        for (_, path) in Self::checkpoints(&self.dir)? {
            let bytes = std::fs::read(&path)?;
            let body = bytes.strip_prefix(MAGIC).filter(|b| b.len() >= 32);
            match body {
                Some(body) if Sha256::digest(&body[32..]).as_slice() == &body[..32] => {
                    return Ok((Some(body[32..].to_vec()), warnings));
                }
                _ => warnings.push(format!(
                    "checkpoint {} is corrupt or partial (checksum mismatch); using the one before it",
                    path.display()
                )),
            }
        }
        Ok((None, warnings))
    }

    /// Writes a checkpoint atomically and durably; keeps the previous one.
    pub fn save(&mut self, payload: &[u8]) -> std::io::Result<PathBuf> {
        use std::io::Write;
        let path = self.dir.join(format!("checkpoint-{:010}.bin", self.next));
        let tmp = self.dir.join(format!(".checkpoint-{:010}.tmp", self.next));
        {
            let mut file = std::fs::File::create(&tmp)?;
            file.write_all(MAGIC)?;
            file.write_all(&Sha256::digest(payload))?;
            file.write_all(payload)?;
            file.sync_all()?;
        }
        std::fs::rename(&tmp, &path)?;
        std::fs::File::open(&self.dir)?.sync_all()?;
        self.next += 1;
        for (_, old) in Self::checkpoints(&self.dir)?.into_iter().skip(2) {
            std::fs::remove_file(old)?;
        }
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_good_checkpoint_wins_and_corruption_falls_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut state = StateDir::open(dir.path()).expect("open");
        assert_eq!(state.load().expect("load"), (None, vec![]));
        state.save(b"one").expect("save");
        state.save(b"two").expect("save");
        let third = state.save(b"three").expect("save");
        assert_eq!(
            StateDir::checkpoints(dir.path()).expect("list").len(),
            2,
            "two are kept"
        );
        assert_eq!(
            state.load().expect("load").0.as_deref(),
            Some(&b"three"[..])
        );
        // Corrupt the newest: the previous one is used, with a warning.
        let mut bytes = std::fs::read(&third).expect("read");
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&third, bytes).expect("write");
        let (payload, warnings) = StateDir::open(dir.path())
            .expect("open")
            .load()
            .expect("load");
        assert_eq!(payload.as_deref(), Some(&b"two"[..]));
        assert!(warnings[0].contains("corrupt"), "{warnings:?}");
        // A truncated file too.
        std::fs::write(&third, &MAGIC[..5]).expect("write");
        assert_eq!(
            StateDir::open(dir.path())
                .expect("open")
                .load()
                .expect("load")
                .0
                .as_deref(),
            Some(&b"two"[..])
        );
    }
}
