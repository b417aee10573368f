//! The metric plugins on the per-example gradients of a real network: the identities that tie
//! them to each other (and to `coherence`) hold on one and the same sample.

use coherent_core::{
    Batch, BatchGrads, GradRequest, InputShape, Measurements, ModelSpec, PluginArgs,
};
use std::collections::BTreeMap;

/// Every metric, fed the same MNIST batch through a small MLP in one chunk.
fn measure_all(m: usize) -> (BTreeMap<String, f64>, BatchGrads, Vec<String>) {
    let registry = coherent_plugins::registry().unwrap();
    let data = (registry.datasets["mnist"].build)(&PluginArgs::empty()).unwrap();
    let spec = ModelSpec::classifier(InputShape::flat(784), 10);
    let args = PluginArgs::from_toml("hidden = [24]").unwrap();
    let mut model = (registry.networks["mlp"].build)(&args, &spec).unwrap();
    let mut batch = Batch::default();
    batch.gather(data.train(), &(0..m).collect::<Vec<_>>());
    let all = GradRequest {
        sq_norms: true,
        coord_sum_sq: true,
        gram: true,
        per_example: true,
        ..GradRequest::SUM
    };
    let mut grads = BatchGrads::default();
    model.forward_backward(&batch, &all, &mut grads);
    let mut values = BTreeMap::new();
    for name in [
        "coherence",
        "gradient_diversity",
        "noise_scale",
        "gsnr",
        "stiffness",
        "gradient_confusion",
        "cosine_matrix",
    ] {
        let mut metric = (registry.metrics[name].build)(&PluginArgs::empty()).unwrap();
        metric.begin(model.layers());
        metric.accumulate(&grads, &batch);
        let mut got = Measurements::new(true);
        metric.finish(&mut got);
        values.extend(got.into_values());
    }
    let layers = model.layers().iter().map(|l| l.name.clone()).collect();
    (values, grads, layers)
}

fn close(a: f64, b: f64, tol: f64) {
    assert!((a - b).abs() <= tol * b.abs().max(1e-3), "{a} vs {b}");
}

#[test]
fn the_metrics_agree_with_each_other_on_one_sample() {
    let m = 60;
    let (v, _, layers) = measure_all(m);
    let mf = m as f64;
    for suffix in std::iter::once(String::new()).chain(layers.iter().map(|l| format!("/{l}"))) {
        let at = |k: &str| v[&format!("{k}{suffix}")];
        let c = at("coherence");
        close(at("gradient_diversity"), 1.0 / c, 1e-6);
        close(at("offdiag_coherence"), (c - 1.0) / (mf - 1.0), 1e-6);
        close(at("noise_scale"), mf * (mf - c) / ((mf - 1.0) * c), 1e-6);
        // The O(m) mean cosine is the O(m^2) all-pairs mean of stiffness.
        close(at("mean_pairwise_cos"), at("stiffness_cos"), 1e-4);
        let (min_cos, mean_cos) = (at("gradient_confusion_min_cos"), at("stiffness_cos"));
        assert!((-1.0..=mean_cos).contains(&min_cos), "{min_cos} {mean_cos}");
        assert!(at("gsnr") > 0.0);
    }
    assert!(v["stiffness_cos_within"] > v["stiffness_cos_between"]);
}

#[test]
fn gsnr_matches_the_per_example_gradients_of_the_model() {
    let m = 40;
    let (v, grads, layers) = measure_all(m);
    let (mut total, mut counted) = (0.0, 0usize);
    for (l, name) in layers.iter().enumerate() {
        let rows = &grads.per_example[l];
        let p = rows.len() / m;
        let (mut layer_total, mut layer_counted) = (0.0, 0usize);
        for j in 0..p {
            let col: Vec<f64> = (0..m).map(|i| rows[i * p + j] as f64).collect();
            let mean = col.iter().sum::<f64>() / m as f64;
            let var = col.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / m as f64;
            let mean_sq = col.iter().map(|x| x * x).sum::<f64>() / m as f64;
            if var > 1e-5 * mean_sq && var > 0.0 {
                layer_total += mean * mean / var;
                layer_counted += 1;
            }
        }
        close(
            v[&format!("gsnr/{name}")],
            layer_total / layer_counted as f64,
            1e-3,
        );
        (total, counted) = (total + layer_total, counted + layer_counted);
    }
    close(v["gsnr"], total / counted as f64, 1e-3);
}
