//! The training loop of one run, and its record on disk.

use crate::checkpoint::{manifest_hash, Checkpoint};
use crate::early_stop;
use crate::evaluate::evaluate;
use crate::fractions::LossFractions;
use crate::learning::LearningTimes;
use crate::logging;
use crate::meta::{git_commit, hostname, utc_timestamp};
use crate::optim::Sgd;
use crate::plan::RunPlan;
use crate::progress::{invalid, Progress};
use crate::record::{RecordError, RunDir};
use crate::summary::Tracker;
use coherent_core::{Batch, BatchGrads, CoherenceMetric, LayerInfo, Model, Rng, Split};
use indicatif::ProgressBar;
use serde_json::{json, Map, Value};
use std::path::Path;
use std::time::{Instant, SystemTime};

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
        model.forward_backward(batch, &metric.needs(), grads);
        metric.accumulate(grads, batch);
    }
    metric.finish()
}

/// Trains the run of `plan`, writing its directory `dir`; returns `summary.json`. With
/// `resume`, continues from the directory's checkpoint when it has one.
pub fn train(
    mut plan: RunPlan,
    experiment: &str,
    dir: &Path,
    bar: &ProgressBar,
    resume: bool,
) -> Result<Value, RecordError> {
    std::fs::create_dir_all(dir).map_err(|source| RecordError {
        path: dir.to_path_buf(),
        source,
    })?;
    let log_path = dir.join("log.txt");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(resume)
        .truncate(!resume)
        .open(&log_path)
        .map_err(|source| RecordError {
            path: log_path,
            source,
        })?;
    logging::set_run_log(Some(log));
    let result = train_in(&mut plan, experiment, dir, bar, resume);
    logging::set_run_log(None);
    result
}

/// The start time of the attempt a resumed run continues.
fn previous_start(dir: &Path) -> Option<Value> {
    let text = std::fs::read_to_string(dir.join("run.json")).ok()?;
    let meta: Value = serde_json::from_str(&text).ok()?;
    meta.get("started").filter(|v| v.is_string()).cloned()
}

fn train_in(
    plan: &mut RunPlan,
    experiment: &str,
    dir: &Path,
    bar: &ProgressBar,
    resume: bool,
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
    let mut metric_samples = Map::new();
    for (plugin, m) in &plan.metrics {
        metric_samples
            .entry(plugin.clone())
            .or_insert(json!(m.sample_size()));
    }
    let t = &plan.training;
    let n = plan.dataset.train().len();
    let steps_per_epoch = n.div_ceil(t.batch_size);
    let total = (t.epochs * steps_per_epoch).min(t.max_steps.unwrap_or(usize::MAX));
    let hash = manifest_hash(&plan.resolved);
    let checkpoint = match resume {
        true => Checkpoint::load(dir).map_err(|e| invalid(dir, e))?,
        false => None,
    };
    // A checkpoint of another manifest (edited since, or another run's) is not resumed: the
    // run starts again.
    let checkpoint = checkpoint.filter(|c| {
        let fits = c.header.manifest_hash == hash && c.header.step <= total;
        if !fits {
            log::warn!(
                "{}: the checkpoint was taken with a different manifest; the run starts again",
                dir.display()
            );
        }
        fits
    });
    let started = previous_start(dir).filter(|_| checkpoint.is_some());
    let (mut run, kept) = match &checkpoint {
        Some(c) => RunDir::resume(dir, c.header.step)?,
        None => (RunDir::create(dir)?, Vec::new()),
    };
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
        "metric_samples": metric_samples,
        "started": started.unwrap_or_else(|| json!(utc_timestamp(SystemTime::now()))),
        "resumed_at_step": checkpoint.as_ref().map(|c| c.header.step),
        "resumed": checkpoint.as_ref().map(|_| utc_timestamp(SystemTime::now())),
    });
    run.write_json("run.json", &meta)?;

    let train = plan.dataset.train();
    let test = plan.dataset.test();
    let checkpoint_every = t.checkpoint_every.unwrap_or(steps_per_epoch);
    let eval_every = plan
        .evaluation
        .every_steps
        .or(plan.metrics.iter().map(|(_, m)| m.every_steps()).min())
        .unwrap_or(steps_per_epoch);
    let eval_limit = plan.evaluation.train_limit.unwrap_or(usize::MAX);
    let noisy = train.corrupted.iter().any(|&c| c);
    let fractions_every = plan
        .evaluation
        .fractions_every
        .unwrap_or(if noisy { 10 } else { 0 });
    // Every metric measures the same fixed sample: one stream of draws, so a smaller sample is
    // part of a larger one and metrics of one run can be compared example for example.
    let samples: Vec<Vec<usize>> = plan
        .metrics
        .iter()
        .map(|(_, m)| Rng::derived(plan.seed, "metric-sample-0").sample_indices(n, m.sample_size()))
        .collect();

    let mut direction: Vec<Vec<f32>> = layers.iter().map(|l| vec![0.0; l.params]).collect();
    plan.aggregator.begin(&layers);
    let request = plan.aggregator.needs();
    let mut sgd = Sgd::new(plan.optimizer);
    let mut progress = Progress {
        step: 0,
        shuffle: Rng::derived(plan.seed, "shuffle"),
        order: (0..n).collect(),
        fractions: (fractions_every > 0 && noisy).then(|| LossFractions::new(plan.seed)),
        learning: LearningTimes::default(),
        tracker: Tracker::default(),
        points: Vec::new(),
        elapsed_before: 0.0,
    };
    if let Some(c) = checkpoint {
        progress.restore(
            plan.model.as_mut(),
            plan.aggregator.as_mut(),
            &mut sgd,
            c,
            &kept,
            dir,
        )?;
        log::info!(
            "run {name}: resumed from the checkpoint at step {}",
            progress.step
        );
    }
    log::info!(
        "run {name}: {} parameters, {n} training examples, {total} steps of {} ({steps_per_epoch} per epoch)",
        plan.model.num_params(),
        t.batch_size
    );
    let (mut batch, mut grads) = (Batch::default(), BatchGrads::default());
    let mut correct = Vec::new();
    let mut status = Status::Completed;
    bar.set_length(total as u64);
    bar.set_position(progress.step as u64);
    let elapsed = |p: &Progress| p.elapsed_before + clock.elapsed().as_secs_f64();

    loop {
        let step = progress.step;
        if step > 0 && step < total && checkpoint_every > 0 && step.is_multiple_of(checkpoint_every)
        {
            let elapsed_s = elapsed(&progress);
            progress
                .checkpoint(
                    hash,
                    elapsed_s,
                    plan.model.as_ref(),
                    &sgd,
                    plan.aggregator.as_ref(),
                )
                .save(dir)?;
        }
        let due = |every: usize| step == 0 || step == total || step.is_multiple_of(every);
        if due(eval_every) || plan.metrics.iter().any(|(_, m)| due(m.every_steps())) {
            let learn = plan.evaluation.learning_times.then_some(&mut correct);
            let mut values = evaluate(plan.model.as_ref(), train, eval_limit, "train", learn);
            if plan.evaluation.learning_times {
                progress.learning.record(step, &correct);
            }
            values.extend(evaluate(
                plan.model.as_ref(),
                test,
                usize::MAX,
                "test",
                None,
            ));
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
            if let Some(f) = &mut progress.fractions {
                values.extend(f.report());
            }
            let finite = values.iter().all(|(_, v)| v.is_finite());
            progress.record(step, &values);
            let mut record = Map::new();
            record.insert("step".into(), json!(step));
            record.insert("epoch".into(), json!(step as f64 / steps_per_epoch as f64));
            for (k, v) in &values {
                record.insert(k.clone(), json!(v));
            }
            record.insert("elapsed_s".into(), json!(elapsed(&progress)));
            run.append_metrics(&Value::Object(record))?;
            let show = |k: &str| {
                let v = progress.tracker.last(k);
                v.map_or("-".into(), |v| format!("{v:.3}"))
            };
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
        if step >= total {
            break;
        }
        let pos = (step % steps_per_epoch) * t.batch_size;
        if pos == 0 {
            progress.shuffle.shuffle(&mut progress.order);
        }
        let indices = &progress.order[pos..(pos + t.batch_size).min(n)];
        batch.gather(train, indices);
        plan.model.forward_backward(&batch, &request, &mut grads);
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
        if let Some(f) = &mut progress.fractions {
            if step.is_multiple_of(fractions_every) {
                f.measure(plan.model.as_mut(), train, indices, &grads.sum);
            }
        }
        sgd.step(plan.model.params_mut(), &direction);
        progress.step += 1;
        bar.inc(1);
    }

    let step = progress.step;
    let (mut last, peak) = progress.tracker.to_json();
    // Adjusted overfit (Chatterjee 2020): training accuracy above what the pristine share and
    // the test accuracy explain, `train_acc - (eps / classes + (1 - eps) test_acc)`, with eps
    // the fraction of training examples whose labels were corrupted.
    let corrupted = train.corrupted.iter().filter(|&&c| c).count();
    let eps = corrupted as f64 / n.max(1) as f64;
    if let (Some(tr), Some(te), Some(map)) = (
        progress.tracker.last("train_acc"),
        progress.tracker.last("test_acc"),
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
    let mut summary = json!({
        "experiment": experiment,
        "run": name,
        "index": plan.spec.index,
        "params": params,
        "status": status_text,
        "diverged_at_step": diverged_at,
        "steps": step,
        "epochs": step as f64 / steps_per_epoch as f64,
        "elapsed_s": elapsed(&progress),
        "corrupted_fraction": eps,
        "final": last,
        "peak": peak,
    });
    if let Some(e) = early_stop::analyse(&progress.points, plan.evaluation.corrupt_rise) {
        summary["early_stopping"] = e;
    }
    if plan.evaluation.learning_times {
        run.write(
            "learning_times.csv",
            progress.learning.to_csv(train).as_bytes(),
        )?;
        summary["learning_times"] = progress.learning.summary(train);
    }
    meta["ended"] = json!(utc_timestamp(SystemTime::now()));
    meta["status"] = json!(status_text);
    run.write_json("run.json", &meta)?;
    run.write_json("summary.json", &summary)?;
    run.finish()?;
    let stale = dir.join(crate::checkpoint::FILE);
    if stale.exists() {
        let _ = std::fs::remove_file(stale);
    }
    Ok(summary)
}
