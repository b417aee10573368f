//! Dataset plugin `csv`: labelled points from two CSV files in the directory `path`.
//!
//! Each file has a header line, then one example per line: its class label (an integer from 0),
//! then its features (`label,x1,x2`). The shared data options (`path`, `train_limit`,
//! `test_limit`, `label_noise`, `noise_mode`, `noise_seed`) come from
//! [`coherent_core::DataOptions`]; the file names and the separator are this dataset's own.
//! A malformed file is reported with its name, the line and what is wrong.

use coherent_core::{
    read_data_file, DataError, DataOptions, Dataset, DatasetBuildError, DatasetEntry, InputShape,
    PluginArgs, PluginConfig, Split, Targets,
};
use serde::Deserialize;
use std::path::Path;

/// The keys of `csv` besides the shared data options.
#[derive(Clone, Debug, Deserialize, PluginConfig)]
#[serde(deny_unknown_fields)]
pub struct CsvConfig {
    /// File of the training examples, in `path`.
    #[serde(default = "default_train")]
    pub train_file: String,
    /// File of the test examples, in `path`.
    #[serde(default = "default_test")]
    pub test_file: String,
    /// Field separator.
    #[serde(default = "default_separator")]
    pub separator: char,
}

fn default_train() -> String {
    "train.csv".into()
}

fn default_test() -> String {
    "test.csv".into()
}

fn default_separator() -> char {
    ','
}

/// Points and their classes, in memory.
#[derive(Clone, Debug)]
pub struct CsvDataset {
    features: usize,
    train: Split,
    test: Split,
}

impl Dataset for CsvDataset {
    fn input_shape(&self) -> InputShape {
        InputShape::flat(self.features)
    }
    fn train(&self) -> &Split {
        &self.train
    }
    fn test(&self) -> &Split {
        &self.test
    }
}

/// The examples of one file: `(features per example, inputs row by row, labels)`.
pub fn read(path: &Path, separator: u8) -> Result<(usize, Vec<f32>, Vec<u32>), DataError> {
    let bytes = read_data_file(path)?;
    let bad = |problem: String| DataError::Malformed {
        path: path.to_path_buf(),
        problem,
    };
    let mut reader = ::csv::ReaderBuilder::new()
        .delimiter(separator)
        .from_reader(&bytes[..]);
    let (mut width, mut inputs, mut labels) = (None, Vec::new(), Vec::new());
    for record in reader.records() {
        let record = record.map_err(|e| bad(e.to_string()))?;
        let line = record.position().map_or(0, |p| p.line());
        let label = record.get(0).unwrap_or("");
        let label: u32 = label.trim().parse().map_err(|_| {
            bad(format!(
                "line {line}: label `{label}` is not a class 0, 1, ..."
            ))
        })?;
        let features = record.len() - 1;
        if features == 0 || *width.get_or_insert(features) != features {
            return Err(bad(format!(
                "line {line}: {features} features, the first example has {}",
                width.unwrap_or(0)
            )));
        }
        for field in record.iter().skip(1) {
            let x: f32 = field
                .trim()
                .parse()
                .map_err(|_| bad(format!("line {line}: `{field}` is not a number")))?;
            inputs.push(x);
        }
        labels.push(label);
    }
    match width {
        Some(width) => Ok((width, inputs, labels)),
        None => Err(bad("no examples after the header line".into())),
    }
}

/// Builds the `csv` plugin from its manifest table.
pub fn build(args: &PluginArgs) -> Result<Box<dyn Dataset>, DatasetBuildError> {
    let (options, own): (DataOptions, CsvConfig) = DataOptions::split(args)?;
    let dir = options.require_path(args, "the CSV files")?;
    let separator = u8::try_from(own.separator)
        .map_err(|_| args.invalid("separator", "must be a single-byte character"))?;
    let (features, train_x, train_y) = read(&dir.join(&own.train_file), separator)?;
    let (test_features, test_x, test_y) = read(&dir.join(&own.test_file), separator)?;
    if test_features != features {
        return Err(DataError::Malformed {
            path: dir.join(&own.test_file),
            problem: format!("{test_features} features, the training file has {features}"),
        }
        .into());
    }
    let classes = train_y
        .iter()
        .chain(&test_y)
        .max()
        .map_or(1, |&c| c as usize + 1);
    let split = |x, y| Split::new(x, features, Targets::Classes { labels: y, classes });
    let (mut train, mut test) = (split(train_x, train_y), split(test_x, test_y));
    options.apply(&mut train, &mut test);
    Ok(Box::new(CsvDataset {
        features,
        train,
        test,
    }))
}

coherent_core::register! {
    DatasetEntry {
        name: "csv",
        description: "Labelled points from CSV files `label,x1,x2,...` (with a header line) in `path`.",
        params: DataOptions::params_with::<CsvConfig>,
        build,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_with(train: &str, test: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("train.csv"), train).unwrap();
        std::fs::write(dir.path().join("test.csv"), test).unwrap();
        dir
    }

    fn args(dir: &Path, extra: &str) -> PluginArgs {
        let text = format!("path = {:?}\n{extra}", dir.display().to_string());
        PluginArgs::from_toml(&text).unwrap()
    }

    #[test]
    fn reads_every_row_with_the_shared_options() {
        let dir = dir_with(
            "label;x;y\n0;1.5;-2\n2;0;0.25\n1;3;4\n",
            "label;x;y\n1;0;1\n",
        );
        let data = build(&args(dir.path(), "separator = ';'\ntrain_limit = 2")).unwrap();
        assert_eq!(data.input_shape().len(), 2);
        assert_eq!(data.outputs(), 3);
        assert_eq!(data.train().len(), 2);
        assert_eq!(data.test().len(), 1);
        let mut batch = coherent_core::Batch::default();
        batch.gather(data.train(), &[0, 1]);
        assert_eq!(batch.inputs, [1.5, -2.0, 0.0, 0.25]);
    }

    #[test]
    fn malformed_files_name_the_file_and_the_line() {
        let dir = dir_with("label,x,y\n0,1,2\n1,oops,3\n", "label,x,y\n0,1,2\n");
        let err = build(&args(dir.path(), "")).err().unwrap().to_string();
        assert!(
            err.contains("train.csv") && err.contains("line 3") && err.contains("`oops`"),
            "{err}"
        );
        let dir = dir_with("label,x,y\n0,1,2\n", "label,x\n0,1\n");
        let err = build(&args(dir.path(), "")).err().unwrap().to_string();
        assert!(
            err.contains("test.csv") && err.contains("1 features"),
            "{err}"
        );
    }
}
