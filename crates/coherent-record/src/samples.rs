//! `samples.json`: the training examples of each metric's fixed sample, so that a logged
//! metric can be recomputed from the data and the weights.

use crate::ordered;
use crate::{read_json, RecordError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::Path;

/// The indices into the training split (after `train_limit`; label noise keeps the order) of
/// each metric's sample, in the order the metric reads them, by the metric's plugin name:
/// `{"coherence": [i0, i1, ...], ...}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Samples(#[serde(with = "ordered")] pub Vec<(String, Vec<usize>)>);

impl Samples {
    /// The sample of metric `plugin`, if the run had it.
    pub fn get(&self, plugin: &str) -> Option<&[usize]> {
        self.0
            .iter()
            .find(|(p, _)| p == plugin)
            .map(|(_, s)| s.as_slice())
    }

    /// The `samples.json` text: a JSON object with one line per metric.
    pub fn to_json(&self) -> String {
        let lines: Vec<String> = self
            .0
            .iter()
            .map(|(k, v)| format!("  {}: {}", Value::from(k.as_str()), Value::from(v.clone())))
            .collect();
        match lines.is_empty() {
            true => "{}\n".into(),
            false => format!("{{\n{}\n}}\n", lines.join(",\n")),
        }
    }

    /// Reads the `samples.json` at `path`.
    pub fn read(path: &Path) -> Result<Samples, RecordError> {
        read_json(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_an_object_of_index_lists_in_order() {
        let s = Samples(vec![
            ("gsnr".into(), vec![3, 1]),
            ("coherence".into(), vec![3, 1, 2]),
        ]);
        let text = serde_json::to_string(&s).unwrap();
        assert_eq!(text, r#"{"gsnr":[3,1],"coherence":[3,1,2]}"#);
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("samples.json");
        crate::write_atomic(&path, s.to_json().as_bytes()).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\n  \"gsnr\": [3,1],\n  \"coherence\": [3,1,2]\n}\n"
        );
        let back = Samples::read(&path).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.get("coherence"), Some(&[3, 1, 2][..]));
        assert_eq!(Samples::default().to_json(), "{}\n");
    }
}
