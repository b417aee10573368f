//! Missing and corrupt data files: a clear error naming the file, never a panic.

use crate::common::{coherent, fails, run_ok, scratch, stderr, stdout, write_manifest};
use coherent_mnist::idx::{encode, gzip};
use std::path::{Path, PathBuf};

/// Writes an MNIST-format directory of `n` train / `m` test images of `rows x cols`.
fn write_idx_dir(dir: &Path, n: usize, m: usize, rows: usize, cols: usize) {
    for (prefix, count) in [("train", n), ("t10k", m)] {
        let pixels: Vec<u8> = (0..count * rows * cols)
            .map(|i| (i * 37 % 256) as u8)
            .collect();
        let labels: Vec<u8> = (0..count).map(|i| (i % 10) as u8).collect();
        std::fs::write(
            dir.join(format!("{prefix}-images-idx3-ubyte")),
            encode(&[count, rows, cols], &pixels),
        )
        .unwrap();
        std::fs::write(
            dir.join(format!("{prefix}-labels-idx1-ubyte")),
            encode(&[count], &labels),
        )
        .unwrap();
    }
}

/// The scratch directory of `test` and its `data` folder, an MNIST-format directory of
/// `n` train / `m` test images of `rows x cols` ([`write_idx_dir`]).
fn scratch_idx(test: &str, (n, m, rows, cols): (usize, usize, usize, usize)) -> (PathBuf, PathBuf) {
    let dir = scratch(test);
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    write_idx_dir(&data, n, m, rows, cols);
    (dir, data)
}

/// The scratch directory of `test` with a synthetic CIFAR-10 copy of 30 records a file in
/// `cifar`, and the manifest `c.toml` of the `cifar10` dataset there whose `[dataset]` table
/// goes on with `rest`.
fn scratch_cifar(test: &str, rest: &str) -> (PathBuf, String) {
    let dir = scratch(test);
    crate::manifests::synthetic_cifar(&dir.join("cifar"), 30);
    let text = format!(
        "[dataset]\nplugin = \"cifar10\"\npath = \"{}\"\n{rest}",
        dir.join("cifar").display()
    );
    let m = write_manifest(&dir, "c.toml", &text);
    (dir, m)
}

fn manifest(dir: &Path, data: &Path) -> String {
    let text = format!(
        "[dataset]\nplugin = \"mnist\"\npath = \"{}\"\n\n[model]\nplugin = \"mlp\"\nhidden = [8]\n\n[training]\nbatch_size = 10\n\n[[metrics]]\nplugin = \"coherence\"\nevery_steps = 2\nsample = 20\n",
        data.display()
    );
    write_manifest(dir, "m.toml", &text)
}

#[test]
fn images_of_any_size_are_read_from_the_headers() {
    let (dir, data) = scratch_idx("idx-any-size", (40, 20, 5, 7));
    let m = manifest(&dir, &data);
    let out = run_ok(&["run", &m, "--out", &dir.join("runs").to_string_lossy()]);
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("runs/m/000/run.json")).unwrap())
            .unwrap();
    // 5 x 7 = 35 inputs: fc1 has 35 * 8 + 8 parameters
    assert_eq!(meta["layers"][0]["params"], 35 * 8 + 8);
    assert!(stdout(&out).contains("completed"));
}

/// `(what to break, expected pieces of the error)`.
fn broken(case: &str) -> (Vec<u8>, &'static str, &'static [&'static str]) {
    let good_images = encode(&[4, 2, 2], &[0; 16]);
    match case {
        "magic" => (
            vec![1, 2, 8, 3, 0, 0, 0, 4],
            "train-images-idx3-ubyte",
            &["bad magic number"],
        ),
        "truncated" => (
            good_images[..good_images.len() - 3].to_vec(),
            "train-images-idx3-ubyte",
            &["truncated", "16 data bytes", "13"],
        ),
        "count" => (
            encode(&[3], &[0, 1, 2]),
            "train-labels-idx1-ubyte",
            &["3 labels for 4 images"],
        ),
        "label" => (
            encode(&[4], &[0, 1, 12, 3]),
            "train-labels-idx1-ubyte",
            &["label 12 of example 2"],
        ),
        "gzip" => (
            vec![0x1f, 0x8b, 8, 0, 0, 0],
            "train-images-idx3-ubyte",
            &["corrupt gzip"],
        ),
        _ => unreachable!(),
    }
}

#[test]
fn corrupt_files_are_named_with_the_problem() {
    for case in ["magic", "truncated", "count", "label", "gzip"] {
        let (dir, data) = scratch_idx(&format!("idx-{case}"), (4, 4, 2, 2));
        let (bytes, file, pieces) = broken(case);
        std::fs::write(data.join(file), bytes).unwrap();
        let m = manifest(&dir, &data);
        for command in ["check", "run"] {
            let out_dir = dir.join("runs").to_string_lossy().into_owned();
            let args = [command, &m, "--out", &out_dir];
            let what = format!("{case} {command}");
            let text = fails(1, &args[..if command == "run" { 4 } else { 2 }], &what);
            assert!(
                text.contains(&data.join(file).display().to_string()),
                "{case}: file not named in {text}"
            );
            for piece in pieces {
                assert!(text.contains(piece), "{case}: missing {piece:?} in {text}");
            }
            assert!(!text.contains("panicked"), "{text}");
        }
    }
}

#[test]
fn a_missing_directory_is_reported() {
    let dir = scratch("idx-missing");
    let m = manifest(&dir, &dir.join("nowhere"));
    let out = coherent(&["check", &m]);
    assert_eq!(out.status.code(), Some(1));
    let text = stderr(&out);
    assert!(
        text.contains("nowhere") && text.contains("train-images-idx3-ubyte"),
        "{text}"
    );
    // Run, the failure is recorded in the run's directory, where `sweep --status` finds it.
    let out_dir = dir.join("runs").to_string_lossy().into_owned();
    let out = coherent(&["run", &m, "--index", "0", "--out", &out_dir]);
    assert_eq!(out.status.code(), Some(1));
    let failed = std::fs::read_to_string(dir.join("runs/m/000/FAILED")).unwrap();
    assert!(failed.contains("nowhere"), "{failed}");
    let status = coherent(&["sweep", &m, "--status", "--out", &out_dir]);
    assert_eq!(status.status.code(), Some(1));
    assert!(
        stdout(&status).contains("000  failed: error:"),
        "{}",
        stdout(&status)
    );
}

/// The CIFAR-10 loader on a synthetic copy, end to end: a ResNet-8 with GroupNorm trains on it.
#[test]
fn synthetic_cifar10_trains_a_resnet() {
    let (dir, m) = scratch_cifar("cifar-resnet", "label_noise = 0.5\n\n[model]\nplugin = \"resnet\"\nwidth = 8\ngroups = 4\n\n[training]\nbatch_size = 16\nepochs = 1\n\n[[metrics]]\nplugin = \"coherence\"\nevery_steps = 1\nsample = 20\n");
    run_ok(&["run", &m, "--out", &dir.join("runs").to_string_lossy()]);
    let lines = std::fs::read_to_string(dir.join("runs/c/000/metrics.jsonl")).unwrap();
    let first: serde_json::Value = serde_json::from_str(lines.lines().next().unwrap()).unwrap();
    for key in [
        "coherence",
        "coherence/conv1",
        "coherence/norm1",
        "coherence/fc1",
        "corrupt_acc",
    ] {
        assert!(first[key].is_number(), "{key} in {first}");
    }
}

/// In a sweep, a run whose data is missing fails alone: the others complete.
#[test]
fn a_sweep_run_with_missing_data_fails_alone() {
    let dir = scratch("sweep-data");
    let good = dir.join("good");
    std::fs::create_dir_all(&good).unwrap();
    write_idx_dir(&good, 60, 20, 28, 28);
    let text = format!(
        "name = \"paths\"\n[dataset]\nplugin = \"mnist\"\n\n[model]\nplugin = \"mlp\"\nhidden = [8]\n\n[training]\nbatch_size = 10\n\n[sweep]\n\"dataset.path\" = [\"{}\", \"{}\"]\n",
        good.display(),
        dir.join("missing").display()
    );
    let m = write_manifest(&dir, "m.toml", &text);
    let out_dir = dir.join("runs");
    let out = coherent(&[
        "sweep",
        &m,
        "--jobs",
        "2",
        "--out",
        &out_dir.to_string_lossy(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let runs: Vec<_> = std::fs::read_dir(out_dir.join("paths"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir() && p.file_name().unwrap().to_string_lossy().starts_with("00"))
        .collect();
    assert_eq!(runs.len(), 2, "{runs:?}");
    let done = runs.iter().filter(|r| r.join("DONE").exists()).count();
    let failed: Vec<String> = runs
        .iter()
        .filter_map(|r| std::fs::read_to_string(r.join("FAILED")).ok())
        .collect();
    assert_eq!(done, 1);
    assert_eq!(failed.len(), 1);
    assert!(failed[0].contains("missing"), "{}", failed[0]);
}

/// A relative `path` resolves next to the manifest, from any working directory; one that only
/// exists relative to the working directory (where it used to resolve) is a located error
/// saying what to write.
#[test]
fn relative_data_paths_resolve_against_the_manifest() {
    let dir = scratch("relative-data-path");
    std::fs::create_dir_all(dir.join("exp/data")).unwrap();
    write_idx_dir(&dir.join("exp/data"), 30, 10, 4, 4);
    let m = manifest(&dir.join("exp"), Path::new("data"));
    let out = dir.join("runs").to_string_lossy().into_owned();
    let elsewhere = scratch("relative-data-path-cwd");
    let run = crate::common::coherent_in(&elsewhere, &["run", &m, "--out", &out]);
    assert!(run.status.success(), "{}", stderr(&run));
    // Written relative to the working directory: explained, and nothing runs.
    std::fs::rename(dir.join("exp/data"), dir.join("data")).unwrap();
    let run = crate::common::coherent_in(&dir, &["check", &m]);
    let text = stderr(&run);
    assert_eq!(run.status.code(), Some(2), "{text}");
    assert!(text.contains("m.toml:3:8: error: `path`:"), "{text}");
    assert!(
        text.contains("relative paths resolve against the manifest's directory"),
        "{text}"
    );
    assert!(text.contains("write `path = \"../data\"`"), "{text}");
}

/// A small `.gz` IDX file whose content is far longer than its header says (here 40 MB of
/// zeros after a header of 4 labels) is refused once the announced bytes are read: quickly,
/// in little memory, naming the file.
#[test]
fn a_gzip_idx_file_is_read_no_further_than_its_header() {
    let (dir, data) = scratch_idx("idx-gzip-long", (4, 4, 2, 2));
    let mut labels = encode(&[4], &[0, 1, 2, 3]);
    labels.resize(40_000_000, 0);
    let file = data.join("train-labels-idx1-ubyte.gz");
    std::fs::remove_file(data.join("train-labels-idx1-ubyte")).unwrap();
    std::fs::write(&file, gzip(&labels)).unwrap();
    let m = manifest(&dir, &data);
    let out = crate::common::coherent_limited(&["check", &m], std::time::Duration::from_secs(30));
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    let want = format!(
        "error: {}: unexpected bytes after the 4 data bytes of [4] when decompressed",
        file.display()
    );
    assert!(out.stderr.contains(&want), "{}", out.stderr);
    assert!(out.peak_kib < 100_000, "{} KiB", out.peak_kib);
}

/// A data file that is a FIFO or a directory is refused by what it is, without blocking.
#[test]
fn a_data_file_that_is_not_a_regular_file_is_refused() {
    let (dir, data) = scratch_idx("idx-fifo", (4, 4, 2, 2));
    let fifo = data.join("train-images-idx3-ubyte");
    std::fs::remove_file(&fifo).unwrap();
    crate::manifests::mkfifo(&fifo);
    std::fs::create_dir(data.join("t10k-images-idx3-ubyte.gz")).unwrap();
    let m = manifest(&dir, &data);
    let out = crate::common::coherent_limited(&["check", &m], std::time::Duration::from_secs(30));
    assert!(!out.timed_out, "check blocks on the FIFO");
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    let want = format!(
        "{}: is a FIFO (named pipe), not a data file",
        fifo.display()
    );
    assert!(out.stderr.contains(&want), "{}", out.stderr);
}

/// A CIFAR-10 file cut at a record boundary is read with a warning that names the directory
/// and gives every file's count and the examples read; nothing is said of complete files.
#[test]
fn cifar_files_with_fewer_records_are_read_with_a_warning() {
    let (dir, m) = scratch_cifar(
        "cifar-short",
        "\n[model]\nplugin = \"mlp\"\nhidden = [4]\n\n[training]\nbatch_size = 10\n",
    );
    let out = run_ok(&["check", &m]);
    let text = stderr(&out);
    let want = format!(
        "c.toml:3:8: warning: {}: the CIFAR-10 files have 10000 records each, but data_batch_1.bin has 30, data_batch_2.bin has 30, data_batch_3.bin has 30, data_batch_4.bin has 30, data_batch_5.bin has 30, test_batch.bin has 30 (cut short, or a subset); read as they are: 150 training and 30 test examples",
        dir.join("cifar").display()
    );
    assert!(text.contains(&want), "{text}");
    assert_eq!(text.matches("warning:").count(), 1, "{text}");
}

/// Every data error names its file once: no `path: path: ...`.
#[test]
fn data_errors_name_their_file_once() {
    for case in ["magic", "truncated", "label", "gzip"] {
        let (dir, data) = scratch_idx(&format!("idx-once-{case}"), (4, 4, 2, 2));
        let (bytes, file, _) = broken(case);
        std::fs::write(data.join(file), bytes).unwrap();
        let text = fails(1, &["check", &manifest(&dir, &data)], case);
        let path = data.join(file).display().to_string();
        assert_eq!(text.matches(&path).count(), 1, "{case}: {text}");
    }
}
