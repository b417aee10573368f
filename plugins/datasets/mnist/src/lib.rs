//! Dataset plugin `mnist`: handwritten digits in the IDX format of the MNIST distribution.
//!
//! Reads `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte` and
//! `t10k-labels-idx1-ubyte` (each plain or with `.gz`) from the directory `path`; image size
//! and count come from the file headers. Without `path` it uses the 10,000-digit sample
//! compiled into the program (8,000 train / 2,000 test; provenance in `data/README.md`).
//! Pixels are scaled to `[0, 1]`. Label noise follows [`coherent_core::noise`].
//!
//! The loader is public so that other IDX datasets (Fashion-MNIST) reuse it.

pub mod idx;

use coherent_core::{
    read_data_file, DataError, DataOptions, Dataset, DatasetBuildError, DatasetEntry, InputShape,
    PluginArgs, PluginConfig, Split, Targets,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;

coherent_core::plugin_crate!();

/// The parameters of IDX datasets: the shared [`DataOptions`].
pub type IdxConfig = DataOptions;

/// Images and labels read from IDX files.
#[derive(Clone, Debug)]
pub struct IdxDataset {
    shape: InputShape,
    train: Split,
    test: Split,
}

impl Dataset for IdxDataset {
    fn input_shape(&self) -> InputShape {
        self.shape
    }
    fn train(&self) -> &Split {
        &self.train
    }
    fn test(&self) -> &Split {
        &self.test
    }
}

const CLASSES: usize = 10;
const BUNDLED: [(&str, &[u8]); 4] = [
    (
        "train-images-idx3-ubyte.gz",
        include_bytes!("../data/train-images-idx3-ubyte.gz"),
    ),
    (
        "train-labels-idx1-ubyte.gz",
        include_bytes!("../data/train-labels-idx1-ubyte.gz"),
    ),
    (
        "t10k-images-idx3-ubyte.gz",
        include_bytes!("../data/t10k-images-idx3-ubyte.gz"),
    ),
    (
        "t10k-labels-idx1-ubyte.gz",
        include_bytes!("../data/t10k-labels-idx1-ubyte.gz"),
    ),
];

/// A data file: its path and its bytes.
type File = (PathBuf, Arc<[u8]>);

/// Reads `name` or `name.gz` from `dir`.
fn read_file(dir: &Path, name: &str) -> Result<File, DataError> {
    let plain = dir.join(name);
    let gz = dir.join(format!("{name}.gz"));
    let path = if plain.exists() || !gz.exists() {
        plain
    } else {
        gz
    };
    let bytes = read_data_file(&path)?;
    Ok((path, bytes))
}

/// Builds one split from an images file and a labels file.
fn split(images: File, labels: File) -> Result<(InputShape, Split), DataError> {
    let img = idx::parse(&images.1, &images.0)?;
    let lab = idx::parse(&labels.1, &labels.0)?;
    let bad = |p: &PathBuf, m: String| DataError::Malformed {
        path: p.clone(),
        problem: m,
    };
    if img.dims.len() != 3 {
        return Err(bad(
            &images.0,
            format!(
                "expected 3 dimensions (count, rows, cols), found {:?}",
                img.dims
            ),
        ));
    }
    if lab.dims.len() != 1 {
        return Err(bad(
            &labels.0,
            format!("expected 1 dimension (count), found {:?}", lab.dims),
        ));
    }
    if img.dims[0] != lab.dims[0] {
        return Err(bad(
            &labels.0,
            format!(
                "{} labels for {} images in {}",
                lab.dims[0],
                img.dims[0],
                images.0.display()
            ),
        ));
    }
    if let Some((i, l)) = lab
        .data
        .iter()
        .enumerate()
        .find(|(_, &l)| l as usize >= CLASSES)
    {
        return Err(bad(
            &labels.0,
            format!("label {l} of example {i} is not a digit class 0..9"),
        ));
    }
    let shape = InputShape::image(1, img.dims[1], img.dims[2]);
    let inputs = img.data.iter().map(|&p| p as f32 / 255.0).collect();
    let labels = lab.data.iter().map(|&l| l as u32).collect();
    Ok((
        shape,
        Split::new(
            inputs,
            shape.len(),
            Targets::Classes {
                labels,
                classes: CLASSES,
            },
        ),
    ))
}

/// Loads an IDX dataset from `config` (the bundled sample when `path` is absent).
pub fn load(config: &IdxConfig, file_prefix: [&str; 2]) -> Result<IdxDataset, DataError> {
    let files = |kind: &str| -> Result<[File; 2], DataError> {
        let names = [
            format!("{kind}-images-idx3-ubyte"),
            format!("{kind}-labels-idx1-ubyte"),
        ];
        match &config.path {
            Some(dir) => Ok([read_file(dir, &names[0])?, read_file(dir, &names[1])?]),
            None => {
                let get = |n: &str| {
                    let (name, bytes) = BUNDLED
                        .iter()
                        .find(|(f, _)| f.starts_with(n))
                        .expect("bundled file");
                    (
                        PathBuf::from(format!("<bundled>/{name}")),
                        Arc::from(*bytes),
                    )
                };
                Ok([get(&names[0]), get(&names[1])])
            }
        }
    };
    let [ti, tl] = files(file_prefix[0])?;
    let [vi, vl] = files(file_prefix[1])?;
    let (train_images, test_images) = (ti.0.clone(), vi.0.clone());
    let (shape, mut train) = split(ti, tl)?;
    let (test_shape, mut test) = split(vi, vl)?;
    if test_shape != shape {
        return Err(DataError::Malformed {
            path: test_images,
            problem: format!(
                "its images are {test_shape} but the training images of {} are {shape}: the two must come from the same data set",
                train_images.display()
            ),
        });
    }
    config.apply(&mut train, &mut test);
    Ok(IdxDataset { shape, train, test })
}

/// Builds the `mnist` plugin from its manifest table.
pub fn build(args: &PluginArgs) -> Result<Box<dyn Dataset>, DatasetBuildError> {
    let config = IdxConfig::from_args(args)?;
    Ok(Box::new(load(&config, ["train", "t10k"])?))
}

coherent_core::register! {
    DatasetEntry {
        name: "mnist",
        description: "MNIST digits from the four IDX files (plain or .gz) in `path`; without `path`, the bundled 8,000/2,000 sample.",
        params: DataOptions::params,
        build,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_sample_has_the_documented_counts_and_range() {
        let d = load(&IdxConfig::default(), ["train", "t10k"]).unwrap();
        assert_eq!(d.train().len(), 8000);
        assert_eq!(d.test().len(), 2000);
        assert_eq!(
            d.input_shape(),
            InputShape {
                channels: 1,
                height: 28,
                width: 28
            }
        );
        assert!(d.train().inputs.iter().all(|&p| (0.0..=1.0).contains(&p)));
        let Targets::Classes { labels, .. } = &d.train().targets else {
            panic!()
        };
        let zeros = labels.iter().filter(|&&l| l == 0).count();
        assert_eq!(zeros, 828, "class counts from data/README.md");
    }

    #[test]
    fn limits_and_noise_are_applied() {
        let args =
            PluginArgs::from_toml("train_limit = 100\ntest_limit = 50\nlabel_noise = 1.0").unwrap();
        let d = build(&args).unwrap();
        assert_eq!((d.train().len(), d.test().len()), (100, 50));
        assert!(d.train().corrupted.iter().all(|&c| c));
    }

    #[test]
    fn out_of_range_values_are_located() {
        let text = "label_noise = 1.5";
        let err = build(&PluginArgs::from_toml(text).unwrap()).err().unwrap();
        let DatasetBuildError::Config(e) = err else {
            panic!("{err:?}")
        };
        assert_eq!(&text[e.span.unwrap()], "1.5");
        assert!(e.message.contains("[0, 1]"));
    }

    #[test]
    fn missing_directory_names_the_file() {
        let args = PluginArgs::from_toml("path = \"no/such/dir\"").unwrap();
        let msg = build(&args).err().unwrap().to_string();
        assert!(
            msg.contains("no/such/dir") && msg.contains("train-images-idx3-ubyte"),
            "{msg}"
        );
    }
}
