//! Checkpoints: the whole state of a run at the start of a step, so that `coherent run
//! --resume` continues a killed run to the result the uninterrupted run would have reached.
//!
//! `checkpoint.safetensors` is a safetensors file ([`coherent_record::weights`]) of f32
//! tensors: the model's parameters under their weights-file names (`fc1.weight`,
//! `fc1.bias`, ...), the optimizer's velocity (`optimizer.velocity.fc1.weight`, ...; none
//! before the first step) and the aggregator's vectors (`aggregator.0`, `aggregator.1`, ...).
//! Its `__metadata__` holds `format` = `coherent-checkpoint`, `format_version` = `3` and each
//! field of the [`Header`] under its name as JSON text (`step`, `shuffle`, `order`,
//! `observers`, `elapsed_s`, `aggregator_numbers`, `manifest_hash`). A checkpoint of another
//! version (an older `checkpoint.bin`, or another `format_version`) is not resumed: the run
//! starts again. The file is written atomically (temporary file, fsync, rename), so a reader
//! finds the previous checkpoint or the new one, never a part.

use coherent_record::files::{CHECKPOINT as FILE, OLD_CHECKPOINT};
use coherent_record::weights::{layer_tensors, unpack, Mismatch};
use coherent_record::{LayerMeta, RecordError, Tensor, TensorFile};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::path::Path;

/// The `format` metadata value of a checkpoint.
const FORMAT: &str = "coherent-checkpoint";
/// The `format_version` of the checkpoints this version writes (2 was `checkpoint.bin`).
const VERSION: &str = "3";
/// The prefix of the optimizer's velocity tensors.
const VELOCITY: &str = "optimizer.velocity.";
/// The prefix of the aggregator's vectors.
const AGGREGATOR: &str = "aggregator.";

/// The small part of the state, stored as metadata (each field as JSON text).
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
}

/// FNV-1a (64 bits) of `text`: stable across machines and versions.
pub fn manifest_hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

/// What [`Checkpoint::load`] says of a checkpoint written by an earlier version.
pub const OLDER_VERSION: &str = "a checkpoint of an earlier version of coherent";

/// Why a checkpoint cannot be resumed.
#[derive(Debug)]
pub enum LoadError {
    /// It was written by another version of coherent (the run starts again); the message
    /// names the file.
    OtherVersion(String),
    /// It is truncated, garbled or not a checkpoint (the message does not name the file).
    Invalid(String),
}

/// A whole checkpoint.
#[derive(Clone, Debug, Default)]
pub struct Checkpoint {
    /// The small part.
    pub header: Header,
    /// Parameters of each layer.
    pub params: Vec<Vec<f32>>,
    /// The optimizer's velocity per layer (empty before the first step).
    pub velocity: Vec<Vec<f32>>,
    /// The aggregator's vectors.
    pub aggregator_vectors: Vec<Vec<f32>>,
}

/// A checkpoint as read from its file, its tensors not yet matched to the model.
#[derive(Debug)]
pub struct Stored {
    /// The small part.
    pub header: Header,
    file: TensorFile,
}

impl Checkpoint {
    /// Writes the checkpoint of a model with `layers` into `dir` atomically.
    pub fn save(&self, dir: &Path, layers: &[LayerMeta]) -> Result<(), RecordError> {
        self.file(layers).write(&dir.join(FILE))
    }

    /// The checkpoint as a tensor file.
    pub fn file(&self, layers: &[LayerMeta]) -> TensorFile {
        let mut tensors = layer_tensors(layers, &self.params, "");
        tensors.extend(layer_tensors(layers, &self.velocity, VELOCITY));
        for (k, v) in self.aggregator_vectors.iter().enumerate() {
            tensors.push(Tensor {
                name: format!("{AGGREGATOR}{k}"),
                shape: vec![v.len()],
                values: v.clone(),
            });
        }
        let mut metadata: std::collections::BTreeMap<String, String> = [
            ("format".to_string(), FORMAT.to_string()),
            ("format_version".to_string(), VERSION.to_string()),
        ]
        .into();
        if let Ok(Value::Object(fields)) = serde_json::to_value(&self.header) {
            metadata.extend(fields.into_iter().map(|(k, v)| (k, v.to_string())));
        }
        TensorFile { tensors, metadata }
    }

    /// Reads the checkpoint of `dir`: `Ok(None)` when there is none.
    pub fn load(dir: &Path) -> Result<Option<Stored>, LoadError> {
        let path = dir.join(FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let old = dir.join(OLD_CHECKPOINT);
                return match old.exists() {
                    true => Err(LoadError::OtherVersion(format!(
                        "{}: {OLDER_VERSION}",
                        old.display()
                    ))),
                    false => Ok(None),
                };
            }
            Err(e) => return Err(LoadError::Invalid(e.to_string())),
        };
        Stored::decode(&bytes).map(Some).map_err(|e| match e {
            LoadError::OtherVersion(m) => {
                LoadError::OtherVersion(format!("{}: {m}", path.display()))
            }
            invalid => invalid,
        })
    }
}

impl Stored {
    /// The checkpoint in `bytes` (messages do not name the file).
    pub fn decode(bytes: &[u8]) -> Result<Stored, LoadError> {
        if bytes.starts_with(b"coherent-checkpoint ") {
            return Err(LoadError::OtherVersion(OLDER_VERSION.into()));
        }
        let file = TensorFile::decode(bytes).map_err(LoadError::Invalid)?;
        match (file.meta("format"), file.meta("format_version")) {
            (Some(FORMAT), Some(VERSION)) => {}
            (Some(FORMAT), v) => {
                return Err(LoadError::OtherVersion(format!(
                    "a checkpoint of another version of coherent (format_version {})",
                    v.unwrap_or("none")
                )))
            }
            (other, _) => {
                return Err(LoadError::Invalid(format!(
                    "not a coherent checkpoint (metadata `format` is {})",
                    other.map_or("missing".into(), |f| format!("`{f}`"))
                )))
            }
        }
        let fields: Result<Map<String, Value>, String> = file
            .metadata
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "format" | "format_version"))
            .map(|(k, v)| {
                serde_json::from_str(v)
                    .map(|v| (k.clone(), v))
                    .map_err(|e| format!("metadata `{k}` is not JSON ({e})"))
            })
            .collect();
        let header = fields
            .and_then(|f| {
                serde_json::from_value(Value::Object(f)).map_err(|e| format!("metadata: {e}"))
            })
            .map_err(|e| LoadError::Invalid(format!("malformed header: {e}")))?;
        Ok(Stored { header, file })
    }

    /// The checkpoint of a model with `layers`, or what in it does not fit the model.
    pub fn unpack(self, layers: &[LayerMeta]) -> Result<Checkpoint, String> {
        let Stored { header, file } = self;
        let theirs = |t: &&Tensor| !t.name.starts_with(VELOCITY) && !t.name.starts_with(AGGREGATOR);
        let params = unpack(file.tensors.iter().filter(theirs), layers, "").map_err(listed)?;
        let has_velocity = file.tensors.iter().any(|t| t.name.starts_with(VELOCITY));
        let velocity = match has_velocity {
            true => unpack(&file.tensors, layers, VELOCITY).map_err(listed)?,
            false => Vec::new(),
        };
        let mut aggregator_vectors = Vec::new();
        let count = file
            .tensors
            .iter()
            .filter(|t| t.name.starts_with(AGGREGATOR))
            .count();
        for k in 0..count {
            let name = format!("{AGGREGATOR}{k}");
            let t = file
                .tensor(&name)
                .ok_or_else(|| format!("tensor `{name}` is missing"))?;
            aggregator_vectors.push(t.values.clone());
        }
        Ok(Checkpoint {
            header,
            params,
            velocity,
            aggregator_vectors,
        })
    }
}

/// The mismatches, in one line.
fn listed(problems: Vec<Mismatch>) -> String {
    let text: Vec<String> = problems.iter().map(Mismatch::to_string).collect();
    format!("does not fit this run's model: {}", text.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use coherent_record::TensorMeta;

    fn layers() -> Vec<LayerMeta> {
        let t = |name: &str, shape: Vec<usize>| TensorMeta {
            name: name.into(),
            shape,
        };
        vec![
            LayerMeta {
                name: "fc1".into(),
                kind: "dense".into(),
                params: 3,
                tensors: vec![t("weight", vec![1, 2]), t("bias", vec![1])],
            },
            LayerMeta {
                name: "fc2".into(),
                kind: "dense".into(),
                params: 1,
                tensors: vec![t("weight", vec![1, 1])],
            },
        ]
    }

    fn checkpoint() -> Checkpoint {
        let mut observers = Map::new();
        observers.insert(
            "learning_times".into(),
            serde_json::json!({"streak": [1, 2]}),
        );
        Checkpoint {
            header: Header {
                manifest_hash: u64::MAX - 7,
                step: 42,
                shuffle: u64::MAX - 3,
                order: vec![2, 0, 1],
                observers,
                elapsed_s: 0.1 + 0.2,
                aggregator_numbers: vec![7],
            },
            params: vec![vec![1.5, -0.0, f32::MIN_POSITIVE], vec![3.25]],
            velocity: vec![],
            aggregator_vectors: (0..12).map(|k| vec![k as f32; k % 3]).collect(),
        }
    }

    fn round_trip(c: &Checkpoint) -> Checkpoint {
        let bytes = c.file(&layers()).encode().unwrap();
        let stored = Stored::decode(&bytes).unwrap();
        stored.unpack(&layers()).unwrap()
    }

    #[test]
    fn round_trips_bit_for_bit() {
        assert_ne!(manifest_hash("lr = 0.1"), manifest_hash("lr = 0.2"));
        let c = checkpoint();
        let back = round_trip(&c);
        assert_eq!(back.header.step, 42);
        assert_eq!(back.header.manifest_hash, u64::MAX - 7);
        assert_eq!(back.header.shuffle, u64::MAX - 3);
        assert_eq!(back.header.order, vec![2, 0, 1]);
        assert_eq!(back.header.observers, c.header.observers);
        assert_eq!(
            back.header.elapsed_s.to_bits(),
            c.header.elapsed_s.to_bits()
        );
        assert_eq!(back.header.aggregator_numbers, vec![7]);
        let bits = |v: &[Vec<f32>]| -> Vec<Vec<u32>> {
            v.iter()
                .map(|l| l.iter().map(|x| x.to_bits()).collect())
                .collect()
        };
        assert_eq!(bits(&back.params), bits(&c.params));
        assert!(back.velocity.is_empty());
        assert_eq!(back.aggregator_vectors, c.aggregator_vectors);
        let with_velocity = Checkpoint {
            velocity: vec![vec![0.5, 0.25, -1.0], vec![2.0]],
            ..c
        };
        assert_eq!(round_trip(&with_velocity).velocity, with_velocity.velocity);
        let file = with_velocity.file(&layers());
        let names: Vec<&str> = file.tensors.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names[..5],
            [
                "fc1.weight",
                "fc1.bias",
                "fc2.weight",
                "optimizer.velocity.fc1.weight",
                "optimizer.velocity.fc1.bias"
            ]
        );
        assert_eq!(file.meta("step"), Some("42"));
    }

    #[test]
    fn truncated_garbled_older_and_foreign_files_are_named() {
        let bytes = checkpoint().file(&layers()).encode().unwrap();
        let invalid = |b: &[u8]| match Stored::decode(b) {
            Err(LoadError::Invalid(m)) => m,
            other => panic!("{other:?}"),
        };
        assert!(invalid(&bytes[..bytes.len() - 2]).contains("truncated"));
        assert!(invalid(b"garbage").contains("not a safetensors file"));
        let weights = TensorFile::default().encode().unwrap();
        assert!(
            invalid(&weights).contains("not a coherent checkpoint (metadata `format` is missing)")
        );
        let mut other = checkpoint().file(&layers());
        other.metadata.insert("step".into(), "\"x\"".into());
        assert!(invalid(&other.encode().unwrap()).contains("malformed header"));
        let older = Stored::decode(b"coherent-checkpoint 2\n{}\n").unwrap_err();
        assert!(matches!(older, LoadError::OtherVersion(m) if m == OLDER_VERSION));
        other.metadata.insert("format_version".into(), "4".into());
        let newer = Stored::decode(&other.encode().unwrap()).unwrap_err();
        assert!(matches!(newer, LoadError::OtherVersion(m) if m.contains("format_version 4")));
        // a checkpoint of another model
        let mut wider = layers();
        wider[1].params = 2;
        wider[1].tensors[0].shape = vec![1, 2];
        let e = Stored::decode(&bytes).unwrap().unpack(&wider).unwrap_err();
        assert!(
            e.contains("`fc2.weight` is [1, 1] in the file but [1, 2]"),
            "{e}"
        );
    }

    #[test]
    fn load_names_the_file_and_finds_none_where_there_is_none() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(Checkpoint::load(tmp.path()).unwrap().is_none());
        std::fs::write(tmp.path().join(FILE), b"garbage").unwrap();
        match Checkpoint::load(tmp.path()).unwrap_err() {
            LoadError::Invalid(m) => assert!(m.starts_with("not a safetensors"), "{m}"),
            other => panic!("{other:?}"),
        }
        std::fs::remove_file(tmp.path().join(FILE)).unwrap();
        std::fs::write(tmp.path().join(OLD_CHECKPOINT), b"coherent-checkpoint 2\n").unwrap();
        match Checkpoint::load(tmp.path()).unwrap_err() {
            LoadError::OtherVersion(m) => assert!(
                m.contains("checkpoint.bin: a checkpoint of an earlier version"),
                "{m}"
            ),
            other => panic!("{other:?}"),
        }
        checkpoint().save(tmp.path(), &layers()).unwrap();
        let stored = Checkpoint::load(tmp.path()).unwrap().unwrap();
        assert_eq!(stored.header.step, 42);
    }
}
