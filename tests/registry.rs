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
    let _ = &coherent_class_coherence::PLUGINS;
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
    for param in [
        "hidden",
        "label_noise",
        "noise_mode",
        "every_steps",
        "chunk",
        "rel_var_floor",
        "corrupt_rise",
        "fraction",
    ] {
        assert!(text.contains(param), "parameter {param} missing");
    }
}

/// The manifest table `key = <documented default>` for every parameter whose documented
/// default is a TOML value (`required`, `all`, `none` and worded defaults are left out).
fn documented_defaults(params: &[coherent_core::ParamDoc]) -> String {
    params
        .iter()
        .filter(|p| format!("x = {}", p.default).parse::<toml::Table>().is_ok())
        .map(|p| format!("{} = {}\n", p.name, p.default))
        .collect()
}

/// Every plugin's documented defaults are the ones it uses: a table that writes each of them
/// out builds the same plugin as an empty table (or fails the same way, for plugins with a
/// required parameter).
#[test]
fn documented_defaults_are_the_defaults_every_plugin_uses() {
    use coherent_core::{InputShape, ModelSpec, PluginArgs};
    let registry = coherent_plugins::registry().unwrap();
    let empty = PluginArgs::empty();
    let spec = ModelSpec::classifier(InputShape::image(3, 32, 32), 10);
    let mut checked = 0;
    for kind in PluginKind::ALL {
        for listing in registry.list(kind) {
            // the keys the runner reads from a `[[metrics]]` table are not the plugin's own
            let own: Vec<_> = match kind {
                PluginKind::Metric => {
                    let runner = registry.metrics[listing.name].sampling.params();
                    let runner: Vec<_> = runner.iter().map(|p| p.name).collect();
                    listing
                        .params
                        .iter()
                        .filter(|p| !runner.contains(&p.name))
                        .cloned()
                        .collect()
                }
                _ => listing.params.clone(),
            };
            let text = documented_defaults(&own);
            let args = PluginArgs::from_toml(&text).unwrap();
            let name = listing.name;
            let same = match kind {
                PluginKind::Network => {
                    let build = registry.networks[name].build;
                    let shape = |r: Result<Box<dyn coherent_core::Model>, _>| {
                        r.map(|m| m.layers().to_vec())
                            .map_err(|e: coherent_core::ConfigError| e.message)
                    };
                    shape(build(&args, &spec)) == shape(build(&empty, &spec))
                }
                PluginKind::Dataset => {
                    let build = registry.datasets[name].build;
                    let size = |r: Result<Box<dyn coherent_core::Dataset>, _>| {
                        r.map(|d| (d.train().len(), d.test().len()))
                            .map_err(|e: coherent_core::DatasetBuildError| e.to_string())
                    };
                    size(build(&args)) == size(build(&empty))
                }
                PluginKind::Metric => {
                    let build = registry.metrics[name].build;
                    build(&args).is_ok() == build(&empty).is_ok()
                }
                PluginKind::Aggregator => {
                    let build = registry.aggregators[name].build;
                    build(&args).err().map(|e| e.message) == build(&empty).err().map(|e| e.message)
                }
                PluginKind::Observer => {
                    let build = registry.observers[name].build;
                    build(&args).is_ok() == build(&empty).is_ok()
                }
            };
            assert!(
                same,
                "{name}: documented defaults\n{text}give another plugin than no parameters"
            );
            checked += 1;
        }
    }
    assert!(checked >= 28, "{checked} plugins");
}
