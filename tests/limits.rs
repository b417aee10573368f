//! The limits of a run, checked before anything is allocated: a network is sized from its
//! configuration, and one too large for a run or for this machine is refused at the key that
//! sets its size, by `check` as by `run`, in little memory.

use crate::common::{coherent_limited, root, scratch_manifest};
use coherent_core::size::{measure, SIZED_ONLY};
use coherent_core::{InputShape, ModelSpec, PluginArgs};
use std::process::Command;
use std::time::Duration;

/// Configurations of every bundled network, sized and built on MNIST- and CIFAR-shaped inputs.
const NETWORKS: &[(&str, &str)] = &[
    ("mlp", ""),
    ("mlp", "hidden = [32, 17]\nbias = false"),
    ("mlp", "hidden = []"),
    ("lenet", ""),
    (
        "lenet",
        "channels = [4, 8, 3]\npadding = [2, 2, 1]\nhidden = [20]",
    ),
    ("alexnet", ""),
    ("vgg", ""),
    ("vgg", "stages = [[8], [8, 8]]\ngroups = 4"),
    ("resnet", ""),
    ("resnet", "depth = 14\nwidth = 8\nnorm = \"none\""),
];

/// The size a network's builders count without allocating is the size of the network they
/// build, for every bundled network: what `check` refuses is what `run` would have allocated.
#[test]
fn every_network_is_sized_exactly_without_being_built() {
    let registry = coherent_plugins::registry().unwrap();
    let inputs = [InputShape::image(1, 28, 28), InputShape::image(3, 32, 32)];
    let mut sized = 0;
    for (name, text) in NETWORKS {
        let entry = registry.networks[name];
        let args = PluginArgs::from_toml(text).unwrap();
        for input in inputs {
            let spec = ModelSpec::classifier(input, 10);
            let built = (entry.build)(&args, &spec);
            let size = measure(input.len() as u64, 100_000, || {
                let e = (entry.build)(&args, &spec).err().expect("nothing is built");
                assert!(e.message.contains(SIZED_ONLY), "{name}: {e}");
            });
            let Ok(model) = built else { continue };
            assert_eq!(
                size.params,
                model.num_params() as u64,
                "{name} {text:?} on {input}"
            );
            assert!(size.layers as usize >= model.layers().len(), "{name}");
            assert!(size.activations > input.len() as u64, "{name}");
            assert!(!size.stopped);
            sized += 1;
        }
    }
    assert!(sized >= 15, "{sized}");
}

/// A network that fits the run's limit but not the memory this machine has (here capped by
/// `COHERENT_MAX_MEMORY`) is refused with both figures, before it is allocated.
#[test]
fn a_network_larger_than_the_memory_available_is_refused_before_it_is_allocated() {
    let text = "[dataset]\nplugin = \"mnist\"\n\n[model]\nplugin = \"mlp\"\nhidden = [100000]\n";
    let (_dir, manifest) = scratch_manifest("memory-available", "wide.toml", text);
    for command in ["check", "run"] {
        let out = Command::new(env!("CARGO_BIN_EXE_coherent"))
            .args([command, manifest.as_str()])
            .current_dir(root())
            .env("COHERENT_MAX_MEMORY", "1G")
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{command}: {err}");
        assert!(
            err.contains("wide.toml:6:10: error: the network (`mlp` on 1x28x28 inputs: 79,500,010 parameters, 100,794 activations per example, passes of 1000 examples) needs about 1.68 GB, more than this machine has: 1.07 GB available (COHERENT_MAX_MEMORY)"),
            "{command}: {err}"
        );
        assert!(err.contains("help: 1.27 GB for the parameters"), "{err}");
    }
}

/// `check` of a network that is accepted but large (a million hidden units, 3.2 GB of weights)
/// sizes it and does not build it; of networks far too large it refuses them; in little memory
/// either way.
#[test]
fn check_sizes_large_networks_in_little_memory() {
    for (hidden, code) in [("1000000", 0), ("100000000", 2), ("9223372036854775807", 2)] {
        let text = format!(
            "[dataset]\nplugin = \"mnist\"\n\n[model]\nplugin = \"mlp\"\nhidden = [{hidden}]\n"
        );
        let (_dir, manifest) = scratch_manifest("large-check", "large.toml", &text);
        let out = coherent_limited(&["check", &manifest], Duration::from_secs(60));
        // a machine with less than about 17 GB available refuses the first one too
        let short = out.code == Some(2) && out.stderr.contains("more than this machine has");
        assert!(out.code == Some(code) || short, "{hidden}: {}", out.stderr);
        assert!(out.peak_kib < 200_000, "{hidden}: {} KiB", out.peak_kib);
    }
}

/// `check` of a sweep reports every run that cannot be, each once, and checks the others: one
/// bad value on an axis does not stop the check.
#[test]
fn check_reports_every_bad_run_of_a_sweep() {
    let out = coherent_limited(
        &["check", "tests/fixtures/bad/hidden-sweep.toml"],
        Duration::from_secs(60),
    );
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    for piece in [
        "hidden-sweep.toml:9:25: error: the network (`mlp` on 1x28x28 inputs) has 79,500,000,010 parameters",
        "note: in run 001-hidden=100000000 of the sweep",
        "hidden-sweep.toml:9:44: error: the network (`mlp` on 1x28x28 inputs) has more than 18,446,744,073,709,551,615 parameters",
        "note: in run 003-hidden=18446744073709551615 of the sweep",
    ] {
        assert!(out.stderr.contains(piece), "missing {piece:?} in\n{}", out.stderr);
    }
    assert_eq!(out.stderr.matches("error:").count(), 2, "{}", out.stderr);
    assert!(out.peak_kib < 200_000, "{} KiB", out.peak_kib);
}

/// The peak memory `coherent_limited` reports is the child's own: a child that grows is seen
/// growing, and a small child stays small even when this test process holds a lot.
#[test]
fn the_measured_peak_is_the_childs_own() {
    let big = coherent_limited(
        &[
            "bench",
            "--network",
            "resnet",
            "--reps",
            "1",
            "--min-ms",
            "1",
        ],
        Duration::from_secs(300),
    );
    assert_eq!(big.code, Some(0), "{}", big.stderr);
    assert!(big.peak_kib > 250_000, "{} KiB", big.peak_kib);
    let held: Vec<u8> = (0..300_000_000u32).map(|i| i as u8).collect();
    let small = coherent_limited(&["--version"], Duration::from_secs(60));
    assert_eq!(small.code, Some(0), "{}", small.stderr);
    assert!(small.peak_kib < 100_000, "{} KiB", small.peak_kib);
    std::hint::black_box(&held);
}
