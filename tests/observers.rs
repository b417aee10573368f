//! Observers: a new research protocol is one crate implementing `RunObserver`, enabled from a
//! manifest with no edit to the runner; the built-in ones keep their old `[evaluation]` keys
//! as deprecated aliases.

use crate::common::{
    coherent, metrics, run_ok, scratch, scratch_manifest, stderr, summary, write_manifest,
};
use coherent_core::Batch;
use coherent_runner::{run_experiment, Manifest, Planner, RunRequest};
use std::path::Path;

const CLASS: &str = r#"
name = "class"
seed = 2
[dataset]
plugin = "mnist"
train_limit = 600
test_limit = 100
[model]
plugin = "mlp"
hidden = [16]
[training]
batch_size = 50
epochs = 2
[evaluation]
every_steps = 6
plots = false
[[observers]]
plugin = "class_coherence"
class = 3
sample = 20
"#;

/// The m-coherence of one class, by the test crate `coherent-class-coherence`: enabled from the
/// manifest, measured at every evaluation, in the summary, and equal at step 0 to a brute-force
/// computation on the initial model.
#[test]
fn an_observer_from_its_own_crate_runs_from_a_manifest() {
    let (dir, path) = scratch_manifest("class-observer", "class.toml", CLASS);
    let manifest = Manifest::load(Path::new(&path)).unwrap();
    // A plugin crate nothing refers to is not linked; referring to it links its registration.
    let _ = &coherent_class_coherence::PLUGINS;
    let registry = coherent_plugins::registry().unwrap();
    let request = RunRequest {
        out: dir.join("runs"),
        ..RunRequest::default()
    };
    let table = run_experiment(&manifest, registry, &request).unwrap();
    assert_eq!(table.rows.len(), 1);
    let run = dir.join("runs/class/000");
    let lines = metrics(&run);
    assert_eq!(lines.len(), 5, "steps 0, 6, 12, 18, 24");
    assert!(lines
        .iter()
        .all(|l| l["class_coherence"].as_f64().is_some()));
    let part = &summary(&run)["class_coherence"];
    assert_eq!(
        (part["class"].as_u64(), part["examples"].as_u64()),
        (Some(3), Some(20))
    );

    // brute force at step 0: one backward pass per example of the initial model
    let mut plan = Planner::new(&manifest, registry)
        .plan(&manifest.runs[0])
        .unwrap();
    let train = plan.dataset.train();
    let members = coherent_class_coherence::members(train, 3, 20).unwrap();
    let mut batch = Batch::default();
    batch.gather(train, &members);
    let want = coherent_nn::check::m_coherence_by_loop(plan.model.as_mut(), &batch);
    let got = lines[0]["class_coherence"].as_f64().unwrap();
    assert!((got - want).abs() < 1e-4 * want, "{got} vs {want}");
}

const NOISY: &str = r#"
name = "noisy"
[dataset]
plugin = "mnist"
train_limit = 400
test_limit = 100
label_noise = 0.5
[model]
plugin = "mlp"
hidden = [8]
[training]
batch_size = 50
epochs = 1
[evaluation]
every_steps = 4
plots = false
"#;

/// The observers every run has, their switches, and the old `[evaluation]` keys.
#[test]
fn default_observers_switch_off_and_old_keys_still_work() {
    let dir = scratch("default-observers");
    let out_dir = dir.join("runs").to_string_lossy().into_owned();
    let run = |name: &str, extra: &str| {
        let m = write_manifest(&dir, name, &format!("{NOISY}{extra}"));
        let out = run_ok(&["run", &m, "--out", &out_dir, "--force"]);
        (stderr(&out), dir.join("runs/noisy/000"))
    };
    // defaults: loss fractions every 10 steps under label noise, learning times, early stopping
    let (_, d) = run("a.toml", "");
    let s = summary(&d);
    assert!(s["learning_times"].is_object() && s["early_stopping"].is_object());
    assert!(d.join("learning_times.csv").exists());
    assert!(metrics(&d).last().unwrap()["f_pristine_cum"].is_number());
    // switched off in `[[observers]]`
    let (_, d) = run(
        "b.toml",
        "[[observers]]\nplugin = \"learning_times\"\nenabled = false\n[[observers]]\nplugin = \"loss_fractions\"\nevery = 0\n",
    );
    assert!(summary(&d).get("learning_times").is_none() && !d.join("learning_times.csv").exists());
    assert!(metrics(&d)
        .iter()
        .all(|l| l.get("f_pristine_cum").is_none()));
    // the old keys: a located warning, and the same effect
    let (err, d) = run("c.toml", "learning_times = false\nfractions_every = 2\n");
    assert!(
        err.contains("c.toml:17:18: warning: `[evaluation] learning_times` is deprecated"),
        "{err}"
    );
    assert!(err.contains("plugin = \"loss_fractions\""), "{err}");
    assert!(!d.join("learning_times.csv").exists());
    assert!(
        metrics(&d)[1]["f_pristine"].is_number(),
        "measured at steps 0 and 2"
    );
    // both at once is an error, located at the old key
    let m = write_manifest(
        &dir,
        "d.toml",
        &format!(
            "{NOISY}fractions_every = 2\n[[observers]]\nplugin = \"loss_fractions\"\nevery = 3\n"
        ),
    );
    let out = coherent(&["check", &m]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("d.toml:17:1: error: `[evaluation] fractions_every` and the `loss_fractions` observer's `every` both set it"), "{}", stderr(&out));
}
