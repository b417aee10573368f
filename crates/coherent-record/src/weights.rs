//! Weights files: a model's parameters as [safetensors](https://github.com/huggingface/safetensors),
//! the format PyTorch, JAX and NumPy users load (`safetensors.numpy.load_file`,
//! `safetensors.torch.load_file`).
//!
//! A weights file holds one tensor per parameter tensor of the model, f32 little-endian, named
//! `<layer>.<tensor>` (`fc1.weight` `[out, in]`, `fc1.bias` `[out]`, `conv1.weight`
//! `[C_out, C_in, k, k]`, `norm2.weight`, ...: PyTorch's names and layouts, see
//! [`crate::LayerMeta::tensors`]), and string metadata (`__metadata__`): `format` =
//! [`FORMAT`], `format_version`, `step`, `manifest_hash` (decimal, as checkpoints hold it),
//! `coherent_version`, `experiment`, `run`. Checkpoints use the same container
//! ([`TensorFile`]) with their own tensors and metadata.
//!
//! [`TensorFile`] reads and writes any safetensors file of f32 tensors (f64 tensors of files
//! written elsewhere are read as f32); [`layer_tensors`] and [`unpack`] turn a model's flat
//! parameters into named tensors and back, naming every tensor that does not fit
//! ([`Mismatch`]).

use crate::{write_atomic, write_atomic_keeping_previous, LayerMeta, RecordError, TensorMeta};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// The `format` metadata value of a weights file.
pub const FORMAT: &str = "coherent-weights";
/// The `format_version` metadata value of the weights files this version writes.
pub const FORMAT_VERSION: &str = "1";

/// One named tensor of f32 values, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    /// Its full name (`fc1.weight`).
    pub name: String,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Its values, the last index varying fastest.
    pub values: Vec<f32>,
}

/// A safetensors file of f32 tensors and its string metadata.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TensorFile {
    /// The tensors, in the order of their data in the file.
    pub tensors: Vec<Tensor>,
    /// The `__metadata__` entries.
    pub metadata: BTreeMap<String, String>,
}

impl TensorFile {
    /// The file's bytes, or what keeps the tensors from being written (two of the same name, a
    /// shape that does not hold its values).
    pub fn encode(&self) -> Result<Vec<u8>, String> {
        let mut names = std::collections::HashSet::new();
        for t in &self.tensors {
            if !names.insert(t.name.as_str()) {
                return Err(format!("two tensors are named `{}`", t.name));
            }
            if t.shape.iter().product::<usize>() != t.values.len() {
                return Err(format!(
                    "tensor `{}` of shape {:?} cannot hold {} values",
                    t.name,
                    t.shape,
                    t.values.len()
                ));
            }
        }
        let bytes: Vec<Vec<u8>> = self
            .tensors
            .iter()
            .map(|t| t.values.iter().flat_map(|v| v.to_le_bytes()).collect())
            .collect();
        let views = self
            .tensors
            .iter()
            .zip(&bytes)
            .map(|(t, b)| {
                TensorView::new(Dtype::F32, t.shape.clone(), b)
                    .map(|v| (t.name.as_str(), v))
                    .map_err(|e| e.to_string())
            })
            .collect::<Result<Vec<_>, String>>()?;
        let metadata: HashMap<String, String> = self.metadata.clone().into_iter().collect();
        let metadata = (!metadata.is_empty()).then_some(metadata);
        let bytes = safetensors::serialize(views, metadata).map_err(|e| e.to_string())?;
        Ok(sorted_metadata(bytes))
    }

    /// The file in `bytes`, or what is wrong with them (not safetensors, truncated, a tensor of
    /// a type other than f32 or f64).
    pub fn decode(bytes: &[u8]) -> Result<TensorFile, String> {
        let what = |e: safetensors::SafeTensorError| {
            format!("not a safetensors file, or a truncated one ({e})")
        };
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(what)?;
        let file = SafeTensors::deserialize(bytes).map_err(what)?;
        let mut tensors = Vec::new();
        for name in header.offset_keys() {
            let view = file.tensor(&name).map_err(what)?;
            let data = view.data();
            let values = match view.dtype() {
                Dtype::F32 => data
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect(),
                Dtype::F64 => data
                    .chunks_exact(8)
                    .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32)
                    .collect(),
                other => {
                    return Err(format!(
                        "tensor `{name}` holds {other} values; coherent reads F32 (and F64)"
                    ))
                }
            };
            tensors.push(Tensor {
                name,
                shape: view.shape().to_vec(),
                values,
            });
        }
        let metadata = header.metadata().clone().unwrap_or_default();
        Ok(TensorFile {
            tensors,
            metadata: metadata.into_iter().collect(),
        })
    }

    /// Writes the file to `path` atomically.
    pub fn write(&self, path: &Path) -> Result<(), RecordError> {
        write_atomic(path, &self.encoded(path)?)
    }

    /// Writes the file to `path` atomically, keeping the file it replaces as `previous`
    /// ([`write_atomic_keeping_previous`]).
    pub fn write_keeping_previous(&self, path: &Path, previous: &Path) -> Result<(), RecordError> {
        write_atomic_keeping_previous(path, previous, &self.encoded(path)?)
    }

    /// The file's bytes; an error names `path`, where they were to go.
    fn encoded(&self, path: &Path) -> Result<Vec<u8>, RecordError> {
        self.encode()
            .map_err(|e| RecordError::malformed(path, None, e))
    }

    /// Reads the file at `path`; errors name it.
    pub fn read(path: &Path) -> Result<TensorFile, RecordError> {
        let bytes = std::fs::read(path).map_err(RecordError::io(path))?;
        TensorFile::decode(&bytes).map_err(|e| RecordError::malformed(path, None, e))
    }

    /// The tensor `name`, if the file has it.
    pub fn tensor(&self, name: &str) -> Option<&Tensor> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// The metadata value of `key`, if the file has it.
    pub fn meta(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).map(String::as_str)
    }
}

/// The safetensors file `bytes` with its `__metadata__` entries in the order of their keys, so
/// that the same tensors and metadata always give the same bytes (the safetensors crate
/// writes them in the order of a hash map). Only the header changes: same length, same data.
fn sorted_metadata(bytes: Vec<u8>) -> Vec<u8> {
    let header_len = match bytes.get(..8) {
        Some(n) => u64::from_le_bytes(n.try_into().expect("8 bytes")) as usize,
        None => return bytes,
    };
    let Some(header) = bytes.get(8..8 + header_len) else {
        return bytes;
    };
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(header) else {
        return bytes;
    };
    if let Some(serde_json::Value::Object(m)) = value.get_mut("__metadata__") {
        m.sort_keys();
    }
    match serde_json::to_vec(&value) {
        Ok(mut sorted) if sorted.len() <= header_len => {
            sorted.resize(header_len, b' ');
            let mut out = bytes;
            out[8..8 + header_len].copy_from_slice(&sorted);
            out
        }
        _ => bytes,
    }
}

/// What a weights file says besides its tensors.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WeightsMeta {
    /// Steps made before these weights.
    pub step: usize,
    /// The run's manifest hash (as its checkpoints hold it).
    pub manifest_hash: u64,
    /// coherent's version.
    pub coherent_version: String,
    /// The experiment (the manifest's name).
    pub experiment: String,
    /// The run's directory name.
    pub run: String,
}

/// The weights file of a model with `layers` and parameters `params` (one flat slice per
/// layer, as [`LayerMeta::tensors`] lays them out).
pub fn weights_file(layers: &[LayerMeta], params: &[&[f32]], meta: &WeightsMeta) -> TensorFile {
    let metadata = [
        ("format", FORMAT.to_string()),
        ("format_version", FORMAT_VERSION.to_string()),
        ("step", meta.step.to_string()),
        ("manifest_hash", meta.manifest_hash.to_string()),
        ("coherent_version", meta.coherent_version.clone()),
        ("experiment", meta.experiment.clone()),
        ("run", meta.run.clone()),
    ];
    TensorFile {
        tensors: layer_tensors(layers, params, ""),
        metadata: metadata
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    }
}

/// The tensors `<prefix><layer>.<tensor>` of the flat per-layer vectors `values`, cut as
/// [`LayerMeta::described`] says.
pub fn layer_tensors(
    layers: &[LayerMeta],
    values: &[impl AsRef<[f32]>],
    prefix: &str,
) -> Vec<Tensor> {
    let mut out = Vec::new();
    for (layer, values) in layers.iter().zip(values) {
        let values = values.as_ref();
        let mut described = layer.described();
        if described.iter().map(TensorMeta::len).sum::<usize>() != values.len() {
            described = vec![TensorMeta {
                name: "weight".into(),
                shape: vec![values.len()],
            }];
        }
        let mut at = 0;
        for t in described {
            let len = t.len();
            out.push(Tensor {
                name: format!("{prefix}{}.{}", layer.name, t.name),
                values: values[at..at + len].to_vec(),
                shape: t.shape,
            });
            at += len;
        }
    }
    out
}

/// A tensor of a file that does not fit a network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mismatch {
    /// The network has the tensor; the file does not.
    Missing {
        /// Its full name.
        name: String,
        /// Its shape in the network.
        shape: Vec<usize>,
    },
    /// The file has a tensor the network does not.
    Unexpected {
        /// Its full name.
        name: String,
        /// Its shape in the file.
        shape: Vec<usize>,
    },
    /// Both have the tensor, in other shapes.
    Shape {
        /// Its full name.
        name: String,
        /// Its shape in the file.
        file: Vec<usize>,
        /// Its shape in the network.
        network: Vec<usize>,
    },
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mismatch::Missing { name, shape } => write!(
                f,
                "tensor `{name}` {shape:?} of the network is missing from the file"
            ),
            Mismatch::Unexpected { name, shape } => write!(
                f,
                "the file's tensor `{name}` {shape:?} is not a tensor of the network"
            ),
            Mismatch::Shape {
                name,
                file,
                network,
            } => write!(
                f,
                "tensor `{name}` is {file:?} in the file but {network:?} in the network"
            ),
        }
    }
}

/// The flat per-layer vectors of `layers` from the tensors `<prefix><layer>.<tensor>` among
/// `tensors` (those not starting with `prefix` are left alone), or every tensor that does not
/// fit: missing, of another shape, or unexpected (starting with `prefix` but no tensor of the
/// network).
pub fn unpack<'a>(
    tensors: impl IntoIterator<Item = &'a Tensor>,
    layers: &[LayerMeta],
    prefix: &str,
) -> Result<Vec<Vec<f32>>, Vec<Mismatch>> {
    let mut found: BTreeMap<&str, &Tensor> = tensors
        .into_iter()
        .filter(|t| t.name.starts_with(prefix))
        .map(|t| (t.name.as_str(), t))
        .collect();
    let mut problems = Vec::new();
    let mut out = Vec::with_capacity(layers.len());
    for layer in layers {
        let mut values = Vec::with_capacity(layer.params);
        for t in layer.described() {
            let name = format!("{prefix}{}.{}", layer.name, t.name);
            match found.remove(name.as_str()) {
                None => problems.push(Mismatch::Missing {
                    name,
                    shape: t.shape,
                }),
                Some(f) if f.shape != t.shape => problems.push(Mismatch::Shape {
                    name,
                    file: f.shape.clone(),
                    network: t.shape,
                }),
                Some(f) => values.extend_from_slice(&f.values),
            }
        }
        out.push(values);
    }
    problems.extend(found.into_values().map(|t| Mismatch::Unexpected {
        name: t.name.clone(),
        shape: t.shape.clone(),
    }));
    match problems.is_empty() {
        true => Ok(out),
        false => Err(problems),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dense(name: &str, outputs: usize, inputs: usize) -> LayerMeta {
        LayerMeta {
            name: name.into(),
            kind: "dense".into(),
            params: outputs * inputs + outputs,
            tensors: vec![
                TensorMeta {
                    name: "weight".into(),
                    shape: vec![outputs, inputs],
                },
                TensorMeta {
                    name: "bias".into(),
                    shape: vec![outputs],
                },
            ],
        }
    }

    #[test]
    fn weights_round_trip_with_names_shapes_and_metadata() {
        let layers = [dense("fc1", 2, 3), dense("fc2", 1, 2)];
        let p1: Vec<f32> = (0..8).map(|v| v as f32 - 3.5).collect();
        let p2 = vec![f32::MIN_POSITIVE, -0.0, 1e30];
        let meta = WeightsMeta {
            step: 42,
            manifest_hash: u64::MAX - 1,
            ..WeightsMeta::default()
        };
        let file = weights_file(&layers, &[&p1, &p2], &meta);
        let names: Vec<&str> = file.tensors.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]);
        assert_eq!(file.tensors[0].values, p1[..6]);
        let bytes = file.encode().unwrap();
        assert_eq!(
            bytes,
            file.encode().unwrap(),
            "the same file, the same bytes"
        );
        let back = TensorFile::decode(&bytes).unwrap();
        assert_eq!(back.meta("format"), Some(FORMAT));
        assert_eq!(back.meta("step"), Some("42"));
        assert_eq!(back.meta("manifest_hash"), Some("18446744073709551614"));
        assert_eq!(back.tensor("fc1.weight").unwrap().shape, [2, 3]);
        let params = unpack(&back.tensors, &layers, "").unwrap();
        assert_eq!(params, [p1, p2]);
    }

    #[test]
    fn every_tensor_that_does_not_fit_is_named() {
        let file = weights_file(
            &[dense("fc1", 2, 3), dense("fc3", 1, 1)],
            &[&[0.0; 8], &[0.0; 2]],
            &WeightsMeta::default(),
        );
        let mut wanted = [dense("fc1", 2, 4), dense("fc2", 1, 2)];
        let problems = unpack(&file.tensors, &wanted, "").unwrap_err();
        let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(
            text,
            [
                "tensor `fc1.weight` is [2, 3] in the file but [2, 4] in the network",
                "tensor `fc2.weight` [1, 2] of the network is missing from the file",
                "tensor `fc2.bias` [1] of the network is missing from the file",
                "the file's tensor `fc3.bias` [1] is not a tensor of the network",
                "the file's tensor `fc3.weight` [1, 1] is not a tensor of the network",
            ]
        );
        // tensors outside the prefix are left alone
        wanted[1] = dense("fc3", 1, 1);
        let velocity = layer_tensors(&wanted[1..], &[[1.0f32, 2.0]], "optimizer.velocity.");
        let all: Vec<&Tensor> = file.tensors.iter().chain(&velocity).collect();
        let v = unpack(all.iter().copied(), &wanted[1..], "optimizer.velocity.").unwrap();
        assert_eq!(v, [vec![1.0, 2.0]]);
    }

    #[test]
    fn bad_files_and_foreign_types_are_explained() {
        let e = TensorFile::decode(b"garbage").unwrap_err();
        assert!(e.contains("not a safetensors file"), "{e}");
        let file = TensorFile {
            tensors: vec![Tensor {
                name: "x".into(),
                shape: vec![2],
                values: vec![1.0, 2.0],
            }],
            metadata: BTreeMap::new(),
        };
        let bytes = file.encode().unwrap();
        let e = TensorFile::decode(&bytes[..bytes.len() - 1]).unwrap_err();
        assert!(e.contains("truncated"), "{e}");
        assert_eq!(TensorFile::decode(&bytes).unwrap(), file);
        // f64 tensors of other programs are read as f32; other types are refused by name
        let data: Vec<u8> = [0.5f64, -2.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let view = TensorView::new(Dtype::F64, vec![2], &data).unwrap();
        let f64_file = safetensors::serialize([("w", view)], None).unwrap();
        let read = TensorFile::decode(&f64_file).unwrap();
        assert_eq!(read.tensors[0].values, [0.5, -2.0]);
        let view = TensorView::new(Dtype::I32, vec![2], &data[..8]).unwrap();
        let i32_file = safetensors::serialize([("w", view)], None).unwrap();
        let e = TensorFile::decode(&i32_file).unwrap_err();
        assert!(e.contains("tensor `w` holds I32 values"), "{e}");
        let mut twice = file.clone();
        twice.tensors.push(file.tensors[0].clone());
        assert!(twice.encode().unwrap_err().contains("two tensors"));
        let tmp = tempfile::tempdir().unwrap();
        let e = TensorFile::read(&tmp.path().join("none.safetensors")).unwrap_err();
        assert!(e.is_not_found() && e.to_string().contains("none.safetensors"));
    }
}
