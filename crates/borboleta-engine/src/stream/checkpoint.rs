//! The streaming checkpoint: Spark's offsets/commits protocol in a folder.
//!
//! ```text
//! <root>/<entity>/<feature set>/
//!   metadata.json   fingerprints of the readers and of the spec
//!   lock            held (flock) by the running process
//!   offsets/<N>     epoch N's exact input range per reader, written before N runs
//!   commits/<N>     written after every writer committed N
//!   compact/<N>     every reader's position after epoch N (older epoch files are pruned)
//! ```
//!
//! On restart, an epoch with `offsets/N` and no `commits/N` is replayed over exactly its recorded
//! range. Every file is written to a temporary name, fsynced and renamed; the folder is fsynced.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};

/// Epoch files kept after pruning.
pub const KEEP_EPOCHS: u64 = 20;

/// What identifies a checkpoint's pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// Hash of the readers' identity (id, type, path, format): a change needs a reset.
    pub readers: String,
    /// Hash of the whole spec: a change with the same readers continues.
    pub spec: String,
    /// Reader ids, for messages.
    pub reader_ids: Vec<String>,
}

/// `offsets/N`: the planned input of epoch N.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OffsetsRecord {
    /// The epoch.
    pub epoch: u64,
    /// When it was planned (RFC 3339, UTC).
    pub planned_at: String,
    /// Per streaming reader id: its range (reader-specific JSON).
    pub ranges: BTreeMap<String, Value>,
}

/// `compact/N`: every reader's position after epoch N.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompactRecord {
    /// The epoch.
    pub epoch: u64,
    /// Per streaming reader id: its position (reader-specific JSON).
    pub positions: BTreeMap<String, Value>,
}

/// `commits/N`: epoch N and every earlier epoch are committed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommitRecord {
    /// The epoch.
    pub epoch: u64,
    /// When it was committed (RFC 3339, UTC).
    pub committed_at: String,
    /// Feature rows written by the epochs this record commits.
    pub rows: u64,
}

/// What a checkpoint holds.
#[derive(Debug, Clone, Default)]
pub struct CheckpointState {
    /// The newest compacted positions.
    pub compact: Option<CompactRecord>,
    /// Epochs newer than the compaction, in order: the planned range and the commit, if any.
    pub epochs: Vec<(OffsetsRecord, Option<CommitRecord>)>,
}

impl CheckpointState {
    /// The last committed epoch.
    pub fn last_committed(&self) -> Option<u64> {
        self.epochs
            .iter()
            .rev()
            .find_map(|(o, c)| c.as_ref().map(|_| o.epoch))
            .or(self.compact.as_ref().map(|c| c.epoch))
    }
    /// The epochs to replay, in order: planned and not committed (several when a writer
    /// gathers epochs before it commits them).
    pub fn pending(&self) -> Vec<OffsetsRecord> {
        let committed = self.last_committed();
        self.epochs
            .iter()
            .filter(|(o, c)| c.is_none() && committed.is_none_or(|l| o.epoch > l))
            .map(|(o, _)| o.clone())
            .collect()
    }
    /// The next epoch number.
    pub fn next_epoch(&self) -> u64 {
        self.epochs
            .last()
            .map(|(o, _)| o.epoch + 1)
            .or(self.compact.as_ref().map(|c| c.epoch + 1))
            .unwrap_or(0)
    }
}

fn io(path: &Path, e: impl Into<crate::error::BoxError>) -> Error {
    Error::external_caused("checkpoint", false, path.display(), e)
}

/// Writes `bytes` to `path` durably: temporary file, fsync, rename, fsync of the folder.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().ok_or_else(|| Error::Internal("checkpoint path".into()))?;
    fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    {
        let mut f = File::create(&tmp).map_err(|e| io(&tmp, e))?;
        f.write_all(bytes).map_err(|e| io(&tmp, e))?;
        f.sync_all().map_err(|e| io(&tmp, e))?;
    }
    fs::rename(&tmp, path).map_err(|e| io(path, e))?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| io(dir, e))?;
    Ok(())
}

/// A checkpoint folder, read-only (for `checkpoint show`) or locked for a running pipeline.
#[derive(Debug)]
pub struct Checkpoint {
    dir: PathBuf,
    _lock: Option<File>,
}

impl Checkpoint {
    /// Opens the checkpoint for a running pipeline: takes the lock, checks the fingerprint (a
    /// change of readers is a spec error; a change elsewhere continues) and records it.
    pub fn open(dir: &Path, fingerprint: &Fingerprint) -> Result<Self> {
        let ck = Self::lock(dir)?;
        let meta_path = dir.join("metadata.json");
        if meta_path.exists() {
            let old: Fingerprint = read_json(&meta_path)?;
            if old.readers != fingerprint.readers {
                return Err(Error::spec(
                    "readers",
                    format!(
                        "the checkpoint {} was made for other readers ({}; now {}): a checkpoint's \
                         positions only mean something for the readers that made it. Reset it with \
                         `borboleta checkpoint reset <spec> --to-earliest`, or use another checkpoint_path",
                        dir.display(),
                        old.reader_ids.join(", "),
                        fingerprint.reader_ids.join(", ")
                    ),
                ));
            }
            if old.spec != fingerprint.spec {
                tracing::info!(checkpoint = %dir.display(), "the spec changed since the checkpoint (same readers): continuing");
            }
        }
        ck.set_fingerprint(fingerprint)?;
        Ok(ck)
    }

    /// Records the pipeline's fingerprint.
    pub fn set_fingerprint(&self, fingerprint: &Fingerprint) -> Result<()> {
        write_atomic(
            &self.dir.join("metadata.json"),
            &serde_json::to_vec_pretty(fingerprint).map_err(json_err)?,
        )
    }

    /// Takes the checkpoint's lock (no fingerprint check): for `checkpoint reset`.
    pub fn lock(dir: &Path) -> Result<Self> {
        fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        let lock_path = dir.join("lock");
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| io(&lock_path, e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(Error::spec(
                    "streaming.checkpoint_path",
                    format!(
                        "the checkpoint {} is in use by another running pipeline; stop it first",
                        dir.display()
                    ),
                ));
            }
            Err(fs::TryLockError::Error(e)) => return Err(io(&lock_path, e)),
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            _lock: Some(lock),
        })
    }

    /// Opens a checkpoint to read it (no lock, no check).
    pub fn read_only(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            _lock: None,
        }
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The checkpoint's id: made once when the checkpoint is created, kept by resets. Writers
    /// name their outputs with it, so a stream never mistakes another stream's files for its own.
    pub fn id(&self) -> Result<String> {
        let path = self.dir.join("id");
        if let Ok(id) = fs::read_to_string(&path) {
            return Ok(id.trim().to_string());
        }
        let id = new_stream_id();
        write_atomic(&path, id.as_bytes())?;
        Ok(id)
    }

    /// Reads every record.
    pub fn state(&self) -> Result<CheckpointState> {
        let compact = match epochs_in(&self.dir.join("compact"))?.last() {
            Some(n) => Some(read_json::<CompactRecord>(
                &self.dir.join("compact").join(n.to_string()),
            )?),
            None => None,
        };
        let after = compact.as_ref().map(|c| c.epoch);
        let mut epochs = Vec::new();
        for n in epochs_in(&self.dir.join("offsets"))? {
            if after.is_some_and(|a| n <= a) {
                continue;
            }
            let o: OffsetsRecord = read_json(&self.dir.join("offsets").join(n.to_string()))?;
            let commit_path = self.dir.join("commits").join(n.to_string());
            let c = if commit_path.exists() {
                Some(read_json::<CommitRecord>(&commit_path)?)
            } else {
                None
            };
            epochs.push((o, c));
        }
        Ok(CheckpointState { compact, epochs })
    }

    /// Records epoch N's range before it runs.
    pub fn write_offsets(&self, record: &OffsetsRecord) -> Result<()> {
        let path = self.dir.join("offsets").join(record.epoch.to_string());
        write_atomic(&path, &serde_json::to_vec(record).map_err(json_err)?)
    }

    /// Records that every writer committed epoch N.
    pub fn write_commit(&self, record: &CommitRecord) -> Result<()> {
        let path = self.dir.join("commits").join(record.epoch.to_string());
        write_atomic(&path, &serde_json::to_vec(record).map_err(json_err)?)
    }

    /// Writes the positions after epoch N, then removes epoch files older than the last
    /// [`KEEP_EPOCHS`] (and older compactions).
    pub fn compact(&self, record: &CompactRecord) -> Result<()> {
        let path = self.dir.join("compact").join(record.epoch.to_string());
        write_atomic(&path, &serde_json::to_vec(record).map_err(json_err)?)?;
        let keep_from = record.epoch.saturating_sub(KEEP_EPOCHS);
        for sub in ["offsets", "commits"] {
            for n in epochs_in(&self.dir.join(sub))? {
                if n < keep_from {
                    let p = self.dir.join(sub).join(n.to_string());
                    fs::remove_file(&p).map_err(|e| io(&p, e))?;
                }
            }
        }
        for n in epochs_in(&self.dir.join("compact"))? {
            if n < record.epoch {
                let p = self.dir.join("compact").join(n.to_string());
                fs::remove_file(&p).map_err(|e| io(&p, e))?;
            }
        }
        Ok(())
    }

    /// Rewinds: removes every epoch record and writes `positions` as a compaction at epoch
    /// `next - 1` (no positions: start from the earliest data). Epoch numbers go on, so the
    /// outputs of earlier epochs are never mistaken for the new ones.
    pub fn reset(&self, positions: Option<BTreeMap<String, Value>>) -> Result<()> {
        let state = self.state()?;
        let next = state.next_epoch();
        for sub in ["offsets", "commits", "compact"] {
            let d = self.dir.join(sub);
            if d.exists() {
                fs::remove_dir_all(&d).map_err(|e| io(&d, e))?;
            }
        }
        if next > 0 {
            self.compact(&CompactRecord {
                epoch: next - 1,
                positions: positions.unwrap_or_default(),
            })?;
        }
        Ok(())
    }
}

/// A new, unique id for a stream (16 hex digits).
pub fn new_stream_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let seed = format!("{nanos}-{}-{:p}", std::process::id(), &nanos);
    format!("{:016x}", borboleta_core::time::stable_hash(seed.as_bytes()))
}

fn json_err(e: serde_json::Error) -> Error {
    Error::Internal(format!("checkpoint record: {e}"))
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = fs::read(path).map_err(|e| io(path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| io(path, format!("corrupt checkpoint record: {e}")))
}

/// The epoch numbers in a folder of epoch files, ascending.
fn epochs_in(dir: &Path) -> Result<Vec<u64>> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut v: Vec<u64> = fs::read_dir(dir)
        .map_err(|e| io(dir, e))?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    v.sort_unstable();
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(readers: &str, spec: &str) -> Fingerprint {
        Fingerprint {
            readers: readers.into(),
            spec: spec.into(),
            reader_ids: vec!["events".into()],
        }
    }

    fn offsets(epoch: u64) -> OffsetsRecord {
        OffsetsRecord {
            epoch,
            planned_at: String::new(),
            ranges: BTreeMap::from([("events".into(), serde_json::json!({"files": [epoch]}))]),
        }
    }

    #[test]
    fn protocol_lock_fingerprint_and_pruning() {
        let dir = tempfile::tempdir().unwrap();
        let ck = Checkpoint::open(dir.path(), &fp("r1", "s1")).unwrap();
        // a second process (or pipeline) cannot take the same checkpoint
        let err = Checkpoint::open(dir.path(), &fp("r1", "s1")).unwrap_err();
        assert!(err.to_string().contains("in use"), "{err}");
        assert_eq!(ck.state().unwrap().next_epoch(), 0);
        ck.write_offsets(&offsets(0)).unwrap();
        let commit = |n| CommitRecord {
            epoch: n,
            committed_at: String::new(),
            rows: 1,
        };
        ck.write_commit(&commit(0)).unwrap();
        ck.write_offsets(&offsets(1)).unwrap();
        let s = ck.state().unwrap();
        assert_eq!(s.last_committed(), Some(0));
        assert_eq!(s.pending().iter().map(|o| o.epoch).collect::<Vec<_>>(), [1]);
        assert_eq!(s.next_epoch(), 2);
        drop(ck);

        // the same readers with another spec continue; other readers are refused
        let ck = Checkpoint::open(dir.path(), &fp("r1", "s2")).unwrap();
        drop(ck);
        let err = Checkpoint::open(dir.path(), &fp("r2", "s2")).unwrap_err();
        assert!(
            err.is_spec_error() && err.to_string().contains("checkpoint reset"),
            "{err}"
        );

        let ck = Checkpoint::open(dir.path(), &fp("r1", "s2")).unwrap();
        for n in 1..=30 {
            ck.write_offsets(&offsets(n)).unwrap();
            ck.write_commit(&commit(n)).unwrap();
        }
        ck.compact(&CompactRecord {
            epoch: 30,
            positions: BTreeMap::new(),
        })
        .unwrap();
        assert_eq!(epochs_in(&dir.path().join("offsets")).unwrap().first(), Some(&10));
        let s = ck.state().unwrap();
        assert!(s.epochs.is_empty(), "epochs up to the compaction are folded into it");
        assert_eq!((s.last_committed(), s.next_epoch()), (Some(30), 31));
        ck.reset(None).unwrap();
        let s = ck.state().unwrap();
        assert_eq!(s.next_epoch(), 31, "epoch numbers go on after a reset");
        assert!(
            s.compact.unwrap().positions.is_empty(),
            "no positions: from the earliest data"
        );
    }
}
