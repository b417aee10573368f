//! The measurements of the theory's phenomena (loss-reduction fractions, learning times,
//! early stopping) and the crash safety of the runs that record them.

use crate::common::{metrics, run_ok, scratch_manifest, summary, write_manifest, LONG};
use coherent_core::{
    Batch, BatchGrads, Evaluation, GradRequest, Measurements, ModelSpec, PluginArgs, Rng, RunInfo,
    StepGrads, StepInfo,
};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// `f_p = <g, g_p> / <g, g>` against the sum of explicitly materialised per-example gradients.
#[test]
fn loss_fractions_match_sums_of_per_example_gradients() {
    let registry = coherent_plugins::registry().unwrap();
    let args =
        PluginArgs::from_toml("train_limit = 300\ntest_limit = 10\nlabel_noise = 0.5").unwrap();
    let data = (registry.datasets["mnist"].build)(&args).unwrap();
    let spec = ModelSpec::classifier(data.input_shape(), 10).with_seed(3);
    let args = PluginArgs::from_toml("hidden = [16]").unwrap();
    let mut model = (registry.networks["mlp"].build)(&args, &spec).unwrap();
    let train = data.train();
    let indices: Vec<usize> = (0..60).map(|i| (i * 7) % 300).collect();
    let (mut batch, mut grads) = (Batch::default(), BatchGrads::default());
    batch.gather(train, &indices);
    let request = GradRequest::PER_EXAMPLE;
    model.forward_backward(&batch, &request, &mut grads);
    // per-example gradients, whole network, in f64
    let rows: Vec<Vec<f64>> = (0..indices.len())
        .map(|i| {
            grads
                .per_example
                .iter()
                .flat_map(|layer| {
                    let p = layer.len() / indices.len();
                    layer[i * p..(i + 1) * p].iter().map(|&v| v as f64)
                })
                .collect()
        })
        .collect();
    let group_sum = |members: &[usize]| -> Vec<f64> {
        let mut s = vec![0.0; rows[0].len()];
        for &k in members {
            s.iter_mut().zip(&rows[k]).for_each(|(a, v)| *a += v);
        }
        s
    };
    let all: Vec<usize> = (0..indices.len()).collect();
    let g = group_sum(&all);
    let pristine: Vec<usize> = all
        .iter()
        .copied()
        .filter(|&k| !train.corrupted[indices[k]])
        .collect();
    let corrupt = indices.len() - pristine.len();
    assert!(
        corrupt > 10 && pristine.len() > 10,
        "the batch mixes both groups"
    );
    let want = dot(&g, &group_sum(&pristine)) / dot(&g, &g);
    // the null world: the same number of examples designated corrupt by the documented stream
    let mut shuffled = all.clone();
    Rng::derived(9, "null-world").shuffle(&mut shuffled);
    let want_null = dot(&g, &group_sum(&shuffled[corrupt..])) / dot(&g, &g);

    // The observer, driven through its hooks as the trainer drives it: its subsets come from
    // the step's own backward pass.
    let mut f =
        (registry.observers["loss_fractions"].build)(&PluginArgs::from_toml("every = 1").unwrap())
            .unwrap();
    let layers = model.layers().to_vec();
    let run = RunInfo::new(9, &layers, data.as_ref(), 5);
    f.begin(&run).unwrap();
    let step = StepInfo {
        step: 0,
        indices: &indices,
        train,
    };
    let request = f.needs(&step);
    model.forward_backward(&batch, &request, &mut grads);
    let direction = grads.sum.clone();
    f.after_step(
        &step,
        &StepGrads {
            batch: &grads,
            subsets: &grads.subset_sums,
            direction: &direction,
        },
    );
    let (values, mut got) = (Measurements::default(), Measurements::default());
    let mut eval = Evaluation::new(1, &values, model.as_mut(), train);
    f.on_evaluation(&mut eval, &mut got);
    let got: std::collections::HashMap<String, f64> = got.into_values().into_iter().collect();
    let close = |a: f64, b: f64| (a - b).abs() < 1e-4 * (1.0 + b.abs());
    assert!(
        close(got["f_pristine"], want),
        "{} vs {want}",
        got["f_pristine"]
    );
    assert!(
        close(got["f_pristine_null"], want_null),
        "{} vs {want_null}",
        got["f_pristine_null"]
    );
    assert!(close(got["f_pristine"] + got["f_corrupt"], 1.0));
    assert!(close(got["f_pristine_cum"], want));
    let share = pristine.len() as f64 / indices.len() as f64;
    assert!(close(got["f_pristine_per_example"], want / share));
    // pristine examples of real digits supply more than their share at initialisation
    assert!(want > share, "f_p {want} vs pristine share {share}");
}

/// A run killed with SIGKILL mid-training and resumed ends where the uninterrupted run ends.
#[test]
fn a_killed_run_resumes_to_the_uninterrupted_result() {
    let (dir, m) = scratch_manifest("crash", "crash.toml", LONG);
    let (a, b) = (dir.join("a"), dir.join("b"));
    run_ok(&["run", &m, "--out", &a.to_string_lossy()]);

    let run_b = kill_after_checkpoint(&m, &b);

    run_ok(&["run", &m, "--out", &b.to_string_lossy(), "--resume"]);
    let log = std::fs::read_to_string(run_b.join("log.txt")).unwrap();
    assert!(log.contains("resumed from the checkpoint at step"), "{log}");
    let (ma, mb) = (metrics(&a.join("long").join("000")), metrics(&run_b));
    let steps = |m: &[serde_json::Value]| {
        m.iter()
            .map(|v| v["step"].as_u64().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        steps(&ma),
        steps(&mb),
        "every step once, in order, after the resume"
    );
    for (x, y) in ma.iter().zip(&mb) {
        for (k, v) in x.as_object().unwrap() {
            if k == "elapsed_s" {
                continue;
            }
            let (v, w) = (v.as_f64().unwrap(), y[k].as_f64().unwrap());
            assert!(v == w, "{k} at step {}: {v} vs {w}", x["step"]);
        }
    }
    let (sa, sb) = (summary(&a.join("long").join("000")), summary(&run_b));
    assert_eq!(sa["final"], sb["final"]);
    assert_eq!(sa["early_stopping"], sb["early_stopping"]);
    let lt = |d: &std::path::Path| std::fs::read_to_string(d.join("learning_times.csv")).unwrap();
    assert_eq!(lt(&a.join("long").join("000")), lt(&run_b));
    let weights = |d: &std::path::Path, f: &str| std::fs::read(d.join("weights").join(f)).unwrap();
    for f in ["initial.safetensors", "final.safetensors"] {
        assert!(
            weights(&a.join("long").join("000"), f) == weights(&run_b, f),
            "{f}: the same bytes"
        );
    }
    assert!(
        !run_b.join("checkpoint.safetensors").exists(),
        "the checkpoint goes once the run is done"
    );
    // what a noisy run records
    assert!(mb.iter().any(|v| v.get("f_pristine").is_some()));
    assert!(sb["learning_times"]["examples"] == 8000);
    assert!(sb["early_stopping"]["peak_test_step"].is_u64());
}

/// Starts `coherent run MANIFEST --out OUT`, kills it with SIGKILL once a checkpoint past the
/// first few measurements is on disk, and returns the run directory.
fn kill_after_checkpoint(manifest: &str, out: &std::path::Path) -> std::path::PathBuf {
    let run = out.join("long").join("000");
    let mut child = Command::new(env!("CARGO_BIN_EXE_coherent"))
        .args(["run", manifest, "--out", &out.to_string_lossy()])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !(run.join("checkpoint.safetensors").exists()
        && std::fs::read_to_string(run.join("metrics.jsonl")).is_ok_and(|t| t.lines().count() >= 4))
    {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no checkpoint appeared"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(
        !run.join("DONE").exists(),
        "the run finished before it could be killed"
    );
    run
}

/// A checkpoint of an edited manifest is not resumed into a mixed run: the run starts again,
/// and a shorter run after the edit ends where it should.
#[test]
fn a_checkpoint_of_another_manifest_is_not_resumed() {
    let (dir, m) = scratch_manifest("crash-edited", "crash.toml", LONG);
    let run = kill_after_checkpoint(&m, &dir.join("b"));
    let edited = LONG.replace(
        "checkpoint_every = 20",
        "checkpoint_every = 20\nmax_steps = 10",
    );
    write_manifest(&dir, "crash.toml", &edited);
    run_ok(&[
        "run",
        &m,
        "--out",
        &dir.join("b").to_string_lossy(),
        "--resume",
    ]);
    let log = std::fs::read_to_string(run.join("log.txt")).unwrap();
    assert!(
        log.contains("different manifest; the run starts again"),
        "{log}"
    );
    let steps: Vec<u64> = metrics(&run)
        .iter()
        .map(|v| v["step"].as_u64().unwrap())
        .collect();
    assert_eq!(steps.first(), Some(&0));
    assert_eq!(summary(&run)["steps"], 10);
}

const EASY_HARD: &str = r#"
name = "eh"
[dataset]
plugin = "mnist"
train_limit = 2000
test_limit = 200
[model]
plugin = "mlp"
hidden = [64]
[training]
batch_size = 50
epochs = 2
[evaluation]
every_steps = 5
[easy_hard]
fraction = 0.3
held_out = 0.25
epochs = 6
"#;

/// Examples learned early generalise to each other; examples learned late do not.
#[test]
fn easy_examples_generalise_better_than_hard_ones() {
    let (dir, m) = scratch_manifest("easy-hard", "eh.toml", EASY_HARD);
    let out_dir = dir.join("runs");
    run_ok(&["run", &m, "--out", &out_dir.to_string_lossy()]);
    let run = out_dir.join("eh").join("000");
    for part in ["probe", "easy", "hard"] {
        assert!(run.join(part).join("DONE").exists(), "{part} complete");
    }
    assert!(run.join("DONE").exists());
    let s = summary(&run);
    let eh = &s["easy_hard"];
    assert_eq!(eh["easy"]["train_examples"], 450);
    assert_eq!(eh["easy"]["held_out_examples"], 150);
    let (e, h) = (
        eh["easy"]["held_out_acc"].as_f64().unwrap(),
        eh["hard"]["held_out_acc"].as_f64().unwrap(),
    );
    assert!(e > h + 0.1, "easy {e} vs hard {h}");
    // the easy split is made of the probe's earliest-learned examples
    let times =
        coherent_record::learning_times::read(&run.join("probe").join("learning_times.csv"))
            .unwrap();
    assert_eq!(times.len(), 2000);
    assert!(times.iter().filter(|t| t.learned_step.is_some()).count() > 1000);
}
