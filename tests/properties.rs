//! Property tests of the manifest loader and the sweep expansion: whatever the bytes, loading
//! either succeeds or fails with diagnostics that all carry `file:line:col` — never a panic —
//! and a generated grid expands to exactly its product of runs, in the documented order, with
//! unique, stable directory names.

use crate::common::prop_located;
use coherent_runner::{Diagnostics, Manifest};
use proptest::prelude::*;
use proptest::test_runner::Config;
use std::path::Path;

/// Valid manifests to mutate.
const BASES: &[&str] = &[
    include_str!("../experiments/quickstart.toml"),
    include_str!("../experiments/toy-linear.toml"),
    include_str!("../experiments/cg-winsorization.toml"),
    crate::sweeps::FOUR_RUNS,
];

fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

fn load(bytes: Vec<u8>) -> Result<Manifest, Diagnostics> {
    Manifest::parse_bytes(Path::new("m.toml"), bytes)
}

/// Every diagnostic of a rejection is located, and rendered as `m.toml:line:col: error: ...`.
fn check_located(result: Result<Manifest, Diagnostics>) -> Result<(), TestCaseError> {
    let Err(diagnostics) = result else {
        return Ok(());
    };
    prop_located(&diagnostics, "m.toml")
}

#[derive(Clone, Debug)]
enum Mutation {
    Flip(usize, u8),
    Truncate(usize),
    Insert(usize, String),
    DeleteLine(usize),
    DuplicateLine(usize),
}

fn toml_line() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        Just("seed".to_string()),
        Just("plugin".to_string()),
        Just("name".to_string()),
        Just("seeds".to_string()),
        Just("\"dataset.label_noise\"".to_string()),
        Just("\"training.lr\"".to_string()),
        Just("model.hidden".to_string()),
        "[a-z_.\"]{1,12}",
    ];
    let value = prop_oneof![
        any::<i64>().prop_map(|v| v.to_string()),
        any::<f64>().prop_map(|v| format!("{v:?}")),
        "\"[a-z0-9 _.-]{0,8}\"",
        Just("[0.0, 1.0]".to_string()),
        Just("[]".to_string()),
        Just("[[64], [128, 128]]".to_string()),
        Just("{ a = 1 }".to_string()),
        Just("true".to_string()),
        "\\PC{0,10}",
    ];
    prop_oneof![
        (key, value).prop_map(|(k, v)| format!("{k} = {v}")),
        "\\[{1,2}[a-z.]{1,10}\\]{1,2}",
        Just("[sweep]".to_string()),
        Just("[[metrics]]".to_string()),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(at, x)| Mutation::Flip(at, x)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), toml_line()).prop_map(|(at, l)| Mutation::Insert(at, l)),
        any::<usize>().prop_map(Mutation::DeleteLine),
        any::<usize>().prop_map(Mutation::DuplicateLine),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    let mut lines: Vec<Vec<u8>> = bytes.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
    match m {
        Mutation::Flip(at, x) if !bytes.is_empty() => {
            let k = at % bytes.len();
            bytes[k] ^= x;
            return;
        }
        Mutation::Truncate(at) => {
            bytes.truncate(at % (bytes.len() + 1));
            return;
        }
        Mutation::Insert(at, line) => {
            lines.insert(at % (lines.len() + 1), line.clone().into_bytes())
        }
        Mutation::DeleteLine(at) => {
            lines.remove(at % lines.len());
        }
        Mutation::DuplicateLine(at) => {
            let line = lines[at % lines.len()].clone();
            lines.insert(at % lines.len(), line);
        }
        Mutation::Flip(..) => {}
    }
    *bytes = lines.join(&b'\n');
}

proptest! {
    #![proptest_config(config(300))]

    #[test]
    fn any_text_is_accepted_or_rejected_with_locations(text in "\\PC{0,200}") {
        check_located(load(text.into_bytes()))?;
    }

    #[test]
    fn toml_like_text_is_accepted_or_rejected_with_locations(
        text in "[\\[\\]a-z0-9=\"., \\n#{}_-]{0,300}"
    ) {
        check_located(load(text.into_bytes()))?;
    }

    #[test]
    fn any_bytes_are_accepted_or_rejected_with_locations(
        bytes in proptest::collection::vec(any::<u8>(), 0..200)
    ) {
        check_located(load(bytes))?;
    }

    #[test]
    fn mutated_manifests_are_accepted_or_rejected_with_locations(
        base in 0..BASES.len(),
        mutations in proptest::collection::vec(mutation(), 1..4),
    ) {
        let mut bytes = BASES[base].as_bytes().to_vec();
        for m in &mutations {
            apply(&mut bytes, m);
        }
        check_located(load(bytes))?;
    }
}

/// Sweepable keys and values with their text in directory names.
const KEYS: &[&str] = &[
    "dataset.label_noise",
    "dataset.variant",
    "model.hidden",
    "training.lr",
    "training.batch_size",
    "aggregator.plugin",
    "evaluation.every_steps",
];

fn value() -> impl Strategy<Value = (String, String)> {
    prop_oneof![
        (-5i64..100).prop_map(|v| (v.to_string(), v.to_string())),
        (0u32..1000).prop_map(|v| {
            let text = format!("{}.{}", v / 100, v % 100);
            (text.clone(), text)
        }),
        "[a-z][a-z 0-9]{0,5}".prop_map(|s| (format!("\"{s}\""), s)),
        Just(("true".to_string(), "true".to_string())),
        Just(("[64, 32]".to_string(), "[64, 32]".to_string())),
    ]
}

/// A grid: its axes (key, values as (TOML, text)), seeds, and where the seeds line goes.
type Grid = (
    Vec<(String, Vec<(String, String)>)>,
    Option<Vec<u16>>,
    usize,
);

fn grid() -> impl Strategy<Value = Grid> {
    let axes = proptest::sample::subsequence(KEYS, 0..=4).prop_flat_map(|keys| {
        keys.into_iter()
            .map(|k| proptest::collection::vec(value(), 1..4).prop_map(move |v| (k.to_string(), v)))
            .collect::<Vec<_>>()
    });
    let seeds = proptest::option::of(proptest::collection::vec(any::<u16>(), 1..4));
    (axes, seeds, 0..5usize)
}

fn grid_text((axes, seeds, seeds_at): &Grid) -> String {
    let mut lines: Vec<String> = axes
        .iter()
        .map(|(k, vs)| {
            let vs: Vec<&str> = vs.iter().map(|(toml, _)| toml.as_str()).collect();
            format!("\"{k}\" = [{}]", vs.join(", "))
        })
        .collect();
    if let Some(s) = seeds {
        let s: Vec<String> = s.iter().map(u16::to_string).collect();
        lines.insert(
            seeds_at % (lines.len() + 1),
            format!("seeds = [{}]", s.join(", ")),
        );
    }
    format!(
        "[dataset]\nplugin = \"toy-linear\"\n[model]\nplugin = \"mlp\"\n[sweep]\n{}\n",
        lines.join("\n")
    )
}

proptest! {
    #![proptest_config(config(200))]

    #[test]
    fn grids_expand_to_their_product_in_order(g in grid()) {
        let text = grid_text(&g);
        let m = load(text.clone().into_bytes()).map_err(|d| TestCaseError::fail(d.to_string()))?;
        let (axes, seeds, _) = &g;
        // The expected axes: in file order, `seeds` last (as `seed`).
        let mut expected: Vec<(String, Vec<String>)> = axes
            .iter()
            .map(|(k, vs)| (k.clone(), vs.iter().map(|(_, t)| t.clone()).collect()))
            .collect();
        if let Some(s) = seeds {
            expected.push(("seed".into(), s.iter().map(u16::to_string).collect()));
        }
        let n: usize = expected.iter().map(|(_, v)| v.len()).product();
        prop_assert_eq!(m.runs.len(), n);
        let mut names = std::collections::HashSet::new();
        for (i, run) in m.runs.iter().enumerate() {
            prop_assert_eq!(run.index, i);
            prop_assert!(names.insert(run.dir_name()), "duplicate {}", run.dir_name());
            let prefix = format!("{i:03}");
            prop_assert!(run.dir_name().starts_with(&prefix));
            // Mixed radix, the last axis fastest.
            let mut rest = i;
            let mut want = vec![];
            for (k, vs) in expected.iter().rev() {
                want.push((k.clone(), vs[rest % vs.len()].clone()));
                rest /= vs.len();
            }
            want.reverse();
            prop_assert_eq!(&run.params, &want);
        }
        let again = load(text.into_bytes()).unwrap();
        let a: Vec<String> = m.runs.iter().map(|r| r.dir_name()).collect();
        let b: Vec<String> = again.runs.iter().map(|r| r.dir_name()).collect();
        prop_assert_eq!(a, b);
    }
}

#[test]
fn deeply_nested_values_are_rejected_or_accepted_without_overflow() {
    for depth in [100, 10_000] {
        let text = format!("seed = {}{}", "[".repeat(depth), "]".repeat(depth));
        let _ = check_located(load(text.into_bytes()));
        let text = format!("seed = {}", "[".repeat(depth));
        check_located(load(text.into_bytes())).unwrap();
    }
}
