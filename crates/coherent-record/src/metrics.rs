//! `metrics.jsonl`: one JSON object per measurement point, appended as the run goes.
//!
//! ```text
//! {"step":20,"epoch":0.25,"train_loss":0.41,"train_acc":0.88,...,"coherence":12.8,"elapsed_s":1.9}
//! ```
//!
//! Keys other than `step`, `epoch` and `elapsed_s` are the quantities measured at that point,
//! in the order they were measured; a non-finite value is written as `null`.

use crate::RecordError;
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::Value;
use std::path::Path;

/// One line of `metrics.jsonl`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetricsLine {
    /// The step (updates made so far).
    pub step: usize,
    /// `step / steps per epoch`.
    pub epoch: f64,
    /// The quantities, in order (NaN for a value written as `null`).
    pub values: Vec<(String, f64)>,
    /// Seconds of training so far (over all attempts).
    pub elapsed_s: f64,
}

impl Serialize for MetricsLine {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.values.len() + 3))?;
        map.serialize_entry("step", &self.step)?;
        map.serialize_entry("epoch", &self.epoch)?;
        for (k, v) in &self.values {
            map.serialize_entry(k, v)?;
        }
        map.serialize_entry("elapsed_s", &self.elapsed_s)?;
        map.end()
    }
}

impl MetricsLine {
    /// The line as written: compact JSON and a newline.
    pub fn to_line(&self) -> String {
        let mut line = serde_json::to_string(self).expect("metrics lines serialise");
        line.push('\n');
        line
    }

    /// Parses one line (without its newline); the error says what is wrong.
    pub fn parse(line: &str) -> Result<MetricsLine, String> {
        let value: Value =
            serde_json::from_str(line).map_err(|e| format!("invalid JSON line ({e})"))?;
        let Value::Object(record) = value else {
            return Err("expected one JSON object per line".into());
        };
        let step = record
            .get("step")
            .and_then(Value::as_u64)
            .ok_or("the line has no \"step\" (a whole number)")?;
        let mut out = MetricsLine {
            step: step as usize,
            ..MetricsLine::default()
        };
        for (name, v) in record {
            let number = match v {
                Value::Null => f64::NAN,
                Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
                _ => continue,
            };
            match name.as_str() {
                "step" => {}
                "epoch" => out.epoch = number,
                "elapsed_s" => out.elapsed_s = number,
                _ => out.values.push((name, number)),
            }
        }
        Ok(out)
    }

    /// The value of `name` at this point (`None` if not measured or not finite).
    pub fn get(&self, name: &str) -> Option<f64> {
        self.values
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| *v)
            .filter(|v| v.is_finite())
    }

    /// Every line of the text of a `metrics.jsonl` (blank lines skipped); `path` names the file
    /// in errors, which give the line.
    pub fn parse_all(text: &str, path: &Path) -> Result<Vec<MetricsLine>, RecordError> {
        text.lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(k, l)| {
                MetricsLine::parse(l).map_err(|p| RecordError::malformed(path, Some(k + 1), p))
            })
            .collect()
    }

    /// Every line of the `metrics.jsonl` at `path`.
    pub fn read_all(path: &Path) -> Result<Vec<MetricsLine>, RecordError> {
        let text = std::fs::read_to_string(path).map_err(RecordError::io(path))?;
        MetricsLine::parse_all(&text, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_in_order_with_null_for_non_finite_values() {
        let line = MetricsLine {
            step: 20,
            epoch: 0.25,
            values: vec![("train_acc".into(), 0.5), ("coherence".into(), f64::NAN)],
            elapsed_s: 1.5,
        };
        let text = line.to_line();
        assert_eq!(
            text,
            "{\"step\":20,\"epoch\":0.25,\"train_acc\":0.5,\"coherence\":null,\"elapsed_s\":1.5}\n"
        );
        let back = MetricsLine::parse(text.trim_end()).unwrap();
        assert_eq!((back.step, back.epoch, back.elapsed_s), (20, 0.25, 1.5));
        assert_eq!(back.get("train_acc"), Some(0.5));
        assert!(back.values[1].1.is_nan() && back.get("coherence").is_none());
    }

    #[test]
    fn bad_lines_name_the_file_and_the_line() {
        let text = "{\"step\":0}\n\n{\"step\":10}\n{\"step\":20,\"tr";
        let e = MetricsLine::parse_all(text, Path::new("runs/x/metrics.jsonl")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("runs/x/metrics.jsonl:4: invalid JSON line"),
            "{e}"
        );
        let e = MetricsLine::parse_all("[1]\n", Path::new("m")).unwrap_err();
        assert_eq!(e.to_string(), "m:1: expected one JSON object per line");
        let e = MetricsLine::parse_all("{\"epoch\":1}\n", Path::new("m")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "m:1: the line has no \"step\" (a whole number)"
        );
    }
}
