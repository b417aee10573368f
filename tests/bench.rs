//! The engine benchmark runs and reports every case of both networks, in both forms.

use crate::common::{coherent, fails, root, run_ok, scratch, stderr, stdout, strings_of_each};

#[test]
fn bench_reports_every_case_as_json_and_as_a_table() {
    let out = run_ok(&[
        "bench", "--json", "--reps", "1", "--min-ms", "1", "--batch", "32",
    ]);
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("JSON report");
    let networks = report["networks"].as_array().unwrap();
    assert_eq!(networks.len(), 2);
    let expected: [&[&str]; 2] = [
        &["plain", "coherence", "materialize", "loop", "loop_engine"],
        &["plain", "coherence", "materialize", "loop_engine"],
    ];
    for (n, want) in networks.iter().zip(expected) {
        let cases = strings_of_each(&n["cases"], "case");
        assert_eq!(cases, want, "{}", n["network"]);
        for c in n["cases"].as_array().unwrap() {
            assert!(c["ms_per_step"].as_f64().unwrap() > 0.0);
            assert!(c["vs_plain"].as_f64().unwrap() > 0.0);
        }
        assert_eq!(n["cases"][0]["vs_plain"], 1.0);
        assert_step_arithmetic(n, &report);
        assert_eq!(n["sample"]["examples"], 10_000);
        assert!(n["sample"]["coherence"].as_f64().unwrap() > 1.0);
    }

    let aggregators = strings_of_each(&report["aggregators"]["cases"], "case");
    assert_eq!(
        aggregators,
        [
            "mean",
            "winsorized c=0",
            "winsorized c=1",
            "winsorized c=2",
            "winsorized c=4",
            "winsorized c=8",
            "winsorized c=10",
            "winsorized c=25",
            "coordinate_median",
            "trimmed_mean b=0",
            "trimmed_mean b=2",
            "trimmed_mean b=8",
            "trimmed_mean b=20",
            "median_of_means k=3",
            "rm3",
            "clip max_norm=1.0",
            "geometric_median",
            "tanh: mean",
            "tanh: winsorized c=4",
            "tanh: trimmed_mean b=8",
            "tanh: coordinate_median"
        ]
    );
    // each network's ratios are to its own plain step
    let cases = report["aggregators"]["cases"].as_array().unwrap();
    assert_eq!(
        (&cases[0]["vs_plain"], &cases[17]["vs_plain"]),
        (&1.0.into(), &1.0.into())
    );

    let table = coherent(&["bench", "--reps", "1", "--min-ms", "1", "--network", "mlp"]);
    assert!(table.status.success());
    let text = stdout(&table);
    assert!(
        text.contains("vs plain") && text.contains("10000-example sample") && !text.contains("cnn")
    );
}

/// The step's operations, the achieved rate of every case and its fraction of the measured
/// matrix-product throughput agree with each other.
fn assert_step_arithmetic(n: &serde_json::Value, report: &serde_json::Value) {
    assert!(report["gemm_gflops"].as_f64().unwrap() > 1.0, "{report}");
    // the fractions are of the square product measured among the network's cases
    let gemm = n["gemm_gflops"].as_f64().unwrap();
    assert!(gemm > 1.0, "{gemm}");
    let flops = n["step_flops"].as_f64().unwrap();
    for c in n["cases"].as_array().unwrap() {
        let ms = c["ms_per_step"].as_f64().unwrap();
        let gflops = c["gflops"].as_f64().unwrap();
        assert!((gflops - flops / (ms * 1e6)).abs() <= 1e-9 * gflops, "{c}");
        let of_gemm = c["of_gemm"].as_f64().unwrap();
        assert!((of_gemm - gflops / gemm).abs() <= 1e-9 * of_gemm, "{c}");
    }
    assert!(n["step_peak_mib"].as_f64().is_some_and(|m| m >= 0.0), "{n}");
}

#[test]
fn bench_measures_the_cifar_shaped_networks() {
    for (network, label, flops) in [
        ("resnet", "resnet-20", 2.0 * 2.0 * (3.0 * 40.55e6)),
        ("vgg", "vgg groupnorm", 0.0),
    ] {
        let out = run_ok(&[
            "bench",
            "--json",
            "--reps",
            "1",
            "--min-ms",
            "1",
            "--batch",
            "2",
            "--network",
            network,
        ]);
        let report: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("JSON");
        let n = &report["networks"][0];
        assert!(n["network"].as_str().unwrap().starts_with(label), "{n}");
        let cases = strings_of_each(&n["cases"], "case");
        assert_eq!(cases, ["plain", "coherence", "materialize"]);
        assert_step_arithmetic(n, &report);
        assert!(n["sample"].is_null());
        let step = n["step_flops"].as_f64().unwrap();
        if flops > 0.0 {
            // ResNet-20: about 41M multiply-adds per image forward (He et al.)
            assert!((step - flops).abs() < 0.02 * flops, "{step}");
        }
    }
}

#[test]
fn bench_rejects_zero_repetitions() {
    fails(2, &["bench", "--reps", "0"], "zero repetitions");
}

#[test]
fn bench_serves_one_networks_plain_step_on_request() {
    use std::io::Write;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_coherent"))
        .args(["bench", "--network", "mlp", "--batch", "16", "--serve"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the coherent binary runs");
    let requests = b"steps 2\nsteps two\nsteps 1\nquit\nsteps 3\n";
    child.stdin.take().unwrap().write_all(requests).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "nothing after quit: {text}");
    assert_eq!(lines[0], "ready");
    let json = |line: &str| -> serde_json::Value { serde_json::from_str(line).expect(line) };
    for answer in [lines[1], lines[3]] {
        let ms = json(answer)["ms_per_step"].as_f64();
        assert!(ms.is_some_and(|ms| ms > 0.0), "{answer}");
    }
    let error = json(lines[2])["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        error.contains("steps two") && error.contains("`steps N`"),
        "{error}"
    );

    // the report's choices that are not one network are refused, saying what --serve takes
    let text = fails(2, &["bench", "--serve"], "--serve without a network");
    assert!(text.contains("--serve takes one network"), "{text}");
}

#[test]
fn side_by_side_script_tabulates_coherent_and_rewrites_the_readme_block() {
    let readme = scratch("side-by-side").join("README.md");
    std::fs::write(
        &readme,
        "# t\n\nbefore\n<!-- side-by-side -->\nold table\n<!-- /side-by-side -->\nafter\n",
    )
    .unwrap();
    let out = std::process::Command::new("python3")
        .arg(root().join("bench/side_by_side.py"))
        .args([
            "--rounds",
            "1",
            "--networks",
            "mlp",
            "--reps",
            "1",
            "--coherent",
        ])
        .arg(env!("CARGO_BIN_EXE_coherent"))
        .arg("--readme")
        .arg(&readme)
        .output()
        .expect("python3 runs");
    assert!(out.status.success(), "{}", stderr(&out));
    let table = stdout(&out);
    for case in [
        "| plain |",
        "| coherence |",
        "| materialize |",
        "peak memory",
    ] {
        assert!(table.contains(case), "{case}: {table}");
    }
    assert!(table.contains("mlp 784-256-10, 128"), "{table}");
    let text = std::fs::read_to_string(&readme).unwrap();
    assert!(text.starts_with("# t\n\nbefore\n<!-- side-by-side -->\n| network"));
    assert!(text.ends_with("<!-- /side-by-side -->\nafter\n") && !text.contains("old table"));
}
