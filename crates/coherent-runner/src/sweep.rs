//! Sweeps: a manifest's `[sweep]` grid expanded into an indexed, deterministic list of runs.
//!
//! ```toml
//! [sweep]
//! "dataset.label_noise" = [0.0, 1.0]   # any `section.key` of dataset, model, training,
//! seeds = [0, 1]                        # aggregator or evaluation; `seeds` sets `seed`
//! aggregator = [{ plugin = "mean" }, { plugin = "winsorized", c = 2 }]   # whole sections
//! ```
//!
//! Runs are the Cartesian product of the axes in file order, `seeds` last, the last axis
//! varying fastest; run `i` of a manifest is the same on every invocation, so a Slurm array
//! task id names exactly one run. A whole-section axis replaces the section's table; it is
//! applied before the `section.key` axes, which can so set keys shared by all its values.

use coherent_core::ConfigError;
use std::borrow::Cow;
use std::ops::Range;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// Sections whose keys a sweep may set.
pub const SWEEPABLE: &[&str] = &["dataset", "model", "training", "aggregator", "evaluation"];

/// The most runs one manifest may expand to (each run is planned and listed up front).
pub const MAX_RUNS: usize = 10_000;

/// One run of a manifest: its index, its sweep values and its resolved table.
#[derive(Clone, Debug)]
pub struct RunSpec {
    /// Position in the sweep (0-based).
    pub index: usize,
    /// `(key, value)` of each sweep axis, as written in the manifest.
    pub params: Vec<(String, String)>,
    /// The manifest with this run's sweep values applied and `[sweep]` removed.
    pub table: Spanned<DeValue<'static>>,
}

impl RunSpec {
    /// Directory name of the run: its index and sweep values (`001-label_noise=1.0-seed=0`).
    pub fn dir_name(&self) -> String {
        let mut name = format!("{:03}", self.index);
        for (key, value) in &self.params {
            let short = key.rsplit('.').next().unwrap_or(key);
            // A table's words (`winsorized c=2`) become `winsorized_c2`.
            let words: Vec<String> = value
                .split(' ')
                .map(|w| sanitize(&w.replace('=', "")))
                .collect();
            let value = words.join("_");
            name.push_str(&format!("-{short}={value}"));
        }
        name
    }
}

fn sanitize(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || "+-.".contains(c) {
            out.push(c);
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_matches('_').to_string()
}

struct Axis {
    key: String,
    key_span: Range<usize>,
    values: Vec<Spanned<DeValue<'static>>>,
}

impl Axis {
    /// Whether the axis sets whole sections (`aggregator = [{ plugin = ... }, ...]`).
    fn whole_section(&self) -> bool {
        !self.key.contains('.') && self.key != "seed"
    }
}

fn flatten(
    prefix: &str,
    table: &DeTable<'static>,
    out: &mut Vec<(String, Range<usize>, Spanned<DeValue<'static>>)>,
) {
    for (k, v) in table.iter() {
        let key = if prefix.is_empty() {
            k.get_ref().to_string()
        } else {
            format!("{prefix}.{}", k.get_ref())
        };
        match v.get_ref() {
            DeValue::Table(t) => flatten(&key, t, out),
            _ => out.push((key, k.span(), v.clone())),
        }
    }
}

/// How a sweep value is shown: strings without quotes, a table as its plugin and its
/// other keys (`winsorized c=2`), anything else as written.
fn value_text(source: &'static str, v: &Spanned<DeValue<'static>>) -> String {
    match v.get_ref() {
        DeValue::String(s) => s.to_string(),
        DeValue::Table(t) => {
            let mut words: Vec<String> = t
                .get("plugin")
                .map(|p| value_text(source, p))
                .into_iter()
                .collect();
            for (k, v) in t.iter().filter(|(k, _)| k.get_ref() != "plugin") {
                words.push(format!(
                    "{}={}",
                    k.get_ref(),
                    value_text(source, v).replace(' ', "_")
                ));
            }
            words.join(" ")
        }
        _ => source.get(v.span()).unwrap_or("?").to_string(),
    }
}

fn axes(sweep: &Spanned<DeValue<'static>>) -> Result<Vec<Axis>, Vec<ConfigError>> {
    let DeValue::Table(table) = sweep.get_ref() else {
        return Err(vec![ConfigError::new(
            Some(sweep.span()),
            "`sweep` must be a table of lists",
        )]);
    };
    let mut entries = Vec::new();
    flatten("", table, &mut entries);
    let (mut axes, mut errors, mut seeds) = (Vec::new(), Vec::new(), None);
    for (key, key_span, value) in entries {
        let DeValue::Array(items) = value.get_ref() else {
            errors.push(ConfigError::new(
                Some(value.span()),
                format!("sweep `{key}` must be a list of values"),
            ));
            continue;
        };
        if items.is_empty() {
            errors.push(ConfigError::new(
                Some(value.span()),
                format!("sweep `{key}` has no values"),
            ));
            continue;
        }
        let axis = Axis {
            key: key.clone(),
            key_span: key_span.clone(),
            values: items.iter().cloned().collect(),
        };
        let section = key.split('.').next().unwrap_or("");
        if key == "seeds" {
            seeds = Some(Axis {
                key: "seed".into(),
                ..axis
            });
        } else if key.split('.').count() == 2 && SWEEPABLE.contains(&section) {
            axes.push(axis);
        } else if !key.contains('.') && SWEEPABLE.contains(&section) {
            match axis.values.iter().find(|v| !matches!(v.get_ref(), DeValue::Table(_))) {
                Some(bad) => errors.push(
                    ConfigError::new(
                        Some(bad.span()),
                        format!("sweep `{key}` must list whole `[{key}]` tables"),
                    )
                    .with_help(format!(
                        "write e.g. {key} = [{{ plugin = \"...\" }}, ...], or sweep one key as \"{key}.KEY\""
                    )),
                ),
                None => axes.push(axis),
            }
        } else {
            errors.push(
                ConfigError::new(Some(key_span), format!("cannot sweep `{key}`")).with_help(
                    format!(
                        "sweep `seeds`, `SECTION.KEY` or whole `SECTION` tables, with SECTION one of {}",
                        SWEEPABLE.join(", ")
                    ),
                ),
            );
        }
    }
    axes.extend(seeds);
    if errors.is_empty() {
        Ok(axes)
    } else {
        Err(errors)
    }
}

fn set(root: &mut DeTable<'static>, axis: &Axis, value: &Spanned<DeValue<'static>>) {
    let key = |k: &str, span: Range<usize>| Spanned::new(span, Cow::Owned(k.to_string()));
    if axis.key == "seed" || axis.whole_section() {
        root.insert(key(&axis.key, axis.key_span.clone()), value.clone());
        return;
    }
    let (section, field) = axis.key.split_once('.').expect("axis keys are section.key");
    let entry = root.get_mut(section);
    match entry.map(|e| e.get_mut()) {
        Some(DeValue::Table(t)) => {
            t.insert(key(field, axis.key_span.clone()), value.clone());
        }
        _ => {
            let mut t = DeTable::new();
            t.insert(key(field, axis.key_span.clone()), value.clone());
            root.insert(
                key(section, axis.key_span.clone()),
                Spanned::new(value.span(), DeValue::Table(t)),
            );
        }
    }
}

/// Expands the manifest `root` (parsed from `source`) into its runs.
pub fn expand(
    root: &DeTable<'static>,
    source: &'static str,
) -> Result<Vec<RunSpec>, Vec<ConfigError>> {
    let axes = match root.get("sweep") {
        Some(sweep) => axes(sweep)?,
        None => vec![],
    };
    let total = axes
        .iter()
        .try_fold(1usize, |n, a| n.checked_mul(a.values.len()))
        .filter(|&n| n <= MAX_RUNS);
    let Some(total) = total else {
        let sizes: Vec<String> = axes.iter().map(|a| a.values.len().to_string()).collect();
        return Err(vec![ConfigError::new(
            root.get("sweep").map(|s| s.span()),
            format!(
                "the sweep has {} runs, more than the {MAX_RUNS} a manifest may have",
                sizes.join(" x ")
            ),
        )
        .with_help("split the sweep into several manifests")]);
    };
    let mut base = root.clone();
    base.remove("sweep");
    let span = 0..source.len();
    Ok((0..total)
        .map(|index| {
            let mut table = base.clone();
            let mut params = Vec::new();
            let mut rest = index;
            let mut picks = vec![0; axes.len()];
            for (k, axis) in axes.iter().enumerate().rev() {
                picks[k] = rest % axis.values.len();
                rest /= axis.values.len();
            }
            let chosen = || axes.iter().zip(&picks).map(|(a, &p)| (a, &a.values[p]));
            // Whole sections first, so that `section.key` axes set keys inside them.
            for (axis, value) in chosen().filter(|(a, _)| a.whole_section()) {
                set(&mut table, axis, value);
            }
            for (axis, value) in chosen().filter(|(a, _)| !a.whole_section()) {
                set(&mut table, axis, value);
            }
            for (axis, value) in chosen() {
                params.push((axis.key.clone(), value_text(source, value)));
            }
            RunSpec {
                index,
                params,
                table: Spanned::new(span.clone(), DeValue::Table(table)),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runs(text: &'static str) -> Result<Vec<RunSpec>, Vec<ConfigError>> {
        expand(&DeTable::parse(text).unwrap().into_inner(), text)
    }

    #[test]
    fn grid_is_the_product_with_the_last_axis_fastest() {
        let text = "seed = 5\n[dataset]\nlabel_noise = 0.3\n[sweep]\nseeds = [0, 1]\n\"dataset.label_noise\" = [0.0, 0.5, 1.0]\n";
        let r = runs(text).unwrap();
        assert_eq!(r.len(), 6);
        let names: Vec<String> = r.iter().map(|s| s.dir_name()).collect();
        assert_eq!(names[0], "000-label_noise=0.0-seed=0");
        assert_eq!(names[1], "001-label_noise=0.0-seed=1");
        assert_eq!(names[5], "005-label_noise=1.0-seed=1");
        let DeValue::Table(t) = r[3].table.get_ref() else {
            panic!()
        };
        assert!(t.get("sweep").is_none());
        let noise = crate::manifest::get(&r[3].table, "dataset").and_then(|d| {
            let DeValue::Table(d) = d.get_ref() else {
                return None;
            };
            d.get("label_noise").map(|v| &text[v.span()])
        });
        assert_eq!(noise, Some("0.5"));
        assert_eq!(
            r[3].params,
            vec![
                ("dataset.label_noise".into(), "0.5".into()),
                ("seed".into(), "1".into())
            ]
        );
    }

    #[test]
    fn dotted_keys_and_missing_sections_work() {
        let text = "[sweep]\nmodel.hidden = [[64], [128, 128]]\n";
        let r = runs(text).unwrap();
        assert_eq!(r[1].dir_name(), "001-hidden=128_128");
    }

    #[test]
    fn bad_axes_are_located() {
        let text = "[sweep]\n\"metrics.sample\" = [1]\n\"dataset.x\" = 3\n\"model.y\" = []\n";
        let errors = runs(text).unwrap_err();
        assert_eq!(errors.len(), 3);
        assert_eq!(&text[errors[0].span.clone().unwrap()], "\"metrics.sample\"");
        assert!(errors[1].message.contains("must be a list"));
        assert!(errors[2].message.contains("no values"));
    }

    #[test]
    fn oversized_sweeps_are_refused_before_expanding() {
        let axes: String = (0..70)
            .map(|k| format!("\"dataset.k{k}\" = [1, 2]\n"))
            .collect();
        let text: &'static str = Box::leak(format!("[sweep]\n{axes}").into_boxed_str());
        let errors = runs(text).unwrap_err();
        assert!(
            errors[0].message.contains("2 x 2 x"),
            "{}",
            errors[0].message
        );
        assert!(errors[0].span.is_some());
    }

    fn section(run: &RunSpec, name: &str, text: &'static str) -> Vec<(String, &'static str)> {
        let Some(DeValue::Table(t)) = crate::manifest::get(&run.table, name).map(|v| v.get_ref())
        else {
            return vec![];
        };
        t.iter()
            .map(|(k, v)| (k.get_ref().to_string(), &text[v.span()]))
            .collect()
    }

    #[test]
    fn whole_sections_replace_the_table_and_keys_apply_inside() {
        let text = "[aggregator]\nplugin = \"median\"\nx = 1\n[sweep]\n\"aggregator.lr_scale\" = [1]\naggregator = [{ plugin = \"mean\" }, { plugin = \"winsorized\", c = 2 }]\n";
        let r = runs(text).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].dir_name(), "000-lr_scale=1-aggregator=mean");
        assert_eq!(r[1].dir_name(), "001-lr_scale=1-aggregator=winsorized_c2");
        assert_eq!(
            r[1].params[1],
            ("aggregator".into(), "winsorized c=2".into())
        );
        assert_eq!(
            section(&r[1], "aggregator", text),
            vec![
                ("plugin".into(), "\"winsorized\""),
                ("c".into(), "2"),
                ("lr_scale".into(), "1")
            ]
        );
        assert_eq!(
            section(&r[0], "aggregator", text).len(),
            2,
            "the base table is replaced"
        );
    }

    #[test]
    fn whole_section_axes_hold_tables() {
        let text =
            "[sweep]\naggregator = [{ plugin = \"mean\" }, 3]\nmetrics = [{ plugin = \"x\" }]\n";
        let errors = runs(text).unwrap_err();
        assert_eq!(errors.len(), 2);
        assert_eq!(&text[errors[0].span.clone().unwrap()], "3");
        assert!(errors[0].message.contains("whole `[aggregator]` tables"));
        assert_eq!(&text[errors[1].span.clone().unwrap()], "metrics");
    }

    #[test]
    fn no_sweep_is_one_run() {
        let r = runs("seed = 1").unwrap();
        assert_eq!((r.len(), r[0].dir_name().as_str()), (1, "000"));
    }
}
