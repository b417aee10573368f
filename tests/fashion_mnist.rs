//! The full Fashion-MNIST as Debian's `dataset-fashion-mnist` package installs it (the README's
//! Data section), read as it is. Without the package the tests print `SKIPPED: fashion_mnist:
//! ...` and return, unless `COHERENT_REQUIRE_FASHION_MNIST` is set (CI, which installs it);
//! `COHERENT_FASHION_MNIST` points them at another copy of the four files.

use crate::common::{run_ok, scratch, write_manifest};
use coherent_core::{Dataset, PluginArgs, Targets};
use coherent_record::{read_json, Summary};
use std::path::{Path, PathBuf};

/// Where the Debian package puts the four IDX files.
pub const INSTALLED: &str = "/usr/share/datasets/fashion-mnist";

/// The folder of the real files, or `None` (after printing `SKIPPED`) when they are absent.
pub fn real_files() -> Option<PathBuf> {
    let dir = std::env::var_os("COHERENT_FASHION_MNIST")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(INSTALLED));
    if dir.join("train-images-idx3-ubyte.gz").is_file()
        || dir.join("train-images-idx3-ubyte").is_file()
    {
        return Some(dir);
    }
    let reason = format!("no Fashion-MNIST files in {}", dir.display());
    if std::env::var_os("COHERENT_REQUIRE_FASHION_MNIST").is_some() {
        panic!("COHERENT_REQUIRE_FASHION_MNIST is set but there are {reason}");
    }
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "\nSKIPPED: fashion_mnist: {reason}; apt-get install dataset-fashion-mnist to run it\n"
    );
    None
}

fn load(dir: &Path) -> Box<dyn Dataset> {
    let args = PluginArgs::from_toml(&format!("path = {:?}", dir.to_string_lossy())).unwrap();
    coherent_fashion_mnist::build(&args).unwrap()
}

/// Examples per class, and that every label is a class.
fn class_counts(targets: &Targets) -> Vec<usize> {
    let Targets::Classes { labels, classes } = targets else {
        panic!("Fashion-MNIST has class labels");
    };
    assert_eq!(*classes, 10);
    let mut counts = vec![0; *classes];
    for &label in labels {
        counts[label as usize] += 1;
    }
    counts
}

#[test]
fn the_installed_files_hold_the_whole_dataset() {
    let Some(dir) = real_files() else { return };
    let data = load(&dir);
    let shape = data.input_shape();
    assert_eq!((shape.channels, shape.height, shape.width), (1, 28, 28));
    // Fashion-MNIST is balanced: 6,000 training and 1,000 test images of each of ten classes.
    assert_eq!(class_counts(&data.train().targets), vec![6000; 10]);
    assert_eq!(class_counts(&data.test().targets), vec![1000; 10]);
    for split in [data.train(), data.test()] {
        assert_eq!(split.inputs.len(), split.targets.len() * 784);
        let (lo, hi) = split
            .inputs
            .iter()
            .fold((f32::MAX, f32::MIN), |(lo, hi), &x| (lo.min(x), hi.max(x)));
        assert!(
            lo < hi && lo.is_finite() && hi.is_finite(),
            "pixels from {lo} to {hi}"
        );
    }
}

/// A short run on 3,000 real images with real and with random labels.
#[test]
fn real_labels_are_more_coherent_than_random_ones() {
    let Some(dir) = real_files() else { return };
    let work = scratch("fashion-real-vs-random");
    let text = format!(
        "name = \"fashion\"\n\n[dataset]\nplugin = \"fashion_mnist\"\npath = {:?}\ntrain_limit = 3000\ntest_limit = 1000\n\n\
         [model]\nplugin = \"mlp\"\nhidden = [64]\n\n[training]\nlr = 0.05\nbatch_size = 100\nepochs = 2\n\n\
         [[metrics]]\nplugin = \"coherence\"\nevery_steps = 10\nsample = 1000\n\n\
         [sweep]\n\"dataset.label_noise\" = [0.0, 1.0]\n",
        dir.to_string_lossy()
    );
    let manifest = write_manifest(&work, "fashion.toml", &text);
    run_ok(&[
        "run",
        &manifest,
        "--out",
        &work.join("runs").to_string_lossy(),
    ]);
    let peak = |run: &str| {
        let summary: Summary =
            read_json(&work.join("runs/fashion").join(run).join("summary.json")).unwrap();
        summary.peak["coherence"].value
    };
    let (real, random) = (peak("000-label_noise=0.0"), peak("001-label_noise=1.0"));
    assert!(
        real > 3.0 * random,
        "peak m-coherence: real labels {real}, random {random}"
    );
    assert!(random < 2.0, "random labels peak at {random}");
}
