//! Checkpoints: the whole state of a run at the start of a step, so that `coherent run
//! --resume` continues a killed run to the result the uninterrupted run would have reached.
//!
//! `checkpoint.safetensors` is a safetensors file ([`coherent_record::weights`]) of f32
//! tensors: the model's parameters under their weights-file names (`fc1.weight`,
//! `fc1.bias`, ...), the optimizer's velocity (`optimizer.velocity.fc1.weight`, ...; none
//! before the first step) and the aggregator's vectors (`aggregator.0`, `aggregator.1`, ...).
//! Its `__metadata__` holds `format` = `coherent-checkpoint`, `format_version` = `3` and each
//! field of the [`Header`] under its name as JSON text (`step`, `shuffle`, `order`,
//! `observers`, `elapsed_s`, `aggregator_numbers`, `manifest_hash`, `metrics`) and `checksum`,
//! the CRC-32 of everything else in the file (metadata and tensors), so a damaged file is
//! recognised. A checkpoint of another version (an older `checkpoint.bin`, or another
//! `format_version`) is not resumed: the run starts again.
//!
//! The file is written atomically (temporary file, fsync, rename), and the one it replaces is
//! kept as `checkpoint.previous.safetensors`: when the last checkpoint is damaged or does not
//! check out (its step, its order of examples, its weights, the record it continues), the run
//! resumes from the previous one; when neither can be used, it starts over and says why in its
//! log and its `run.json` (`resume_refused`). A checkpoint never makes a run fail for good.

use coherent_record::files::{CHECKPOINT as FILE, OLD_CHECKPOINT, PREVIOUS_CHECKPOINT};
use coherent_record::weights::{layer_tensors, unpack, Mismatch};
use coherent_record::{LayerMeta, MetricsMark, RecordError, Tensor, TensorFile};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// The `format` metadata value of a checkpoint.
const FORMAT: &str = "coherent-checkpoint";
/// The `format_version` of the checkpoints this version writes (2 was `checkpoint.bin`, 3 had
/// no checksum and no mark of the record).
const VERSION: &str = "4";
/// The metadata key of the checksum.
const CHECKSUM: &str = "checksum";
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
    /// What the run had written to `metrics.jsonl` when the checkpoint was taken.
    pub metrics: MetricsMark,
}

/// FNV-1a (64 bits) of `text`: stable across machines and versions.
pub fn manifest_hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

/// What [`Stored::decode`] says of a checkpoint written by an earlier version.
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
    /// Writes the checkpoint of a model with `layers` into `dir` atomically, keeping the one
    /// it replaces as the previous checkpoint: once a checkpoint is written, a process killed
    /// at any moment leaves the last one and the one before it whole
    /// ([`TensorFile::write_keeping_previous`]).
    pub fn save(&self, dir: &Path, layers: &[LayerMeta]) -> Result<(), RecordError> {
        let mut file = self.file(layers);
        seal(&mut file);
        let (path, previous) = (dir.join(FILE), dir.join(PREVIOUS_CHECKPOINT));
        file.write_keeping_previous(&path, &previous)
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

    /// The checkpoints of `dir` to try, newest first: the last one and the one before it,
    /// each as read (or why it cannot be), named by its path. Empty when there is none; a
    /// checkpoint of an earlier version is listed as [`LoadError::OtherVersion`].
    pub fn candidates(dir: &Path) -> Vec<(PathBuf, Result<Stored, LoadError>)> {
        let mut found = Vec::new();
        for name in [FILE, PREVIOUS_CHECKPOINT] {
            let path = dir.join(name);
            match std::fs::read(&path) {
                Ok(bytes) => found.push((path, Stored::decode(&bytes))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => found.push((path, Err(LoadError::Invalid(e.to_string())))),
            }
        }
        let old = dir.join(OLD_CHECKPOINT);
        if found.is_empty() && old.exists() {
            found.push((old, Err(LoadError::OtherVersion(OLDER_VERSION.into()))));
        }
        found
    }
}

/// Adds the checksum of everything else in `file` to its metadata.
pub fn seal(file: &mut TensorFile) {
    file.metadata.remove(CHECKSUM);
    let crc = content_crc(file);
    file.metadata.insert(CHECKSUM.into(), crc.to_string());
}

/// CRC-32 of the metadata (but the checksum) and the tensors (by name), as a file holds them.
fn content_crc(file: &TensorFile) -> u32 {
    let mut h = crc32fast::Hasher::new();
    for (k, v) in file.metadata.iter().filter(|(k, _)| k.as_str() != CHECKSUM) {
        h.update(k.as_bytes());
        h.update(&[0]);
        h.update(v.as_bytes());
        h.update(&[0]);
    }
    let mut tensors: Vec<&Tensor> = file.tensors.iter().collect();
    tensors.sort_by(|a, b| a.name.cmp(&b.name));
    for t in tensors {
        h.update(t.name.as_bytes());
        h.update(&[0]);
        for d in &t.shape {
            h.update(&(*d as u64).to_le_bytes());
        }
        for v in &t.values {
            h.update(&v.to_le_bytes());
        }
    }
    h.finalize()
}

/// Why a checkpoint that was read is not resumed.
#[derive(Debug, PartialEq)]
pub enum Rejection {
    /// It was taken of another manifest (an edited one, or another run's): the run starts
    /// again, as intended.
    OtherManifest,
    /// It does not check out; the message says what is wrong.
    Invalid(String),
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
        let sum = file.meta(CHECKSUM).and_then(|c| c.parse::<u32>().ok());
        if sum != Some(content_crc(&file)) {
            return Err(LoadError::Invalid(match sum {
                None => "it has no checksum".into(),
                Some(_) => "its checksum does not match its contents: the file is damaged".into(),
            }));
        }
        let fields: Result<Map<String, Value>, String> = file
            .metadata
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "format" | "format_version" | CHECKSUM))
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

    /// Whether the checkpoint can continue the run of the manifest with `hash` over
    /// `examples` training examples and `total` steps: its step, its order of examples (a
    /// permutation of them) and its clock.
    pub fn check(&self, hash: u64, examples: usize, total: usize) -> Result<(), Rejection> {
        let h = &self.header;
        if h.manifest_hash != hash {
            return Err(Rejection::OtherManifest);
        }
        let invalid = |m: String| Err(Rejection::Invalid(m));
        if h.step == 0 || h.step > total {
            return invalid(format!(
                "step {} is not within the run's 1..={total}",
                h.step
            ));
        }
        if h.order.len() != examples {
            let n = h.order.len();
            return invalid(format!(
                "its order holds {n} examples, the run has {examples}"
            ));
        }
        let mut seen = vec![false; examples];
        for &i in &h.order {
            match seen.get_mut(i as usize) {
                Some(s) if !*s => *s = true,
                _ => {
                    return invalid(format!(
                        "its order of examples is not a permutation (entry {i})"
                    ))
                }
            }
        }
        if !(h.elapsed_s.is_finite() && h.elapsed_s >= 0.0) {
            return invalid(format!("elapsed_s {} is not a duration", h.elapsed_s));
        }
        Ok(())
    }

    /// The checkpoint of a model with `layers`, or what in it does not fit the model (or is
    /// not a finite number).
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
        for t in &file.tensors {
            if let Some(v) = t.values.iter().find(|v| !v.is_finite()) {
                return Err(format!("tensor `{}` holds {v}", t.name));
            }
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
                metrics: MetricsMark {
                    lines: 3,
                    bytes: 300,
                    crc: 7,
                },
            },
            params: vec![vec![1.5, -0.0, f32::MIN_POSITIVE], vec![3.25]],
            velocity: vec![],
            aggregator_vectors: (0..12).map(|k| vec![k as f32; k % 3]).collect(),
        }
    }

    fn sealed(c: &Checkpoint) -> TensorFile {
        let mut file = c.file(&layers());
        seal(&mut file);
        file
    }

    fn round_trip(c: &Checkpoint) -> Checkpoint {
        let bytes = sealed(c).encode().unwrap();
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
        assert_eq!(back.header.metrics, c.header.metrics);
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
        let bytes = sealed(&checkpoint()).encode().unwrap();
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
        let mut other = sealed(&checkpoint());
        other.metadata.insert("step".into(), "\"x\"".into());
        assert!(invalid(&other.encode().unwrap()).contains("checksum does not match"));
        seal(&mut other);
        assert!(invalid(&other.encode().unwrap()).contains("malformed header"));
        let mut unsealed = checkpoint().file(&layers());
        assert!(invalid(&unsealed.encode().unwrap()).contains("no checksum"));
        unsealed.tensors[0].values[0] = f32::NAN;
        seal(&mut unsealed);
        let e = Stored::decode(&unsealed.encode().unwrap())
            .unwrap()
            .unpack(&layers());
        assert_eq!(e.unwrap_err(), "tensor `fc1.weight` holds NaN");
        let older = Stored::decode(b"coherent-checkpoint 2\n{}\n").unwrap_err();
        assert!(matches!(older, LoadError::OtherVersion(m) if m == OLDER_VERSION));
        other.metadata.insert("format_version".into(), "5".into());
        let newer = Stored::decode(&other.encode().unwrap()).unwrap_err();
        assert!(matches!(newer, LoadError::OtherVersion(m) if m.contains("format_version 5")));
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
    fn a_checkpoint_must_fit_the_run() {
        let stored = Stored::decode(&sealed(&checkpoint()).encode().unwrap()).unwrap();
        let hash = u64::MAX - 7;
        assert_eq!(stored.check(hash, 3, 100), Ok(()));
        assert_eq!(stored.check(1, 3, 100), Err(Rejection::OtherManifest));
        let invalid = |r: Result<(), Rejection>| match r {
            Err(Rejection::Invalid(m)) => m,
            other => panic!("{other:?}"),
        };
        assert!(invalid(stored.check(hash, 3, 41)).contains("step 42 is not within"));
        assert!(invalid(stored.check(hash, 4, 100)).contains("holds 3 examples"));
        let mut twice = checkpoint();
        twice.header.order = vec![2, 2, 1];
        let stored = Stored::decode(&sealed(&twice).encode().unwrap()).unwrap();
        assert!(invalid(stored.check(hash, 3, 100)).contains("not a permutation"));
    }

    #[test]
    fn the_previous_checkpoint_is_kept_and_listed_after_the_last() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        assert!(Checkpoint::candidates(dir).is_empty());
        std::fs::write(dir.join(OLD_CHECKPOINT), b"coherent-checkpoint 2\n").unwrap();
        let found = Checkpoint::candidates(dir);
        assert!(matches!(&found[0].1, Err(LoadError::OtherVersion(m)) if m == OLDER_VERSION));
        let mut c = checkpoint();
        c.save(dir, &layers()).unwrap();
        c.header.step = 43;
        c.save(dir, &layers()).unwrap();
        std::fs::write(dir.join(FILE), b"garbage").unwrap();
        let found = Checkpoint::candidates(dir);
        assert_eq!(found.len(), 2);
        assert!(
            matches!(&found[0].1, Err(LoadError::Invalid(m)) if m.starts_with("not a safetensors"))
        );
        assert_eq!(found[1].0, dir.join(PREVIOUS_CHECKPOINT));
        assert_eq!(found[1].1.as_ref().unwrap().header.step, 42);
    }
}
