//! Reading one run directory: `run.json`, `metrics.jsonl`, `summary.json` and
//! `learning_times.csv`.
//!
//! Every file but `metrics.jsonl` may be missing and every key may be absent: a report is
//! drawn from whatever a run recorded. What is present must be well formed; a torn or invalid
//! line is an error naming the file and the line.

use crate::learning_times::LearningTimes;
use crate::ReportError;
use coherent_record::{
    files, learning_times, read_json, MetricsLine, RecordError, RunMeta, Summary,
};
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

    /// The series of the lines of a `metrics.jsonl`.
    pub fn from_lines(lines: &[MetricsLine]) -> Metrics {
        let mut metrics = Metrics::default();
        for line in lines {
            let step = line.step as f64;
            metrics.steps.push(step);
            for (name, v) in &line.values {
                // Non-finite values are written as null; they simply leave a gap.
                if v.is_finite() {
                    metrics.push(name, step, *v);
                }
            }
        }
        metrics
    }

    /// Parses the text of a `metrics.jsonl`; `path` names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Metrics, ReportError> {
        Ok(Metrics::from_lines(&MetricsLine::parse_all(text, path)?))
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
    pub summary: Option<Summary>,
    /// `learning_times.csv`, if the run wrote it.
    pub learning_times: Option<LearningTimes>,
}

impl Run {
    /// A run of `experiment` named `name` (its directory too) that recorded nothing yet: for
    /// building runs in code.
    pub fn named(experiment: &str, name: &str) -> Run {
        Run {
            dir: PathBuf::from(name),
            name: name.into(),
            experiment: experiment.into(),
            params: Vec::new(),
            layers: Vec::new(),
            metric_samples: BTreeMap::new(),
            metrics: Metrics::default(),
            summary: None,
            learning_times: None,
        }
    }

    /// The same run with the sweep values `params`.
    pub fn with_params(mut self, params: &[(&str, &str)]) -> Run {
        self.params = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self
    }

    /// Reads the run directory `dir`; only `metrics.jsonl` is required.
    pub fn load(dir: &Path) -> Result<Run, ReportError> {
        let meta: Option<RunMeta> = optional(read_json(&dir.join(files::RUN)))?;
        let summary: Option<Summary> = optional(read_json(&dir.join(files::SUMMARY)))?;
        let metrics = Metrics::from_lines(&MetricsLine::read_all(&dir.join(files::METRICS))?);
        let csv = dir.join(files::LEARNING_TIMES);
        let learning_times = match csv.exists() {
            true => Some(LearningTimes::from_rows(&learning_times::read(&csv)?)),
            false => None,
        };
        let file_name = |p: &Path| {
            p.file_name()
                .map_or_else(|| p.display().to_string(), |n| n.to_string_lossy().into())
        };
        let from_either = |m: Option<&str>, s: Option<&str>| {
            m.or(s).filter(|v| !v.is_empty()).map(str::to_string)
        };
        let name = from_either(
            meta.as_ref().map(|m| m.id.run.as_str()),
            summary.as_ref().map(|s| s.id.run.as_str()),
        )
        .unwrap_or_else(|| file_name(dir));
        let experiment = from_either(
            meta.as_ref().map(|m| m.id.experiment.as_str()),
            summary.as_ref().map(|s| s.id.experiment.as_str()),
        )
        .unwrap_or_else(|| {
            dir.canonicalize()
                .ok()
                .and_then(|d| d.parent().map(file_name))
                .unwrap_or_default()
        });
        let params = match (&meta, &summary) {
            (Some(m), _) if !m.id.params.is_empty() => &m.id.params,
            (_, Some(s)) => &s.id.params,
            (Some(m), None) => &m.id.params,
            (None, None) => &Vec::new(),
        };
        let params = params
            .iter()
            .map(|(k, v)| (k.clone(), v.0.clone()))
            .collect();
        let (layers, metric_samples) = match &meta {
            Some(m) => (
                m.layers.iter().map(|l| l.name.clone()).collect(),
                m.metric_samples
                    .iter()
                    .map(|(k, v)| (k.clone(), *v as f64))
                    .collect(),
            ),
            None => (Vec::new(), BTreeMap::new()),
        };
        Ok(Run {
            dir: dir.to_path_buf(),
            name,
            experiment,
            params,
            layers,
            metric_samples,
            metrics,
            summary: summary.map(Summary::upgrade),
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

    /// The value of the sweep axis `key`, if the run has it.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// The record at hand, or `None` when its file does not exist.
fn optional<T>(read: Result<T, RecordError>) -> Result<Option<T>, ReportError> {
    match read {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e.into()),
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
        assert_eq!(m.names(), ["train_acc", "coherence"]);
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
        assert_eq!(
            e.to_string(),
            "m:2: the line has no \"step\" (a whole number)"
        );
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
        let summary = run.summary.as_ref().unwrap();
        assert_eq!(summary.last.get("test_acc"), Some(&0.5));
        assert_eq!(summary.last.get("train_acc"), None);

        std::fs::write(dir.join("summary.json"), "{\"status\": ").unwrap();
        let e = Run::load(&dir).unwrap_err().to_string();
        assert!(e.contains("summary.json:1: invalid JSON"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
