//! Property tests of every plugin's parameters: generated values (huge and negative integers,
//! 1e300, NaN, infinities, NaN-ish strings, empty and giant lists, tables) for the parameters
//! each registered plugin declares (`ParamDoc`: names and types), and for the runner's
//! `[training]` keys, planned in-process as `coherent check` plans them. Each manifest is
//! accepted or refused with errors that are all located (`file:line:col`); nothing panics or
//! aborts, and no network larger than `check` builds is allocated.

use crate::common::{prop_located, PLUGIN_SECTIONS};
use coherent_core::Listing;
use coherent_runner::{Manifest, PlanError, Planner};
use proptest::prelude::*;
use proptest::test_runner::Config;
use std::path::Path;

/// Every parameter of every plugin, with the table that holds it: `(section, plugin, key)`
/// (`plugin` is `None` for the runner's and the protocol's sections).
fn params() -> Vec<(&'static str, Option<&'static str>, &'static str)> {
    let registry = coherent_plugins::registry().unwrap();
    let mut listings: Vec<(&str, bool, Listing)> = Vec::new();
    for (kind, section) in PLUGIN_SECTIONS {
        listings.extend(registry.list(kind).into_iter().map(|l| (section, true, l)));
    }
    let protocols = coherent_runner::protocol::listing().into_iter();
    listings.extend(protocols.map(|l| ("easy_hard", false, l)));
    let runner = coherent_runner::settings::listing().into_iter();
    listings.extend(runner.map(|l| ("training", false, l)));
    let mut out = Vec::new();
    for (section, named, l) in listings {
        for p in l.params.iter().filter(|p| p.name != "path") {
            out.push((section, named.then_some(l.name), p.name));
        }
    }
    out
}

/// Values of every kind, the extreme ones first.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "18446744073709551615",
            "9223372036854775807",
            "-9223372036854775808",
            "-1",
            "0",
            "1",
            "2",
            "1e300",
            "-1e300",
            "nan",
            "-nan",
            "inf",
            "-inf",
            "0.5",
            "\"\"",
            "\"nan\"",
            "\"NaN\"",
            "\"inf\"",
            "\"1e300\"",
            "[]",
            "[[]]",
            "[0]",
            "[18446744073709551615]",
            "[9223372036854775807, 9223372036854775807]",
            "[[9223372036854775807]]",
            "[-1]",
            "true",
            "{ a = 1 }",
        ])
        .prop_map(str::to_string),
        any::<i64>().prop_map(|v| v.to_string()),
        any::<f64>().prop_map(|v| format!("{v:?}")),
        (0usize..3000, any::<u16>())
            .prop_map(|(n, v)| format!("[{}]", vec![v.to_string(); n].join(", "))),
        "\"[a-z0-9]{0,6}\"",
    ]
}

/// A small valid run with `key = value` in the table of `(section, plugin)`.
fn manifest(section: &str, plugin: Option<&str>, key: &str, value: &str) -> String {
    let mut text = String::from("[dataset]\nplugin = \"mnist\"\ntrain_limit = 500\n");
    if section != "model" {
        text.push_str("[model]\nplugin = \"mlp\"\nhidden = [8]\n");
    }
    if section == "easy_hard" {
        text.push_str("[[observers]]\nplugin = \"learning_times\"\n");
    }
    let list = matches!(section, "metrics" | "observers");
    let (open, close) = if list { ("[[", "]]") } else { ("[", "]") };
    text.push_str(&format!("{open}{section}{close}\n"));
    if let Some(p) = plugin {
        text.push_str(&format!("plugin = \"{p}\"\n"));
        if section == "aggregator" && p != key {
            // the required parameter of those that have one, unless it is the one generated
            let required = [("clip", "max_norm", "1.0"), ("trimmed_mean", "b", "1")];
            let required = required.iter().chain(&[("winsorized", "c", "2.0")]);
            for (_, k, v) in required.filter(|(q, k, _)| *q == p && *k != key) {
                text.push_str(&format!("{k} = {v}\n"));
            }
        }
    }
    text.push_str(&format!("{key} = {value}\n"));
    text
}

/// Plans every run of `text` as `check` does; every problem must be located.
fn planned(text: &str) -> Result<(), TestCaseError> {
    let registry = coherent_plugins::registry().unwrap();
    let path = Path::new("p.toml");
    let manifest = match Manifest::parse(path, text.to_string()) {
        Ok(m) => m,
        Err(d) => return prop_located(&d, "p.toml"),
    };
    let mut planner = Planner::new(&manifest, registry).checking();
    for spec in &manifest.runs {
        match planner.plan(spec) {
            Ok(_) => {}
            Err(PlanError::Manifest(d)) => prop_located(&d, "p.toml")?,
            Err(PlanError::Data(e)) => {
                return Err(TestCaseError::fail(format!("a data error: {e}")));
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(Config { cases: 192, failure_persistence: None, ..Config::default() })]

    /// Any value of any parameter of any plugin is accepted or refused at its place.
    #[test]
    fn any_value_of_any_plugin_parameter_is_accepted_or_refused_with_a_location(
        which in any::<prop::sample::Index>(),
        value in value(),
    ) {
        let all = params();
        let (section, plugin, key) = all[which.index(all.len())];
        let text = manifest(section, plugin, key, &value);
        planned(&text).map_err(|e| TestCaseError::fail(format!("{e}\n--- manifest:\n{text}")))?;
    }
}

/// The generator reaches every parameter: each plugin kind, the protocol and `[training]`.
#[test]
fn the_parameters_cover_every_plugin() {
    let all = params();
    for (section, plugin, key) in [
        ("model", Some("mlp"), "hidden"),
        ("aggregator", Some("trimmed_mean"), "b"),
        ("metrics", Some("coherence"), "chunk"),
        ("observers", Some("loss_fractions"), "every"),
        ("easy_hard", None, "epochs"),
        ("training", None, "epochs"),
        ("dataset", Some("mnist"), "train_limit"),
    ] {
        assert!(all.contains(&(section, plugin, key)), "{section} {key}");
    }
    assert!(all.len() > 60, "{}", all.len());
}
