//! The exact set of linked plugins, in-process and in the binary.

use crate::common::{coherent, stdout};
use coherent_core::PluginKind;

const EXPECTED: [(PluginKind, &[&str]); 5] = [
    (
        PluginKind::Network,
        &["alexnet", "lenet", "mlp", "resnet", "vgg"],
    ),
    (
        PluginKind::Dataset,
        &["cifar10", "fashion_mnist", "mnist", "toy_linear"],
    ),
    (
        PluginKind::Metric,
        &[
            "coherence",
            "cosine_matrix",
            "gradient_confusion",
            "gradient_diversity",
            "gsnr",
            "noise_scale",
            "stiffness",
        ],
    ),
    (
        PluginKind::Aggregator,
        &[
            "clip",
            "coordinate_median",
            "geometric_median",
            "mean",
            "median_of_means",
            "ra3",
            "rm3",
            "trimmed_mean",
            "winsorized",
        ],
    ),
    (
        PluginKind::Observer,
        &["early_stopping", "learning_times", "loss_fractions"],
    ),
];

#[test]
fn every_bundled_plugin_is_registered_exactly_once() {
    let registry = coherent_plugins::registry().expect("no duplicate names");
    // This test program also links the test observer `class_coherence` (tests/plugins).
    let _ = coherent_class_coherence::build;
    for (kind, names) in EXPECTED {
        let mut got: Vec<&str> = registry.list(kind).iter().map(|l| l.name).collect();
        if kind == PluginKind::Observer {
            got.retain(|n| *n != "class_coherence");
        }
        assert_eq!(got, names, "{kind:?}");
    }
    assert!(registry.observers.contains_key("class_coherence"));
}

#[test]
fn the_binary_lists_every_plugin_with_its_parameters() {
    let out = coherent(&["plugins"]);
    assert!(out.status.success());
    let text = stdout(&out);
    for (kind, names) in EXPECTED {
        assert!(text.contains(&format!("{}:", kind.plural())), "{text}");
        for name in names {
            assert!(
                text.contains(&format!("  {name}  ")),
                "{name} missing from:\n{text}"
            );
        }
    }
    assert!(text.contains("protocols:\n  easy_hard  "), "{text}");
    for param in ["hidden", "label_noise", "noise_mode", "rel_var_floor", "corrupt_rise", "fraction"] {
        assert!(text.contains(param), "parameter {param} missing");
    }
}
