//! The full Fashion-MNIST as Debian's `dataset-fashion-mnist` package installs it (the README's
//! Data section), read as it is. Without the package the tests print `SKIPPED: fashion_mnist:
//! ...` and return, unless `COHERENT_REQUIRE_FASHION_MNIST` is set (CI, which installs it);
//! `COHERENT_FASHION_MNIST` points them at another copy of the four `.gz` files.

use crate::common::{run_ok, scratch, skip_unless_required, write_manifest};
use coherent_record::{read_json, Summary};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Where the Debian package puts the four IDX files.
pub const INSTALLED: &str = "/usr/share/datasets/fashion-mnist";

/// The folder of the real files, or `None` (after printing `SKIPPED`) when they are absent.
pub fn real_files() -> Option<PathBuf> {
    let dir = std::env::var_os("COHERENT_FASHION_MNIST")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(INSTALLED));
    if dir.join("train-images-idx3-ubyte.gz").is_file() {
        return Some(dir);
    }
    skip_unless_required(
        "fashion_mnist",
        "COHERENT_REQUIRE_FASHION_MNIST",
        &format!("there are no Fashion-MNIST files in {}", dir.display()),
        "apt-get install dataset-fashion-mnist",
    );
    None
}

/// The labels of `prefix` (`train`, `t10k`) through the loader's IDX parser (a few kB).
fn labels(dir: &Path, prefix: &str) -> Vec<u8> {
    let path = dir.join(format!("{prefix}-labels-idx1-ubyte.gz"));
    let array = coherent_mnist::idx::parse(&std::fs::read(&path).unwrap(), &path).unwrap();
    assert_eq!(array.dims, [array.data.len()]);
    array.data
}

/// The dimensions in the header of the images of `prefix`, and the bytes that follow it,
/// streamed without keeping them: the test process stays small, as the memory limits of other
/// tests measure the children it starts.
fn image_header(dir: &Path, prefix: &str) -> (Vec<usize>, u64) {
    let path = dir.join(format!("{prefix}-images-idx3-ubyte.gz"));
    let mut gz = flate2::read::GzDecoder::new(std::fs::File::open(&path).unwrap());
    let mut header = [0u8; 16];
    gz.read_exact(&mut header).unwrap();
    assert_eq!(
        header[..4],
        [0, 0, 8, 3],
        "unsigned bytes in three dimensions"
    );
    let dims = header[4..]
        .chunks(4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .collect();
    (dims, std::io::copy(&mut gz, &mut std::io::sink()).unwrap())
}

/// Examples per class, and that every label is a class.
fn class_counts(labels: &[u8]) -> Vec<usize> {
    let mut counts = vec![0; 10];
    for &label in labels {
        assert!(label < 10, "label {label}");
        counts[label as usize] += 1;
    }
    counts
}

#[test]
fn the_installed_files_hold_the_whole_dataset() {
    let Some(dir) = real_files() else { return };
    // Fashion-MNIST is balanced: 6,000 training and 1,000 test images of each of ten classes.
    assert_eq!(class_counts(&labels(&dir, "train")), vec![6000; 10]);
    assert_eq!(class_counts(&labels(&dir, "t10k")), vec![1000; 10]);
    for (prefix, n) in [("train", 60_000), ("t10k", 10_000)] {
        let (dims, pixels) = image_header(&dir, prefix);
        assert_eq!(dims, [n, 28, 28]);
        assert_eq!(pixels, (n * 28 * 28) as u64);
    }
}

/// A short run on the whole training set, read by the plugin, with real and with random
/// labels.
#[test]
fn real_labels_are_more_coherent_than_random_ones() {
    let Some(dir) = real_files() else { return };
    let work = scratch("fashion-real-vs-random");
    let text = format!(
        "name = \"fashion\"\n\n[dataset]\nplugin = \"fashion_mnist\"\npath = {:?}\ntest_limit = 1000\n\n\
         [model]\nplugin = \"mlp\"\nhidden = [64]\n\n[training]\nlr = 0.05\nbatch_size = 100\nmax_steps = 60\n\n\
         [evaluation]\ntrain_limit = 1000\n\n[[metrics]]\nplugin = \"coherence\"\nevery_steps = 10\nsample = 1000\n\n\
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
    // Measured: about 23 with real labels, 2.2 with random ones (m = 1,000).
    assert!(
        real > 5.0 * random,
        "peak m-coherence: real labels {real}, random {random}"
    );
    assert!(random < 3.0, "random labels peak at {random}");
}
