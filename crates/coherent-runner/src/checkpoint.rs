//! Checkpoints: the whole state of a run at the start of a step, so that `coherent run
//! --resume` continues a killed run to the result the uninterrupted run would have reached.
//!
//! Format of `checkpoint.bin`: the line `coherent-checkpoint 2`, one line of JSON (the
//! [`Header`], with each observer's state under its name), then the vectors of the header's
//! `lengths` as little-endian f32 in order: the parameters of each layer, the optimizer's
//! velocity (if any), the aggregator's vectors. A checkpoint of another version is not
//! resumed (the run starts again).
//! The file is written atomically (temporary file, fsync, rename), so a reader finds the
//! previous checkpoint or the new one, never a part.

use coherent_record::files::CHECKPOINT as FILE;
use coherent_record::{write_atomic, RecordError};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::path::Path;

const MAGIC: &str = "coherent-checkpoint 2\n";
/// The first line of checkpoints of earlier versions.
const OLDER: &str = "coherent-checkpoint ";

/// The small part of the state, stored as JSON.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Header {
    /// FNV-1a hash of the run's resolved manifest: a checkpoint resumes only the run it was
    /// taken of.
    pub manifest_hash: u64,
    /// The step about to run.
    pub step: usize,
    /// The shuffling generator's state.
    pub shuffle: u64,
    /// The current epoch's order of training examples.
    pub order: Vec<u32>,
    /// Each observer's state, under its name.
    pub observers: Map<String, Value>,
    /// Seconds of training before this checkpoint (so `elapsed_s` continues after a resume).
    pub elapsed_s: f64,
    /// The aggregator's integers.
    pub aggregator_numbers: Vec<u64>,
    /// Lengths of the parameter vectors, the velocity vectors and the aggregator's vectors.
    pub lengths: [Vec<usize>; 3],
}

/// FNV-1a (64 bits) of `text`: stable across machines and versions.
pub fn manifest_hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

/// What [`Checkpoint::load`] says of a checkpoint written by an earlier version.
pub const OLDER_VERSION: &str = "a checkpoint of an earlier version of coherent";

/// A whole checkpoint.
#[derive(Clone, Debug, Default)]
pub struct Checkpoint {
    /// The JSON part.
    pub header: Header,
    /// Parameters of each layer.
    pub params: Vec<Vec<f32>>,
    /// The optimizer's velocity per layer (empty without momentum or before the first step).
    pub velocity: Vec<Vec<f32>>,
    /// The aggregator's vectors.
    pub aggregator_vectors: Vec<Vec<f32>>,
}

impl Checkpoint {
    /// Writes the checkpoint into `dir` atomically.
    pub fn save(&self, dir: &Path) -> Result<(), RecordError> {
        write_atomic(&dir.join(FILE), &self.encode())
    }

    /// The checkpoint file's bytes (the header's `lengths` written from the vectors).
    pub fn encode(&self) -> Vec<u8> {
        let groups = [&self.params, &self.velocity, &self.aggregator_vectors];
        let mut header = self.header.clone();
        for (lengths, group) in header.lengths.iter_mut().zip(groups) {
            *lengths = group.iter().map(Vec::len).collect();
        }
        let header = serde_json::to_string(&header).expect("the header serialises");
        let floats: usize = groups.iter().flat_map(|g| g.iter().map(Vec::len)).sum();
        let mut bytes = Vec::with_capacity(MAGIC.len() + header.len() + 1 + 4 * floats);
        bytes.extend_from_slice(MAGIC.as_bytes());
        bytes.extend_from_slice(header.as_bytes());
        bytes.push(b'\n');
        for v in groups.iter().flat_map(|g| g.iter()).flatten() {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        bytes
    }

    /// Reads the checkpoint of `dir`; `Ok(None)` when there is none.
    pub fn load(dir: &Path) -> Result<Option<Checkpoint>, String> {
        let path = dir.join(FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        Checkpoint::from_bytes(&bytes)
            .map(Some)
            .map_err(|what| format!("{}: {what}", path.display()))
    }

    /// The checkpoint in `bytes`, or what is wrong with them.
    pub fn from_bytes(bytes: &[u8]) -> Result<Checkpoint, String> {
        let bad = |what: &str| what.to_string();
        let Some(rest) = bytes.strip_prefix(MAGIC.as_bytes()) else {
            if bytes.starts_with(OLDER.as_bytes()) {
                return Err(bad(OLDER_VERSION));
            }
            return Err(bad("not a coherent checkpoint (bad first line)"));
        };
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| bad("truncated header"))?;
        let header: Header = serde_json::from_slice(&rest[..end])
            .map_err(|e| bad(&format!("malformed header: {e}")))?;
        let mut data = rest[end + 1..].chunks_exact(4);
        let expected: usize = header.lengths.iter().flatten().sum();
        if data.len() != expected || !data.remainder().is_empty() {
            return Err(bad(&format!(
                "holds {} bytes of vectors, the header announces {}",
                rest.len() - end - 1,
                4 * expected
            )));
        }
        let mut read = |lengths: &[usize]| -> Vec<Vec<f32>> {
            lengths
                .iter()
                .map(|&n| {
                    (&mut data)
                        .take(n)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                        .collect()
                })
                .collect()
        };
        let params = read(&header.lengths[0]);
        let velocity = read(&header.lengths[1]);
        let aggregator_vectors = read(&header.lengths[2]);
        Ok(Checkpoint {
            header,
            params,
            velocity,
            aggregator_vectors,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_truncation() {
        assert_ne!(manifest_hash("lr = 0.1"), manifest_hash("lr = 0.2"));
        let c = Checkpoint {
            header: Header {
                step: 42,
                shuffle: u64::MAX - 3,
                order: vec![2, 0, 1],
                aggregator_numbers: vec![7],
                ..Header::default()
            },
            params: vec![vec![1.5, -0.0, f32::MIN_POSITIVE], vec![3.25]],
            velocity: vec![],
            aggregator_vectors: vec![vec![9.0; 5]],
        };
        let bytes = c.encode();
        let back = Checkpoint::from_bytes(&bytes).unwrap();
        assert_eq!(back.header.step, 42);
        assert_eq!(back.header.shuffle, u64::MAX - 3);
        assert_eq!(back.header.order, vec![2, 0, 1]);
        assert_eq!(back.params, c.params);
        assert_eq!(back.aggregator_vectors, c.aggregator_vectors);
        let err = Checkpoint::from_bytes(&bytes[..bytes.len() - 2]).unwrap_err();
        assert!(err.contains("announces"), "{err}");
        assert!(Checkpoint::from_bytes(b"garbage")
            .unwrap_err()
            .contains("bad first line"));
        let older = Checkpoint::from_bytes(b"coherent-checkpoint 1\n{}\n").unwrap_err();
        assert_eq!(older, OLDER_VERSION);
    }

    #[test]
    fn load_names_the_file_and_finds_none_where_there_is_none() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(Checkpoint::load(tmp.path()).unwrap().is_none());
        std::fs::write(tmp.path().join(FILE), b"garbage").unwrap();
        let err = Checkpoint::load(tmp.path()).unwrap_err();
        assert!(
            err.contains("checkpoint.bin: not a coherent checkpoint"),
            "{err}"
        );
    }
}
