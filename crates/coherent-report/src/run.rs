//! Reading one run directory: `run.json`, `metrics.jsonl`, `summary.json` and
//! `learning_times.csv`.
//!
//! Every file but `metrics.jsonl` may be missing and every key may be absent: a report is
//! drawn from whatever a run recorded. What is present must be well formed; a torn or invalid
//! line is an error naming the file and the line.

use crate::learning_times::{self, LearningTimes};
use crate::ReportError;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// The measurements of a run: one series of `(step, value)` points per quantity.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    names: Vec<String>,
    series: HashMap<String, Vec<(f64, f64)>>,
    steps: Vec<f64>,
}

impl Metrics {
    /// The quantities in the order they first appear in the file.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The `(step, value)` points of `name`, in file order; `None` if never measured.
    pub fn series(&self, name: &str) -> Option<&[(f64, f64)]> {
        self.series.get(name).map(Vec::as_slice)
    }

    /// The last value of `name`.
    pub fn last(&self, name: &str) -> Option<f64> {
        self.series(name)?.last().map(|p| p.1)
    }

    /// The largest value of `name` and its step (the first step, on ties).
    pub fn peak(&self, name: &str) -> Option<(f64, f64)> {
        self.series(name)?
            .iter()
            .fold(None, |best: Option<(f64, f64)>, &(s, v)| match best {
                Some((_, b)) if b >= v => best,
                _ => Some((s, v)),
            })
            .map(|(s, v)| (v, s))
    }

    /// The last step measured.
    pub fn last_step(&self) -> Option<f64> {
        self.steps.iter().copied().reduce(f64::max)
    }

    fn push(&mut self, name: &str, step: f64, value: f64) {
        if !self.series.contains_key(name) {
            self.names.push(name.to_string());
        }
        self.series
            .entry(name.to_string())
            .or_default()
            .push((step, value));
    }

    /// Parses the text of a `metrics.jsonl`; `path` names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Metrics, ReportError> {
        let mut metrics = Metrics::default();
        for (k, line) in text.lines().enumerate() {
            let line_no = Some(k + 1);
            if line.trim().is_empty() {
                continue;
            }
            let value: Value = serde_json::from_str(line).map_err(|e| {
                ReportError::malformed(path, line_no, format!("invalid JSON line ({e})"))
            })?;
            let Value::Object(record) = value else {
                return Err(ReportError::malformed(
                    path,
                    line_no,
                    "expected one JSON object per line",
                ));
            };
            let step = record.get("step").and_then(Value::as_f64).ok_or_else(|| {
                ReportError::malformed(path, line_no, "the line has no numeric \"step\"")
            })?;
            metrics.steps.push(step);
            for (name, v) in &record {
                // Non-finite values are written as null; they simply leave a gap.
                if let Some(v) = v.as_f64().filter(|v| v.is_finite()) {
                    if name != "step" {
                        metrics.push(name, step, v);
                    }
                }
            }
        }
        Ok(metrics)
    }
}

/// Everything the report uses of one run directory.
#[derive(Clone, Debug)]
pub struct Run {
    /// The directory.
    pub dir: PathBuf,
    /// The run's name (`run.json` `run`, else the directory name).
    pub name: String,
    /// The experiment's name (`run.json` `experiment`, else the parent directory's name).
    pub experiment: String,
    /// The sweep axes of the run and their values, e.g. `("dataset.label_noise", "1.0")`.
    pub params: Vec<(String, String)>,
    /// Layer names in network order (for per-layer coherence).
    pub layers: Vec<String>,
    /// The sample size `m` of each metric plugin, by plugin name.
    pub metric_samples: BTreeMap<String, f64>,
    /// The measurements.
    pub metrics: Metrics,
    /// `summary.json`, if the run finished writing it.
    pub summary: Option<Value>,
    /// `learning_times.csv`, if the run wrote it.
    pub learning_times: Option<LearningTimes>,
}

impl Run {
    /// Reads the run directory `dir`; only `metrics.jsonl` is required.
    pub fn load(dir: &Path) -> Result<Run, ReportError> {
        let meta = read_json(&dir.join("run.json"))?.unwrap_or_default();
        let summary = read_json(&dir.join("summary.json"))?;
        let metrics_path = dir.join("metrics.jsonl");
        let text = std::fs::read_to_string(&metrics_path)
            .map_err(ReportError::io(metrics_path.clone()))?;
        let metrics = Metrics::parse(&text, &metrics_path)?;
        let csv = dir.join("learning_times.csv");
        let learning_times = if csv.exists() {
            Some(learning_times::read(&csv)?)
        } else {
            None
        };
        let from_either = |key: &str| {
            meta.get(key)
                .or_else(|| summary.as_ref().and_then(|s| s.get(key)))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let file_name = |p: &Path| {
            p.file_name()
                .map_or_else(|| p.display().to_string(), |n| n.to_string_lossy().into())
        };
        let name = from_either("run").unwrap_or_else(|| file_name(dir));
        let experiment = from_either("experiment").unwrap_or_else(|| {
            dir.canonicalize()
                .ok()
                .and_then(|d| d.parent().map(file_name))
                .unwrap_or_default()
        });
        let params = meta
            .get("params")
            .or_else(|| summary.as_ref().and_then(|s| s.get("params")))
            .and_then(Value::as_object)
            .map(|p| p.iter().map(|(k, v)| (k.clone(), text_of(v))).collect())
            .unwrap_or_default();
        let layers = meta
            .get("layers")
            .and_then(Value::as_array)
            .map(|ls| {
                ls.iter()
                    .filter_map(|l| l.get("name").and_then(Value::as_str))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let metric_samples = meta
            .get("metric_samples")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_f64()?)))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Run {
            dir: dir.to_path_buf(),
            name,
            experiment,
            params,
            layers,
            metric_samples,
            metrics,
            summary: summary.map(Value::Object),
            learning_times,
        })
    }

    /// The sample size `m` of the m-coherence: `metric_samples.coherence`, else
    /// `coherence / alpha_m` of the first measurement holding both.
    pub fn coherence_m(&self) -> Option<f64> {
        if let Some(m) = self.metric_samples.get("coherence") {
            return Some(*m);
        }
        let (c, a) = (
            self.metrics.series("coherence")?,
            self.metrics.series("alpha_m")?,
        );
        c.iter()
            .find_map(|&(s, c)| {
                let &(_, a) = a.iter().find(|p| p.0 == s)?;
                (a > 0.0).then(|| (c / a).round())
            })
            .filter(|m| *m >= 1.0)
    }

    /// A number from `summary.json` at `path` (e.g. `["final", "test_acc"]`).
    pub fn summary_number(&self, path: &[&str]) -> Option<f64> {
        path.iter()
            .try_fold(self.summary.as_ref()?, |v, k| v.get(k))
            .and_then(Value::as_f64)
    }

    /// The value of the sweep axis `key`, if the run has it.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Reads a JSON object file; `Ok(None)` if it does not exist.
fn read_json(path: &Path) -> Result<Option<Map<String, Value>>, ReportError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ReportError::io(path)(e)),
    };
    match serde_json::from_str(&text) {
        Ok(Value::Object(m)) => Ok(Some(m)),
        Ok(_) => Err(ReportError::malformed(path, None, "expected a JSON object")),
        Err(e) => Err(ReportError::malformed(
            path,
            Some(e.line()),
            format!("invalid JSON ({e})"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_with_different_keys_make_separate_series() {
        let text = "{\"step\":0,\"epoch\":0,\"train_acc\":0.1,\"coherence\":3.0}\n\
                    {\"step\":10,\"epoch\":0.5,\"train_acc\":0.5}\n\
                    \n\
                    {\"step\":20,\"epoch\":1,\"train_acc\":0.7,\"coherence\":2.0,\"test_acc\":null}\n";
        let m = Metrics::parse(text, Path::new("m.jsonl")).unwrap();
        assert_eq!(m.names(), ["epoch", "train_acc", "coherence"]);
        assert_eq!(
            m.series("train_acc").unwrap(),
            [(0.0, 0.1), (10.0, 0.5), (20.0, 0.7)]
        );
        assert_eq!(m.series("coherence").unwrap(), [(0.0, 3.0), (20.0, 2.0)]);
        assert!(m.series("test_acc").is_none());
        assert_eq!(m.peak("coherence"), Some((3.0, 0.0)));
        assert_eq!(m.last("coherence"), Some(2.0));
        assert_eq!(m.last_step(), Some(20.0));
    }

    #[test]
    fn a_torn_last_line_names_the_file_and_the_line() {
        let text =
            "{\"step\":0,\"train_acc\":0.1}\n{\"step\":10,\"train_acc\":0.5}\n{\"step\":20,\"tr";
        let e = Metrics::parse(text, Path::new("runs/x/metrics.jsonl")).unwrap_err();
        let shown = e.to_string();
        assert!(
            shown.starts_with("runs/x/metrics.jsonl:3: invalid JSON line"),
            "{shown}"
        );
    }

    #[test]
    fn a_line_that_is_not_an_object_or_has_no_step_is_an_error() {
        let e = Metrics::parse("[1, 2]\n", Path::new("m")).unwrap_err();
        assert_eq!(e.to_string(), "m:1: expected one JSON object per line");
        let e = Metrics::parse("{\"step\":0}\n{\"epoch\":1}\n", Path::new("m")).unwrap_err();
        assert_eq!(e.to_string(), "m:2: the line has no numeric \"step\"");
    }

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("coherent-report-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_run_with_only_metrics_takes_its_name_from_the_directory() {
        let dir = scratch("only-metrics").join("007-x");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("metrics.jsonl"),
            "{\"step\":0,\"coherence\":4.0,\"alpha_m\":0.04}\n",
        )
        .unwrap();
        let run = Run::load(&dir).unwrap();
        assert_eq!(run.name, "007-x");
        assert!(run.experiment.starts_with("coherent-report-only-metrics"));
        assert!(run.params.is_empty() && run.summary.is_none() && run.learning_times.is_none());
        assert_eq!(run.coherence_m(), Some(100.0), "inferred from alpha_m");
        std::fs::remove_dir_all(dir.parent().unwrap()).unwrap();
    }

    #[test]
    fn run_json_and_summary_json_are_read_when_present() {
        let dir = scratch("full");
        std::fs::write(dir.join("metrics.jsonl"), "{\"step\":0}\n").unwrap();
        std::fs::write(
            dir.join("run.json"),
            r#"{"experiment": "e", "run": "001-label_noise=1.0-seed=0",
                "params": {"dataset.label_noise": "1.0", "seed": 0},
                "layers": [{"name": "fc1"}, {"name": "fc2"}],
                "metric_samples": {"coherence": 1000}}"#,
        )
        .unwrap();
        std::fs::write(
            dir.join("summary.json"),
            r#"{"status": "completed", "final": {"test_acc": 0.5}}"#,
        )
        .unwrap();
        let run = Run::load(&dir).unwrap();
        assert_eq!(
            (run.experiment.as_str(), run.name.as_str()),
            ("e", "001-label_noise=1.0-seed=0")
        );
        assert_eq!(run.param("dataset.label_noise"), Some("1.0"));
        assert_eq!(run.param("seed"), Some("0"), "numbers are read as text");
        assert_eq!(run.layers, ["fc1", "fc2"]);
        assert_eq!(run.coherence_m(), Some(1000.0));
        assert_eq!(run.summary_number(&["final", "test_acc"]), Some(0.5));
        assert_eq!(run.summary_number(&["final", "train_acc"]), None);

        std::fs::write(dir.join("summary.json"), "{\"status\": ").unwrap();
        let e = Run::load(&dir).unwrap_err().to_string();
        assert!(e.contains("summary.json:1: invalid JSON"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
