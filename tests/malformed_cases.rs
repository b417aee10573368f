//! The malformed manifests of `malformed.rs`, generated from the registry's parameter docs and
//! from tables.

use crate::common::PLUGIN_SECTIONS;
use coherent_core::{Listing, ParamDoc};

/// A manifest to refuse: its name and bytes, and a piece of the diagnostics, if one is known.
pub struct Case {
    /// Its name (and file name).
    pub name: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// A piece of the diagnostics, if one is known.
    pub expect: Option<String>,
}

pub fn case(name: impl Into<String>, text: impl Into<String>, expect: Option<&str>) -> Case {
    Case {
        name: name.into(),
        bytes: text.into().into_bytes(),
        expect: expect.map(str::to_string),
    }
}

/// A small valid run to break: 1000 MNIST examples, a small MLP.
pub const DATASET: &str = "[dataset]\nplugin = \"mnist\"\ntrain_limit = 1000\n";
pub const MODEL: &str = "[model]\nplugin = \"mlp\"\nhidden = [16]\n";

/// The valid manifest with `extra` appended and the sections named in `replace` left out.
pub fn manifest(replace: &[&str], extra: &str) -> String {
    let mut text = String::new();
    if !replace.contains(&"dataset") {
        text.push_str(DATASET);
    }
    if !replace.contains(&"model") {
        text.push_str(MODEL);
    }
    text.push_str(extra);
    text
}

/// The valid manifest with top-level `lines` before its sections (and those named in `replace`
/// left out).
fn top(replace: &[&str], lines: &str) -> String {
    format!("{lines}{}", manifest(replace, ""))
}

/// What a section's table needs besides the parameter under test (a dataset's `path`, a
/// required parameter).
fn required(section: &str, plugin: &str) -> &'static str {
    match (section, plugin) {
        ("aggregator", "clip") => "max_norm = 1.0\n",
        ("aggregator", "trimmed_mean") => "b = 1\n",
        ("aggregator", "winsorized") => "c = 2.0\n",
        _ => "",
    }
}

/// `[section]` (or `[[section]]`) choosing `plugin`, with `body`; `None`: a runner section.
fn table(section: &str, plugin: Option<&str>, body: &str) -> String {
    let list = matches!(section, "metrics" | "observers");
    let head = if list {
        format!("[[{section}]]\n")
    } else {
        format!("[{section}]\n")
    };
    match plugin {
        Some(p) => format!("{head}plugin = \"{p}\"\n{}{body}", required(section, p)),
        None => format!("{head}{body}"),
    }
}

/// The manifest with `section` (choosing `plugin`) holding `body`.
fn with_table(section: &str, plugin: Option<&str>, body: &str) -> String {
    let replace: &[&str] = match section {
        "dataset" => &["dataset"],
        "model" => &["model"],
        _ => &[],
    };
    let mut extra = String::new();
    if section == "easy_hard" {
        extra.push_str("[[observers]]\nplugin = \"learning_times\"\n");
    }
    extra.push_str(&table(section, plugin, body));
    manifest(replace, &extra)
}

/// A value of the wrong type for a parameter of type `ty`.
fn wrong_type(ty: &str) -> &'static str {
    if ty.contains("list") {
        "\"many\""
    } else if ty.contains("boolean") {
        "\"yes\""
    } else {
        "{ value = 1 }"
    }
}

/// Out-of-range values for a parameter of type `ty` (none if it has no range to leave).
fn out_of_range(ty: &str) -> Vec<&'static str> {
    if ty.contains("list of lists") {
        vec!["[[-1]]", "[[9223372036854775807]]"]
    } else if ty.contains("integers") {
        vec!["[-1]", "[18446744073709551615]"]
    } else if ty.starts_with("integer") {
        vec!["-1", "1e300"]
    } else if ty.starts_with("float") {
        vec!["nan", "-inf"]
    } else if ty.contains('"') {
        vec!["\"no-such-choice\""]
    } else {
        vec![]
    }
}

/// The plugins of a section, with their parameters.
fn sections() -> Vec<(&'static str, Listing)> {
    let registry = coherent_plugins::registry().unwrap();
    let mut out = Vec::new();
    for (kind, section) in PLUGIN_SECTIONS {
        // this test program also links a test observer the binary does not have
        let linked = registry.list(kind).into_iter();
        out.extend(
            linked
                .filter(|l| l.name != "class_coherence")
                .map(|l| (section, l)),
        );
    }
    out.extend(
        coherent_runner::protocol::listing()
            .into_iter()
            .map(|l| ("easy_hard", l)),
    );
    out
}

/// Unknown keys, wrong types and out-of-range values of every parameter of every plugin.
pub fn plugin_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for (section, listing) in sections() {
        let plugin = (section != "easy_hard").then_some(listing.name);
        let name = listing.name;
        let text = with_table(section, plugin, "no_such_key = 1\n");
        cases.push(case(
            format!("{name}-unknown-key"),
            text,
            Some("no_such_key"),
        ));
        for ParamDoc { name: key, ty, .. } in &listing.params {
            if *key == "path" {
                continue;
            }
            let body = format!("{key} = {}\n", wrong_type(ty));
            let text = with_table(section, plugin, &body);
            cases.push(case(format!("{name}-{key}-wrong-type"), text, None));
            for (k, value) in out_of_range(ty).into_iter().enumerate() {
                let body = format!("{key} = {value}\n");
                let text = with_table(section, plugin, &body);
                cases.push(case(format!("{name}-{key}-out-of-range-{k}"), text, None));
            }
        }
    }
    cases
}

/// The runner's own keys: out of range, overflowing, unknown.
pub fn runner_cases() -> Vec<Case> {
    let training = |body: &str| manifest(&[], &format!("[training]\n{body}"));
    vec![
        case("lr-negative", training("lr = -0.1\n"), Some("`lr`")),
        case("lr-nan", training("lr = nan\n"), Some("`lr`")),
        case("momentum-one", training("momentum = 1.0\n"), Some("`momentum`")),
        case("weight-decay-inf", training("weight_decay = inf\n"), None),
        case("batch-zero", training("batch_size = 0\n"), Some("`batch_size`")),
        case("batch-larger-than-data", training("batch_size = 1001\n"), Some("larger than the training set")),
        case("epochs-zero", training("epochs = 0\n"), Some("`epochs`")),
        case("epochs-overflow", training("epochs = 1844674407370955162\n"), Some("more than a run may have")),
        case("epochs-i64-max", training("epochs = 9223372036854775807\n"), Some("more than a run may have")),
        case("epochs-times-steps", training("batch_size = 1\nepochs = 2000000000\n"), Some("steps, more than a run may have")),
        case("max-steps-zero", training("max_steps = 0\n"), Some("`max_steps`")),
        case("max-steps-huge", training("max_steps = 1000000000001\n"), Some("more than a run may have")),
        case("checkpoint-every-negative", training("checkpoint_every = -5\n"), None),
        case("optimizer-adam", training("optimizer = \"adam\"\n"), Some("sgd")),
        case("training-unknown", training("learning_rate = 0.1\n"), Some("learning_rate")),
        case("training-duplicate", training("lr = 0.1\nlr = 0.2\n"), None),
        case("seed-negative", top(&[], "seed = -1\n"), Some("`seed`")),
        case("seed-string", top(&[], "seed = \"zero\"\n"), Some("`seed`")),
        case("top-level-unknown", top(&[], "optimiser = \"sgd\"\n"), Some("optimiser")),
        case("name-number", top(&[], "name = 5\n"), None),
        case("evaluation-unknown", manifest(&[], "[evaluation]\nevery = 5\n"), Some("every")),
        case("evaluation-every-zero", manifest(&[], "[evaluation]\nevery_steps = 0\n"), None),
        case("evaluation-train-limit-zero", manifest(&[], "[evaluation]\ntrain_limit = 0\n"), None),
        case("evaluation-plots-string", manifest(&[], "[evaluation]\nplots = \"yes\"\n"), None),
        case("record-unknown", manifest(&[], "[record]\nweights = 5\n"), None),
        case("record-weights-every-negative", manifest(&[], "[record]\nweights_every = -1\n"), None),
        case("model-weights-missing", manifest(&[], "").replace("hidden = [16]\n", "hidden = [16]\nweights = \"no-such.safetensors\"\n"), Some("weights")),
        case("model-not-a-table", top(&["model"], "model = \"mlp\"\n"), None),
        case("no-model", manifest(&["model"], ""), None),
        case("no-dataset", manifest(&["dataset"], ""), None),
        case("dataset-unknown-plugin", manifest(&["dataset"], "[dataset]\nplugin = \"imagenet\"\n"), Some("imagenet")),
        case("dataset-plugin-number", manifest(&["dataset"], "[dataset]\nplugin = 7\n"), None),
        case("dataset-no-plugin", manifest(&["dataset"], "[dataset]\ntrain_limit = 10\n"), None),
        case("metrics-not-a-list", top(&[], "metrics = 5\n"), None),
        case("metrics-twice", manifest(&[], "[[metrics]]\nplugin = \"gsnr\"\n[[metrics]]\nplugin = \"gsnr\"\n"), Some("twice")),
        case("metric-sample-too-large", manifest(&[], "[[metrics]]\nplugin = \"coherence\"\nsample = 1001\n"), None),
        case("metric-sample-huge", manifest(&[], "[[metrics]]\nplugin = \"stiffness\"\nsample = 18446744073709551615\n"), None),
        case("metric-chunk-pairwise", manifest(&[], "[[metrics]]\nplugin = \"stiffness\"\nchunk = 10\n"), None),
        case("two-protocol-sections-and-limit", manifest(&[], "[easy_hard]\n[evaluation]\ntrain_limit = 10\n"), None),
        case("easy-hard-epochs-overflow", manifest(&[], "[[observers]]\nplugin = \"learning_times\"\n[easy_hard]\nepochs = 9223372036854775807\n"), Some("epochs of 10 steps")),
    ]
}

/// The defects of the user's report and their neighbours, each in its own manifest: values
/// that overflow, do not fit the batch, or make a network too large.
pub fn defect_cases() -> Vec<Case> {
    let aggregator = |body: &str| manifest(&[], &format!("[aggregator]\n{body}"));
    vec![
        case(
            "trimmed-b-60",
            aggregator("plugin = \"trimmed_mean\"\nb = 60\n"),
            Some("`b` must be in 0..=49"),
        ),
        case(
            "trimmed-b-huge",
            aggregator("plugin = \"trimmed_mean\"\nb = 18446744073709551615\n"),
            Some("`b`"),
        ),
        case(
            "median-of-means-k-101",
            aggregator("plugin = \"median_of_means\"\nk = 65\n"),
            Some("`k`"),
        ),
        case(
            "median-of-means-k-batch",
            manifest(
                &[],
                "[training]\nbatch_size = 8\n[aggregator]\nplugin = \"median_of_means\"\nk = 9\n",
            ),
            Some("`k` must be in 1..=8"),
        ),
        case(
            "winsorized-c-50",
            aggregator("plugin = \"winsorized\"\nc = 50.0\n"),
            Some("`c`"),
        ),
        case(
            "winsorized-clip-count-50",
            aggregator("plugin = \"winsorized\"\nclip_count = 50\n"),
            Some("`clip_count` must be in 0..=49"),
        ),
        case(
            "winsorized-both",
            aggregator("plugin = \"winsorized\"\nc = 2.0\nclip_count = 2\n"),
            None,
        ),
        case(
            "geometric-median-zero",
            aggregator("plugin = \"geometric_median\"\niterations = 0\n"),
            Some("`iterations`"),
        ),
        case(
            "geometric-median-huge",
            aggregator("plugin = \"geometric_median\"\niterations = 18446744073709551615\n"),
            Some("`iterations`"),
        ),
        case(
            "trimmed-last-batch",
            manifest(
                &[],
                "[training]\nbatch_size = 300\n[aggregator]\nplugin = \"trimmed_mean\"\nb = 60\n",
            ),
            Some("the last batch of each epoch, 100 examples"),
        ),
        case(
            "rm3-momentum",
            manifest(
                &[],
                "[training]\nmomentum = 0.9\n[aggregator]\nplugin = \"rm3\"\n",
            ),
            Some("momentum"),
        ),
        case(
            "hidden-huge",
            manifest(
                &["model"],
                "[model]\nplugin = \"mlp\"\nhidden = [100000000]\n",
            ),
            Some("parameters, more than a run may have"),
        ),
        case(
            "hidden-i64-max",
            manifest(
                &["model"],
                "[model]\nplugin = \"mlp\"\nhidden = [9223372036854775807]\n",
            ),
            Some("parameters, more than a run may have"),
        ),
        case(
            "hidden-product",
            manifest(
                &["model"],
                "[model]\nplugin = \"mlp\"\nhidden = [100000, 100000]\n",
            ),
            Some("parameters"),
        ),
        case(
            "hidden-zero",
            manifest(&["model"], "[model]\nplugin = \"mlp\"\nhidden = [0]\n"),
            Some("`hidden`"),
        ),
        case(
            "hidden-giant-list",
            manifest(
                &["model"],
                &format!(
                    "[model]\nplugin = \"mlp\"\nhidden = [{}]\n",
                    vec!["1000"; 2000].join(", ")
                ),
            ),
            Some("parameters"),
        ),
        case(
            "lenet-channels-huge",
            manifest(
                &["model"],
                "[model]\nplugin = \"lenet\"\nchannels = [6, 4000000000]\n",
            ),
            Some("parameters"),
        ),
        case(
            "lenet-kernel-huge",
            manifest(
                &["model"],
                "[model]\nplugin = \"lenet\"\nkernel = 9223372036854775807\n",
            ),
            None,
        ),
        case(
            "lenet-padding-huge",
            manifest(
                &["model"],
                "[model]\nplugin = \"lenet\"\npadding = [9223372036854775807, 0]\n",
            ),
            None,
        ),
        case(
            "alexnet-channels-four",
            manifest(
                &["model"],
                "[model]\nplugin = \"alexnet\"\nchannels = [1, 2, 3, 4]\n",
            ),
            None,
        ),
        case(
            "vgg-stage-huge",
            manifest(
                &["model"],
                "[model]\nplugin = \"vgg\"\nstages = [[100000, 100000]]\n",
            ),
            Some("parameters"),
        ),
        case(
            "resnet-width-huge",
            manifest(
                &["model"],
                "[model]\nplugin = \"resnet\"\nwidth = 9223372036854775807\n",
            ),
            Some("channels"),
        ),
        case(
            "resnet-depth-huge",
            manifest(
                &["model"],
                "[model]\nplugin = \"resnet\"\ndepth = 6000000000000000002\n",
            ),
            Some("layers"),
        ),
        case(
            "resnet-depth-7",
            manifest(&["model"], "[model]\nplugin = \"resnet\"\ndepth = 7\n"),
            Some("`depth`"),
        ),
        case(
            "resnet-groups-3",
            manifest(&["model"], "[model]\nplugin = \"resnet\"\ngroups = 3\n"),
            None,
        ),
        case(
            "train-limit-zero",
            manifest(
                &["dataset"],
                "[dataset]\nplugin = \"mnist\"\ntrain_limit = 0\n",
            ),
            None,
        ),
        case(
            "label-noise-negative",
            manifest(
                &["dataset"],
                "[dataset]\nplugin = \"mnist\"\nlabel_noise = -0.1\n",
            ),
            Some("`label_noise`"),
        ),
        case(
            "cifar-no-path",
            manifest(&["dataset"], "[dataset]\nplugin = \"cifar10\"\n"),
            Some("path"),
        ),
    ]
}

/// Sweeps: bad axes, and axes with one value that cannot run.
pub fn sweep_cases() -> Vec<Case> {
    let sweep = |body: &str| manifest(&[], &format!("[sweep]\n{body}"));
    vec![
        case("sweep-unknown-section", sweep("\"optimizer.lr\" = [0.1]\n"), None),
        case("sweep-unknown-key", sweep("\"training.learning_rate\" = [0.1, 0.2]\n"), Some("learning_rate")),
        case("sweep-empty-axis", sweep("\"training.lr\" = []\n"), None),
        case("sweep-not-a-list", sweep("\"training.lr\" = 0.1\n"), None),
        case("sweep-seeds-empty", sweep("seeds = []\n"), None),
        case("sweep-seeds-negative", sweep("seeds = [-1]\n"), None),
        case("sweep-record-axis", sweep("\"record.weights_every\" = [1, 2]\n"), None),
        case("sweep-no-dot", sweep("lr = [0.1]\n"), None),
        case("sweep-not-a-table", top(&[], "sweep = [1, 2]\n"), None),
        case("sweep-epochs-overflow", sweep("\"training.epochs\" = [1, 9223372036854775807]\n"), Some("in run 001")),
        case("sweep-hidden-huge", sweep("\"model.hidden\" = [[16], [100000000]]\n"), Some("in run 001")),
        case("sweep-trimmed-b", manifest(&[], "[aggregator]\nplugin = \"trimmed_mean\"\nb = 1\n[sweep]\n\"aggregator.b\" = [1, 60]\n"), Some("in run 001")),
        case("sweep-batch-zero", sweep("\"training.batch_size\" = [0, 10]\n"), Some("in run 000")),
        case("sweep-tables-bad-plugin", sweep("aggregator = [{ plugin = \"mean\" }, { plugin = \"medain\" }]\n"), Some("medain")),
        case("sweep-duplicate-axis", sweep("\"training.lr\" = [0.1]\n\"training.lr\" = [0.2]\n"), None),
        case("sweep-zero-width", sweep("\"model.hidden\" = [[16], [0]]\n"), Some("in run 001")),
    ]
}

/// TOML that does not parse: duplicate keys and tables, bad syntax.
pub fn syntax_cases() -> Vec<Case> {
    vec![
        case(
            "duplicate-dataset-key",
            manifest(
                &["dataset"],
                "[dataset]\nplugin = \"mnist\"\nplugin = \"mnist\"\n",
            ),
            None,
        ),
        case(
            "duplicate-model-table",
            manifest(&[], "[model]\nplugin = \"mlp\"\n"),
            None,
        ),
        case(
            "duplicate-aggregator-key",
            manifest(&[], "[aggregator]\nplugin = \"mean\"\nplugin = \"rm3\"\n"),
            None,
        ),
        case(
            "duplicate-metric-key",
            manifest(
                &[],
                "[[metrics]]\nplugin = \"gsnr\"\nsample = 10\nsample = 20\n",
            ),
            None,
        ),
        case("duplicate-top-key", top(&[], "seed = 1\nseed = 2\n"), None),
        case("unclosed-string", top(&[], "name = \"run\n"), None),
        case("unclosed-list", top(&[], "seed = [1, 2\n"), None),
        case("equals-twice", top(&[], "seed = = 1\n"), None),
        case("bare-value", manifest(&[], "42\n"), None),
        case(
            "integer-too-large",
            top(&[], "seed = 99999999999999999999999\n"),
            None,
        ),
        case("table-header-bad", manifest(&[], "[training\n"), None),
    ]
}

/// Bytes that are not UTF-8, and an empty file.
pub fn byte_cases() -> Vec<Case> {
    let mut latin1 = b"name = \"caf".to_vec();
    latin1.extend([0xe9, b'"', b'\n']);
    latin1.extend(manifest(&[], "").into_bytes());
    let mut comment = DATASET.as_bytes().to_vec();
    comment.extend(b"# \xff\xfe\n");
    comment.extend(MODEL.as_bytes());
    vec![
        Case {
            name: "not-utf8-value".into(),
            bytes: latin1,
            expect: None,
        },
        Case {
            name: "not-utf8-comment".into(),
            bytes: comment,
            expect: None,
        },
        Case {
            name: "nul-bytes".into(),
            bytes: b"[dataset]\0\nplugin = \"mnist\"\n".to_vec(),
            expect: None,
        },
        case("empty", "", None),
    ]
}
