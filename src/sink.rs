//! Where a run's alerts go: a file (created afresh, or cut back to a
//! checkpoint's length when resuming) or standard output, in the chosen
//! [`Format`], written on a thread of its own.
//!
//! When most events alert (a Sigma rule matching every call by an assumed
//! role), formatting, writing and freeing the alert documents cost about as
//! much as the rules' work; on the writer thread they run beside the rules
//! instead of between their calls. The queue to the writer is bounded, so a
//! slow destination slows the run down instead of filling memory.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use anyhow::{Context, Result, anyhow, bail};
use trailguard_format::{AlertDocument, Format};

/// Batches of alerts that may wait for the writer (each is one engine
/// flush's alerts).
const QUEUE: usize = 4;

/// The run's side of the alert writer.
pub(crate) struct Sink {
    queue: Option<SyncSender<Message>>,
    writer: Option<JoinHandle<Result<Vec<AlertDocument>>>>,
}

enum Message {
    Alerts(Vec<AlertDocument>),
    /// Flush (and sync a file) and answer with the bytes written so far.
    Flush(SyncSender<u64>),
}

impl Sink {
    /// Standard output, or a file: created afresh, or (resuming) cut back to
    /// `resume_at` bytes, dropping alerts written after the checkpoint. With
    /// `keep`, the alerts are also kept for [`Sink::finish`] to return.
    pub(crate) fn open(
        path: Option<&Path>,
        resume_at: Option<u64>,
        format: Format,
        keep: bool,
    ) -> Result<Sink> {
        let (destination, name) = match path {
            None => (None, "standard output".to_owned()),
            Some(p) => (Some(open_file(p, resume_at)?), p.display().to_string()),
        };
        let writer = Writer {
            name,
            format,
            written: resume_at.unwrap_or(0),
            keep,
            kept: Vec::new(),
            line: Vec::new(),
        };
        let (queue, received) = sync_channel(QUEUE);
        let writer = std::thread::Builder::new()
            .name("trailguard-alerts".into())
            .spawn(move || writer.serve(destination, received))
            .context("cannot start the alert writer thread")?;
        Ok(Sink {
            queue: Some(queue),
            writer: Some(writer),
        })
    }

    /// Hands alerts to the writer. An error is the writer's (a full disk,
    /// a closed pipe), reported by the first call after it happened.
    pub(crate) fn write(&mut self, alerts: Vec<AlertDocument>) -> Result<()> {
        if alerts.is_empty() {
            return Ok(());
        }
        self.send(Message::Alerts(alerts))
    }

    /// Waits until every alert handed over is written and synced; returns
    /// the bytes written so far (what a checkpoint records).
    pub(crate) fn flush(&mut self) -> Result<u64> {
        let (reply, answer) = sync_channel(1);
        self.send(Message::Flush(reply))?;
        match answer.recv() {
            Ok(written) => Ok(written),
            Err(_) => Err(self.stopped()),
        }
    }

    /// Writes out what is left and stops the writer; returns the alerts kept
    /// for the report (none unless opened with `keep`).
    pub(crate) fn finish(mut self) -> Result<Vec<AlertDocument>> {
        self.queue = None;
        match self.writer.take() {
            Some(writer) => writer
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            None => Ok(Vec::new()),
        }
    }

    fn send(&mut self, message: Message) -> Result<()> {
        match &self.queue {
            Some(queue) if queue.send(message).is_ok() => Ok(()),
            _ => Err(self.stopped()),
        }
    }

    /// The writer has stopped (only an error stops it early): its error.
    fn stopped(&mut self) -> anyhow::Error {
        self.queue = None;
        match self.writer.take().map(JoinHandle::join) {
            Some(Ok(Err(e))) => e,
            Some(Err(panic)) => std::panic::resume_unwind(panic),
            _ => anyhow!("the alert writer has stopped"),
        }
    }
}

impl Drop for Sink {
    /// Alerts handed over are written even when the run stops on an error.
    fn drop(&mut self) {
        self.queue = None;
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

fn open_file(p: &Path, resume_at: Option<u64>) -> Result<File> {
    match resume_at {
        None => {
            crate::run::ensure_parent(p)?;
            File::create(p).with_context(|| format!("cannot create {}", p.display()))
        }
        Some(len) => {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .open(p)
                .with_context(|| format!("cannot reopen {} to resume", p.display()))?;
            let have = file.metadata()?.len();
            if have < len {
                bail!(
                    "{} has {have} bytes but the checkpoint wrote {len}: it was changed; remove the state directory to start over",
                    p.display()
                );
            }
            file.set_len(len)?;
            std::io::Seek::seek(&mut file, std::io::SeekFrom::End(0))?;
            Ok(file)
        }
    }
}

/// The writer thread's side.
struct Writer {
    name: String,
    format: Format,
    /// Bytes written so far (for checkpoints).
    written: u64,
    keep: bool,
    kept: Vec<AlertDocument>,
    line: Vec<u8>,
}

impl Writer {
    /// Writes what arrives until the run lets go of the queue, then flushes.
    fn serve(
        mut self,
        file: Option<File>,
        received: Receiver<Message>,
    ) -> Result<Vec<AlertDocument>> {
        let out: Box<dyn Write> = match &file {
            Some(f) => Box::new(f.try_clone()?),
            None => Box::new(std::io::stdout().lock()),
        };
        let mut out = BufWriter::new(out);
        for message in received {
            match message {
                Message::Alerts(alerts) => self.write(&mut out, alerts)?,
                Message::Flush(reply) => {
                    self.flush(&mut out, file.as_ref())?;
                    // The run may have stopped waiting (it is failing).
                    let _ = reply.send(self.written);
                }
            }
        }
        self.flush(&mut out, file.as_ref())?;
        Ok(self.kept)
    }

    fn write(&mut self, out: &mut impl Write, alerts: Vec<AlertDocument>) -> Result<()> {
        for alert in alerts {
            self.line.clear();
            self.format.write(&alert, &mut self.line);
            out.write_all(&self.line)
                .with_context(|| format!("cannot write alerts to {}", self.name))?;
            self.written += self.line.len() as u64;
            if self.keep {
                self.kept.push(alert);
            }
        }
        Ok(())
    }

    fn flush(&mut self, out: &mut impl Write, file: Option<&File>) -> Result<()> {
        out.flush()
            .with_context(|| format!("cannot write alerts to {}", self.name))?;
        // A device or a pipe (`-o /dev/null`) has nothing to sync.
        if let Some(file) = file
            && file.metadata().is_ok_and(|m| m.is_file())
        {
            file.sync_data()
                .with_context(|| format!("cannot sync {}", self.name))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn alert(n: u64) -> AlertDocument {
        match json!({"kibana.alert.rule.rule_id": "r", "kibana.alert.uuid": n.to_string(), "n": n})
        {
            Value::Object(doc) => doc.into(),
            _ => unreachable!("an object literal"),
        }
    }

    fn lines(path: &Path) -> Vec<u64> {
        std::fs::read_to_string(path)
            .expect("alerts file")
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).expect("JSON")["n"]
                    .as_u64()
                    .expect("n")
            })
            .collect()
    }

    #[test]
    fn alerts_arrive_in_order_and_flush_counts_their_bytes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out/alerts.ndjson");
        let mut sink = Sink::open(Some(&path), None, Format::Ecs, true).expect("open");
        for batch in 0..50u64 {
            sink.write((batch * 10..batch * 10 + 10).map(alert).collect())
                .expect("write");
        }
        let written = sink.flush().expect("flush");
        assert_eq!(written, std::fs::metadata(&path).expect("file").len());
        assert_eq!(lines(&path), (0..500).collect::<Vec<_>>());
        let kept = sink.finish().expect("finish");
        assert_eq!(kept.len(), 500);
    }

    #[test]
    fn a_resumed_sink_cuts_the_file_back_to_the_checkpoint_and_appends() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("alerts.ndjson");
        let mut sink = Sink::open(Some(&path), None, Format::Ecs, false).expect("open");
        sink.write(vec![alert(1), alert(2)]).expect("write");
        let at = sink.flush().expect("flush");
        // Written after the checkpoint, then lost with the process.
        sink.write(vec![alert(3)]).expect("write");
        assert!(sink.finish().expect("finish").is_empty());
        let mut sink = Sink::open(Some(&path), Some(at), Format::Ecs, false).expect("reopen");
        sink.write(vec![alert(4)]).expect("write");
        let written = sink.flush().expect("flush");
        drop(sink);
        assert_eq!(lines(&path), vec![1, 2, 4]);
        assert_eq!(written, std::fs::metadata(&path).expect("file").len());
    }

    #[test]
    fn a_resume_past_the_files_end_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("alerts.ndjson");
        std::fs::write(&path, "{}\n").expect("write");
        let err = Sink::open(Some(&path), Some(100), Format::Ecs, false)
            .err()
            .expect("refused");
        assert!(
            err.to_string().contains("the checkpoint wrote 100"),
            "{err}"
        );
    }

    #[test]
    fn a_failing_destination_is_reported_by_name_and_stops_the_writer() {
        let full = Path::new("/dev/full");
        if !full.exists() {
            return;
        }
        let mut sink = Sink::open(Some(full), None, Format::Ecs, false).expect("open");
        // Enough to overflow the writer's buffer, then the error comes back
        // from a later call, whichever it is.
        let mut result = Ok(());
        for batch in 0..1_000u64 {
            result = sink.write((batch * 100..batch * 100 + 100).map(alert).collect());
            if result.is_err() {
                break;
            }
        }
        let err = match result {
            Err(e) => e,
            Ok(()) => sink.flush().expect_err("a full device"),
        };
        assert!(
            format!("{err:#}").contains("cannot write alerts to /dev/full"),
            "{err:#}"
        );
        // Stopped: later calls fail too, without hanging.
        assert!(sink.write(vec![alert(1)]).is_err());
        assert!(sink.flush().is_err());
    }
}
