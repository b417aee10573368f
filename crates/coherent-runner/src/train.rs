//! The training loop of one run, and its record on disk.

use crate::evaluate::evaluate;
use crate::logging;
use crate::optim::Sgd;
use crate::plan::RunPlan;
use crate::record::{RecordError, RunDir};
use crate::summary::Tracker;
use coherent_core::{Batch, BatchGrads, CoherenceMetric, LayerInfo, Model, Rng, Split};
use indicatif::ProgressBar;
use serde_json::{json, Map, Value};
use std::path::Path;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Examples per backward pass when a metric streams its sample.
const METRIC_CHUNK: usize = 500;

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Every step ran.
    Completed,
    /// A loss or an update became NaN or infinite at this step; training stopped there.
    Diverged(usize),
}

/// Streams a metric's fixed sample through the model and returns its values.
fn measure_metric(
    model: &mut dyn Model,
    metric: &mut dyn CoherenceMetric,
    layers: &[LayerInfo],
    train: &Split,
    sample: &[usize],
    batch: &mut Batch,
    grads: &mut BatchGrads,
) -> Vec<(String, f64)> {
    metric.begin(layers);
    let chunk_size = metric.chunk_size().unwrap_or(METRIC_CHUNK).max(1);
    for chunk in sample.chunks(chunk_size) {
        batch.gather(train, chunk);
        model.forward_backward(batch, metric.needs(), grads);
        metric.accumulate(grads, batch);
    }
    metric.finish()
}

/// Trains the run of `plan`, writing its directory `dir`; returns `summary.json`.
pub fn train(
    mut plan: RunPlan,
    experiment: &str,
    dir: &Path,
    bar: &ProgressBar,
) -> Result<Value, RecordError> {
    let mut run = RunDir::create(dir)?;
    let log_path = dir.join("log.txt");
    let log = std::fs::File::create(&log_path).map_err(|source| RecordError {
        path: log_path,
        source,
    })?;
    logging::set_run_log(Some(log));
    let result = train_in(&mut plan, experiment, &mut run, bar);
    logging::set_run_log(None);
    result
}

fn train_in(
    plan: &mut RunPlan,
    experiment: &str,
    run: &mut RunDir,
    bar: &ProgressBar,
) -> Result<Value, RecordError> {
    let clock = Instant::now();
    let name = plan.spec.dir_name();
    let params: Map<String, Value> = plan
        .spec
        .params
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let layers: Vec<LayerInfo> = plan.model.layers().to_vec();
    run.write("manifest.toml", plan.resolved.as_bytes())?;
    let mut meta = json!({
        "program": "coherent",
        "version": env!("CARGO_PKG_VERSION"),
        "git_commit": git_commit(),
        "host": hostname(),
        "experiment": experiment,
        "run": name,
        "index": plan.spec.index,
        "params": params,
        "seed": plan.seed,
        "num_params": plan.model.num_params(),
        "layers": layers.iter().map(|l| json!({"name": l.name, "kind": l.kind, "params": l.params})).collect::<Vec<_>>(),
        "started": utc_timestamp(SystemTime::now()),
    });
    run.write_json("run.json", &meta)?;

    let train = plan.dataset.train();
    let test = plan.dataset.test();
    let n = train.len();
    let t = &plan.training;
    let steps_per_epoch = n.div_ceil(t.batch_size);
    let total = (t.epochs * steps_per_epoch).min(t.max_steps.unwrap_or(usize::MAX));
    let eval_every = plan
        .evaluation
        .every_steps
        .or(plan.metrics.iter().map(|(_, m)| m.every_steps()).min())
        .unwrap_or(steps_per_epoch);
    let eval_limit = plan.evaluation.train_limit.unwrap_or(usize::MAX);
    let samples: Vec<Vec<usize>> = plan
        .metrics
        .iter()
        .enumerate()
        .map(|(k, (_, m))| {
            Rng::derived(plan.seed, &format!("metric-sample-{k}"))
                .sample_indices(n, m.sample_size())
        })
        .collect();
    log::info!(
        "run {name}: {} parameters, {n} training examples, {total} steps of {} ({steps_per_epoch} per epoch)",
        plan.model.num_params(),
        t.batch_size
    );

    let mut direction: Vec<Vec<f32>> = layers.iter().map(|l| vec![0.0; l.params]).collect();
    plan.aggregator.begin(&layers);
    let request = plan.aggregator.needs();
    let mut sgd = Sgd::new(plan.optimizer);
    let mut shuffle = Rng::derived(plan.seed, "shuffle");
    let mut order: Vec<usize> = (0..n).collect();
    let (mut batch, mut grads, mut tracker) =
        (Batch::default(), BatchGrads::default(), Tracker::default());
    let mut status = Status::Completed;
    bar.set_length(total as u64);
    bar.set_position(0);

    let mut step = 0;
    loop {
        let due = |every: usize| step == 0 || step == total || step % every == 0;
        if due(eval_every) || plan.metrics.iter().any(|(_, m)| due(m.every_steps())) {
            let mut values = evaluate(plan.model.as_ref(), train, eval_limit, "train");
            values.extend(evaluate(plan.model.as_ref(), test, usize::MAX, "test"));
            for ((_, metric), sample) in plan.metrics.iter_mut().zip(&samples) {
                if due(metric.every_steps()) {
                    let model = plan.model.as_mut();
                    values.extend(measure_metric(
                        model,
                        metric.as_mut(),
                        &layers,
                        train,
                        sample,
                        &mut batch,
                        &mut grads,
                    ));
                }
            }
            let finite = values.iter().all(|(_, v)| v.is_finite());
            tracker.record(step, &values);
            let mut record = Map::new();
            record.insert("step".into(), json!(step));
            record.insert("epoch".into(), json!(step as f64 / steps_per_epoch as f64));
            for (k, v) in &values {
                record.insert(k.clone(), json!(v));
            }
            record.insert("elapsed_s".into(), json!(clock.elapsed().as_secs_f64()));
            run.append_metrics(&Value::Object(record))?;
            let show = |k: &str| tracker.last(k).map_or("-".into(), |v| format!("{v:.3}"));
            log::info!(
                "step {step:>6}  train_acc {}  test_acc {}  coherence {}",
                show("train_acc"),
                show("test_acc"),
                show("coherence")
            );
            bar.set_message(format!(
                "{name}  coherence {}  test_acc {}",
                show("coherence"),
                show("test_acc")
            ));
            if !finite {
                status = Status::Diverged(step);
                break;
            }
        }
        if step == total {
            break;
        }
        let pos = (step % steps_per_epoch) * t.batch_size;
        if pos == 0 {
            shuffle.shuffle(&mut order);
        }
        batch.gather(train, &order[pos..(pos + t.batch_size).min(n)]);
        plan.model.forward_backward(&batch, request, &mut grads);
        if !grads.losses.iter().all(|l| l.is_finite()) {
            status = Status::Diverged(step);
            break;
        }
        if request.blocks {
            let (aggregator, direction) = (&mut plan.aggregator, &mut direction);
            plan.model
                .per_example_blocks(&mut |src| aggregator.aggregate(&grads, Some(src), direction));
        } else {
            plan.aggregator.aggregate(&grads, None, &mut direction);
        }
        plan.aggregator.finish(&plan.model.params(), &mut direction);
        if !direction.iter().flatten().all(|v| v.is_finite()) {
            status = Status::Diverged(step);
            break;
        }
        sgd.step(plan.model.params_mut(), &direction);
        step += 1;
        bar.inc(1);
    }

    let (mut last, peak) = tracker.to_json();
    // Adjusted overfit (Chatterjee 2020): training accuracy above what the pristine share and
    // the test accuracy explain, `train_acc - (eps / classes + (1 - eps) test_acc)`, with eps
    // the fraction of training examples whose labels were corrupted.
    let corrupted = train.corrupted.iter().filter(|&&c| c).count();
    let eps = corrupted as f64 / n.max(1) as f64;
    if let (Some(tr), Some(te), Some(map)) = (
        tracker.last("train_acc"),
        tracker.last("test_acc"),
        last.as_object_mut(),
    ) {
        let classes = plan.dataset.outputs().max(1) as f64;
        map.insert(
            "adjusted_overfit".into(),
            json!(tr - (eps / classes + (1.0 - eps) * te)),
        );
    }
    let (status_text, diverged_at) = match status {
        Status::Completed => ("completed", Value::Null),
        Status::Diverged(s) => {
            log::warn!("run {name} diverged at step {s} (non-finite loss or update); stopped");
            ("diverged", json!(s))
        }
    };
    let summary = json!({
        "experiment": experiment,
        "run": name,
        "index": plan.spec.index,
        "params": params,
        "status": status_text,
        "diverged_at_step": diverged_at,
        "steps": step,
        "epochs": step as f64 / steps_per_epoch as f64,
        "elapsed_s": clock.elapsed().as_secs_f64(),
        "corrupted_fraction": eps,
        "final": last,
        "peak": peak,
    });
    meta["ended"] = json!(utc_timestamp(SystemTime::now()));
    meta["status"] = json!(status_text);
    run.write_json("run.json", &meta)?;
    run.write_json("summary.json", &summary)?;
    run.finish()?;
    Ok(summary)
}

fn git_commit() -> Value {
    std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map_or(Value::Null, |o| {
            json!(String::from_utf8_lossy(&o.stdout).trim())
        })
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown".into())
}

/// `YYYY-MM-DDThh:mm:ssZ` (UTC).
pub fn utc_timestamp(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // civil-from-days (H. Hinnant)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_are_utc_calendar_dates() {
        assert_eq!(utc_timestamp(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_709_210_096); // 2024-02-29 12:34:56
        assert_eq!(utc_timestamp(t), "2024-02-29T12:34:56Z");
    }
}
