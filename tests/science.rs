//! The theory's reference values, reproduced.

use crate::common::{metrics, run_ok, scratch, summary, write_manifest};
use coherent_core::{
    Batch, GradRequest, InputShape, LossKind, Measurements, ModelSpec, PluginArgs,
};

/// GM section 3: at initialisation the four real gradients have m-coherence 80/32 = 2.5.
#[test]
fn toy_linear_coherence_at_initialisation_is_2_5_real_and_1_random() {
    let registry = coherent_plugins::registry().unwrap();
    for (variant, want) in [("real", 2.5), ("random", 1.0)] {
        let args = PluginArgs::from_toml(&format!("variant = \"{variant}\"")).unwrap();
        let data = (registry.datasets["toy_linear"].build)(&args).unwrap();
        let spec = ModelSpec {
            input: InputShape::flat(6),
            outputs: 1,
            loss: LossKind::Squared,
            seed: 0,
        };
        let args = PluginArgs::from_toml("hidden = []\nbias = false\ninit = \"zeros\"").unwrap();
        let mut model = (registry.networks["mlp"].build)(&args, &spec).unwrap();
        let mut batch = Batch::default();
        batch.gather(data.train(), &[0, 1, 2, 3]);
        let mut grads = Default::default();
        model.forward_backward(&batch, &GradRequest::SQ_NORMS, &mut grads);
        // g_i = 2 (w.x_i - y_i) x_i = -2 y_i x_i: |S|^2 = 80, Q = 32 on real data
        let s2: f32 = grads.sum[0].iter().map(|v| v * v).sum();
        let q: f32 = grads.sq_norms[0].iter().sum();
        if variant == "real" {
            assert_eq!((s2, q), (80.0, 32.0));
        }
        let mut metric = (registry.metrics["coherence"].build)(&PluginArgs::empty()).unwrap();
        metric.begin(model.layers());
        metric.accumulate(&grads, &batch);
        let mut values = Measurements::default();
        metric.finish(&mut values);
        let coherence = values["coherence"];
        assert!((coherence - want).abs() < 1e-9, "{variant}: {coherence}");
    }
}

/// GM section 3: full-batch GD, lr 0.01, 500 epochs: real test loss about 0.04, random 1.
#[test]
fn toy_linear_generalises_on_real_data_only() {
    let dir = scratch("toy");
    run_ok(&[
        "run",
        "experiments/toy-linear.toml",
        "--out",
        &dir.to_string_lossy(),
    ]);
    let real = metrics(&dir.join("toy-linear/000-variant=real"));
    let random = metrics(&dir.join("toy-linear/001-variant=random"));
    assert!((real[0]["coherence"].as_f64().unwrap() - 2.5).abs() < 1e-6);
    assert!((random[0]["coherence"].as_f64().unwrap() - 1.0).abs() < 1e-6);
    let last = |m: &[serde_json::Value], k: &str| m.last().unwrap()[k].as_f64().unwrap();
    assert!(
        (last(&real, "test_loss") - 0.04).abs() < 2e-3,
        "{}",
        last(&real, "test_loss")
    );
    assert!((last(&random, "test_loss") - 1.0).abs() < 1e-6);
    assert!(last(&real, "train_loss") < 1e-4 && last(&random, "train_loss") < 1e-2);
}

/// GM section 4 at CPU scale: real labels give clearly more coherent gradients than random
/// labels, and only real labels generalise.
#[test]
fn real_labels_are_more_coherent_than_random_labels() {
    let dir = scratch("real-vs-random");
    let m = write_manifest(
        &dir,
        "rvr.toml",
        r#"
name = "rvr"
[dataset]
plugin = "mnist"
train_limit = 2000
test_limit = 1000
[model]
plugin = "mlp"
hidden = [64]
[training]
lr = 0.1
batch_size = 100
epochs = 4
[[metrics]]
plugin = "coherence"
every_steps = 10
sample = 500
[sweep]
"dataset.label_noise" = [0.0, 1.0]
"#,
    );
    run_ok(&["run", &m, "--out", &dir.to_string_lossy()]);
    let real = summary(&dir.join("rvr/000-label_noise=0.0"));
    let random = summary(&dir.join("rvr/001-label_noise=1.0"));
    let peak = |s: &serde_json::Value| s["peak"]["coherence"]["value"].as_f64().unwrap();
    assert!(
        peak(&real) > 3.0 * peak(&random),
        "real {} vs random {}",
        peak(&real),
        peak(&random)
    );
    assert!(real["final"]["test_acc"].as_f64().unwrap() > 0.8);
    assert!(random["final"]["test_acc"].as_f64().unwrap() < 0.2);
}
