//! A state directory of durable checkpoints.
//!
//! Each checkpoint is one file, `checkpoint-NNNNNNNNNN.bin`: a magic line
//! naming the format of the payload (`TRAILGUARD-CHECKPOINT-2`), the
//! SHA-256 of the payload, and the payload. It is written to a temporary
//! file, synced, renamed into place and the directory synced, so a crash
//! leaves either the old or the new file, never half of one. The two newest
//! are kept: if the newest is corrupt (checksum), the previous one is used,
//! with a warning.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The format of the checkpoints this build writes. Format 1 was written
/// before checkpoints named their format; its payload has format 2's
/// layout. A reader that meets a newer format refuses it by name.
pub const STATE_FORMAT: u32 = 2;

/// The magic line starts with this, then the format, then a newline.
const MAGIC_PREFIX: &[u8] = b"TRAILGUARD-CHECKPOINT-";

/// The magic line of `format`.
fn magic(format: u32) -> Vec<u8> {
    let mut line = MAGIC_PREFIX.to_vec();
    line.extend_from_slice(format!("{format}\n").as_bytes());
    line
}

/// The format and payload of a checkpoint file's bytes, if its magic line
/// and checksum hold. Total: any bytes give an answer, never a panic.
pub fn payload(bytes: &[u8]) -> Option<(u32, &[u8])> {
    let rest = bytes.strip_prefix(MAGIC_PREFIX)?;
    let newline = rest.iter().take(11).position(|&b| b == b'\n')?;
    let digits = &rest[..newline];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let format: u32 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    let (sum, payload) = rest[newline + 1..].split_at_checked(32)?;
    (Sha256::digest(payload).as_slice() == sum).then_some((format, payload))
}

/// A checkpoint read back: the format it was written in, and its payload.
#[derive(Debug, PartialEq, Eq)]
pub struct Saved {
    /// [`STATE_FORMAT`] of the build that wrote it.
    pub format: u32,
    /// What was saved.
    pub payload: Vec<u8>,
}

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

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
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
    /// ones that do not. `None` if there is none. The caller decides on
    /// its format (a newer one than [`STATE_FORMAT`] is refused by name).
    pub fn load(&self) -> std::io::Result<(Option<Saved>, Vec<String>)> {
        let mut warnings = Vec::new();
        for (_, path) in Self::checkpoints(&self.dir)? {
            let bytes = std::fs::read(&path)?;
            match payload(&bytes) {
                Some((format, payload)) => {
                    let saved = Saved {
                        format,
                        payload: payload.to_vec(),
                    };
                    return Ok((Some(saved), warnings));
                }
                None => warnings.push(format!(
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
            file.write_all(&magic(STATE_FORMAT))?;
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
    use crate::{Engine, EngineOptions, EngineState, Runtime, RuntimeOptions};

    /// A tiny deterministic generator (xorshift), so the mutations are the
    /// same on every run.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    #[test]
    fn hostile_checkpoint_bytes_never_panic_the_decoders() {
        let runtime = Runtime::new(RuntimeOptions::default()).expect("runtime");
        let mut engine = Engine::new(&runtime, &[], EngineOptions::default()).expect("engine");
        let mut stats = Default::default();
        let record = r#"{"Records":[{"eventVersion":"1.08","eventTime":"2026-04-22T10:00:00Z","eventSource":"sts.amazonaws.com","eventName":"GetCallerIdentity","awsRegion":"us-east-1","sourceIPAddress":"3.80.17.4","eventID":"e1","userIdentity":{"type":"AssumedRole","arn":"arn:aws:sts::123456789012:assumed-role/ci/x","accountId":"123456789012","sessionContext":{"sessionIssuer":{"userName":"ci"}}}}]}"#;
        engine.push_cloudtrail("d.json", record.as_bytes(), &mut stats);
        let (_, state) = engine.checkpoint();
        let good = postcard::to_allocvec(&state).expect("encode");
        assert!(postcard::from_bytes::<EngineState>(&good).is_ok());
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut decoded = 0;
        for round in 0..3_000 {
            let mut bytes = good.clone();
            match round % 4 {
                0 => bytes.truncate(rng.below(good.len())),
                1 => {
                    for _ in 0..=rng.below(4) {
                        let at = rng.below(bytes.len());
                        bytes[at] = rng.next() as u8;
                    }
                }
                2 => {
                    // Lengths and counts blown up: varints of huge values.
                    let at = rng.below(bytes.len());
                    bytes.splice(at..at, [0xff, 0xff, 0xff, 0xff, 0x0f]);
                }
                _ => bytes = (0..rng.below(256)).map(|_| rng.next() as u8).collect(),
            }
            // The file layer: any bytes, framed or not.
            let mut file = magic(STATE_FORMAT);
            file.extend_from_slice(&Sha256::digest(&bytes));
            file.extend_from_slice(&bytes);
            assert_eq!(payload(&file), Some((STATE_FORMAT, &bytes[..])));
            let _ = payload(&bytes);
            // The state itself: decoded, then loaded, must not panic.
            if let Ok(state) = postcard::from_bytes::<EngineState>(&bytes) {
                decoded += 1;
                let mut fresh =
                    Engine::new(&runtime, &[], EngineOptions::default()).expect("engine");
                let _ = fresh.load_state(state);
            }
        }
        assert!(
            decoded > 0,
            "some mutations still decode: the loader is exercised"
        );
    }

    #[test]
    fn a_state_of_another_shard_count_is_refused_as_a_state() {
        let runtime = Runtime::new(RuntimeOptions::default()).expect("runtime");
        let two = EngineOptions {
            shards: 2,
            ..EngineOptions::default()
        };
        let (_, state) = Engine::new(&runtime, &[], two)
            .expect("engine")
            .checkpoint();
        let mut one = Engine::new(&runtime, &[], EngineOptions::default()).expect("engine");
        let error = one.load_state(state).expect_err("another shard count");
        assert_eq!(
            error.to_string(),
            "cannot resume from the saved state: it has 2 shard(s) but this engine runs 1: resume with the same number"
        );
    }

    #[test]
    fn newest_good_checkpoint_wins_and_corruption_falls_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut state = StateDir::open(dir.path()).expect("open");
        assert_eq!(state.load().expect("load"), (None, vec![]));
        let saved = |payload: &[u8]| Saved {
            format: STATE_FORMAT,
            payload: payload.to_vec(),
        };
        state.save(b"one").expect("save");
        state.save(b"two").expect("save");
        let third = state.save(b"three").expect("save");
        assert_eq!(
            StateDir::checkpoints(dir.path()).expect("list").len(),
            2,
            "two are kept"
        );
        assert_eq!(state.load().expect("load").0, Some(saved(b"three")));
        // Corrupt the newest: the previous one is used, with a warning.
        let mut bytes = std::fs::read(&third).expect("read");
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&third, bytes).expect("write");
        let (payload, warnings) = StateDir::open(dir.path())
            .expect("open")
            .load()
            .expect("load");
        assert_eq!(payload, Some(saved(b"two")));
        assert!(warnings[0].contains("corrupt"), "{warnings:?}");
        // A truncated file too.
        std::fs::write(&third, &MAGIC_PREFIX[..5]).expect("write");
        assert_eq!(
            StateDir::open(dir.path())
                .expect("open")
                .load()
                .expect("load")
                .0,
            Some(saved(b"two"))
        );
    }

    #[test]
    fn every_format_is_read_back_with_its_number() {
        for format in [1, STATE_FORMAT, STATE_FORMAT + 1, u32::MAX] {
            let mut file = magic(format);
            file.extend_from_slice(&Sha256::digest(b"state"));
            file.extend_from_slice(b"state");
            assert_eq!(payload(&file), Some((format, &b"state"[..])), "{format}");
        }
        // The format written before formats were named.
        let mut old = b"TRAILGUARD-CHECKPOINT-1\n".to_vec();
        old.extend_from_slice(&Sha256::digest(b"x"));
        old.push(b'x');
        assert_eq!(payload(&old), Some((1, &b"x"[..])));
        // Not a format: no number, a sign, too many digits.
        for line in ["", "-1", "+2", "2a", "99999999999"] {
            let mut file = MAGIC_PREFIX.to_vec();
            file.extend_from_slice(line.as_bytes());
            file.push(b'\n');
            file.extend_from_slice(&Sha256::digest(b"x"));
            file.push(b'x');
            assert_eq!(payload(&file), None, "{line:?}");
        }
    }
}
