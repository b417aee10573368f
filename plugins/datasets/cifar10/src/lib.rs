//! Dataset plugin `cifar10`: CIFAR-10 (Krizhevsky 2009), the "binary version" distributed as
//! `data_batch_1.bin` ... `data_batch_5.bin` (training) and `test_batch.bin` (test), read from
//! the directory `path` (the program cannot download it).
//!
//! Each record is one label byte (0-9) and 3,072 pixel bytes: the 1,024 red values of the
//! 32x32 image row by row, then the green, then the blue — channel-height-width order, which
//! is the layout the networks use. Pixels are scaled to `[0, 1]`. A missing file, a size that
//! is not a whole number of records, or a label out of range is reported with the file's name.
//! A file with another number of records than the format's 10,000 (cut at a record boundary,
//! or a subset made on purpose) is read as it is, with a note naming it and its count.

use coherent_core::{
    DataError, DataOptions, Dataset, DatasetBuildError, DatasetEntry, InputShape, PluginArgs,
    PluginConfig, Split, Targets,
};
use std::path::Path;

coherent_core::plugin_crate!();

/// Bytes of one record.
pub const RECORD: usize = 1 + 3 * 32 * 32;
/// The training files, in order.
pub const TRAIN_FILES: [&str; 5] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
];
/// The test file.
pub const TEST_FILE: &str = "test_batch.bin";
/// Records of every file of the distribution.
pub const RECORDS_PER_FILE: usize = 10_000;

/// CIFAR-10 in memory.
#[derive(Clone, Debug)]
pub struct Cifar10 {
    train: Split,
    test: Split,
    notes: Vec<String>,
}

impl Dataset for Cifar10 {
    fn input_shape(&self) -> InputShape {
        InputShape::image(3, 32, 32)
    }
    fn train(&self) -> &Split {
        &self.train
    }
    fn test(&self) -> &Split {
        &self.test
    }
    fn notes(&self) -> Vec<String> {
        self.notes.clone()
    }
}

/// Reads the records of `files` in `dir`, stopping once `limit` examples are read; a file
/// with another number of records than the format's adds `<file> has <count>` to `counts`.
fn read(
    dir: &Path,
    files: &[&str],
    limit: usize,
    notes: &mut Vec<String>,
) -> Result<Split, DataError> {
    let (mut inputs, mut labels) = (Vec::new(), Vec::new());
    for name in files {
        if labels.len() >= limit {
            break;
        }
        let path = dir.join(name);
        let bytes = coherent_core::read_data_file(&path)?;
        if bytes.is_empty() || bytes.len() % RECORD != 0 {
            return Err(DataError::Malformed {
                path,
                problem: format!(
                    "{} bytes is not a whole number of {RECORD}-byte records (1 label byte + 3072 pixels); truncated or not the binary version",
                    bytes.len()
                ),
            });
        }
        let records = bytes.len() / RECORD;
        if records != RECORDS_PER_FILE {
            notes.push(format!("{name} has {records}"));
        }
        let kept = records.min(limit - labels.len());
        let need = (kept as u64).saturating_mul(4 * (RECORD as u64 - 1));
        coherent_core::memory::fits(need, &format!("its {kept} images as numbers")).map_err(
            |problem| DataError::Malformed {
                path: path.clone(),
                problem,
            },
        )?;
        for (k, record) in bytes.chunks_exact(RECORD).enumerate() {
            if labels.len() >= limit {
                break;
            }
            if record[0] > 9 {
                return Err(DataError::Malformed {
                    path,
                    problem: format!("label {} of record {k} is not a class 0..9", record[0]),
                });
            }
            labels.push(record[0] as u32);
            inputs.extend(record[1..].iter().map(|&p| p as f32 / 255.0));
        }
    }
    Ok(Split::new(
        inputs,
        RECORD - 1,
        Targets::Classes {
            labels,
            classes: 10,
        },
    ))
}

/// Loads CIFAR-10 with `options` (whose `path` must be set).
pub fn load(dir: &Path, options: &DataOptions) -> Result<Cifar10, DataError> {
    let mut notes = Vec::new();
    let limit = options.train_limit.unwrap_or(usize::MAX);
    let mut train = read(dir, &TRAIN_FILES, limit, &mut notes)?;
    let limit = options.test_limit.unwrap_or(usize::MAX);
    let mut test = read(dir, &[TEST_FILE], limit, &mut notes)?;
    options.apply(&mut train, &mut test);
    if !notes.is_empty() {
        notes = vec![format!(
            "{}: the CIFAR-10 files have {RECORDS_PER_FILE} records each, but {} (cut short, or a subset); read as they are: {} training and {} test examples",
            dir.display(),
            notes.join(", "),
            train.len(),
            test.len()
        )];
    }
    Ok(Cifar10 { train, test, notes })
}

/// Builds the `cifar10` plugin from its manifest table.
pub fn build(args: &PluginArgs) -> Result<Box<dyn Dataset>, DatasetBuildError> {
    let options = DataOptions::from_args(args)?;
    let dir = options.require_path(
        args,
        "data_batch_1.bin ... data_batch_5.bin and test_batch.bin",
    )?;
    Ok(Box::new(load(dir, &options)?))
}

coherent_core::register! {
    DatasetEntry {
        name: "cifar10",
        description: "CIFAR-10 (binary version: data_batch_1..5.bin, test_batch.bin) from `path` (required); 3x32x32 inputs.",
        params: DataOptions::params,
        build,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, records: &[(u8, u8)]) {
        let mut bytes = Vec::new();
        for &(label, pixel) in records {
            bytes.push(label);
            bytes.extend(std::iter::repeat_n(pixel, 3072));
        }
        std::fs::write(dir.join(name), bytes).unwrap();
    }

    fn dir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("coherent-cifar-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        for (k, f) in TRAIN_FILES.iter().enumerate() {
            write(&d, f, &[(k as u8, 255), (9, 0)]);
        }
        write(&d, TEST_FILE, &[(3, 51)]);
        d
    }

    #[test]
    fn reads_records_in_file_order_with_limits_and_noise() {
        let d = dir("ok");
        let options = DataOptions {
            train_limit: Some(7),
            ..Default::default()
        };
        let c = load(&d, &options).unwrap();
        let Targets::Classes { labels, .. } = &c.train().targets else {
            panic!()
        };
        assert_eq!(labels, &[0, 9, 1, 9, 2, 9, 3]);
        assert_eq!(c.train().input(0)[0], 1.0);
        assert_eq!(c.test().input(0)[3071], 0.2);
        assert_eq!(c.input_shape().len(), 3072);
        let notes = c.notes();
        let want = format!(
            "{}: the CIFAR-10 files have 10000 records each, but data_batch_1.bin has 2, data_batch_2.bin has 2, data_batch_3.bin has 2, data_batch_4.bin has 2, test_batch.bin has 1 (cut short, or a subset); read as they are: 7 training and 1 test examples",
            d.display()
        );
        assert_eq!(notes, [want]);
    }

    #[test]
    fn malformed_files_are_named() {
        let d = dir("bad");
        std::fs::write(d.join("data_batch_3.bin"), vec![0u8; RECORD + 5]).unwrap();
        let e = load(&d, &DataOptions::default()).unwrap_err().to_string();
        assert!(
            e.contains("data_batch_3.bin") && e.contains("whole number"),
            "{e}"
        );
        write(&d, "data_batch_3.bin", &[(12, 0)]);
        let e = load(&d, &DataOptions::default()).unwrap_err().to_string();
        assert!(e.contains("label 12 of record 0"), "{e}");
        std::fs::remove_file(d.join(TEST_FILE)).unwrap();
        write(&d, "data_batch_3.bin", &[(1, 0)]);
        let e = load(&d, &DataOptions::default()).unwrap_err().to_string();
        assert!(e.contains("test_batch.bin"), "{e}");
    }

    #[test]
    fn path_is_required() {
        let e = build(&PluginArgs::empty()).err().unwrap().to_string();
        assert!(e.contains("`path` is required"));
    }
}
