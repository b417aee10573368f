//! The observers of a run: those every run has by default (unless switched off), and those
//! the `[[observers]]` tables add, with the keys of `[evaluation]` that configured some of them
//! before they were plugins.

use super::sections::{span_in, Sections, Value};
use crate::settings::MOVED_TO_OBSERVERS;
use coherent_core::{ConfigError, ObserverEntry, PluginArgs, Registry, RunObserver};
use serde::Deserialize;

/// An observer, built, with its registry name (its key in `summary.json`).
pub struct PlannedObserver {
    /// Its registry name.
    pub name: String,
    /// The observer.
    pub observer: Box<dyn RunObserver>,
}

/// Whether a listed observer is on.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Switch {
    enabled: Option<bool>,
}

/// One observer chosen for the run, with its arguments.
struct Choice {
    entry: &'static ObserverEntry,
    args: PluginArgs,
    /// Whether an `[[observers]]` table names it.
    listed: bool,
}

/// Every observer of `root`: the default ones (sorted by name), then the others in manifest
/// order.
pub fn plan(
    cx: &mut Sections<'_>,
    root: &Value,
    registry: &Registry,
) -> Option<Vec<PlannedObserver>> {
    let errors = cx.diags.len();
    let mut chosen: Vec<Choice> = registry
        .observers
        .values()
        .filter(|e| e.default_on)
        .map(|entry| Choice {
            entry,
            args: PluginArgs::empty(),
            listed: false,
        })
        .collect();
    for table in cx.tables(root, "observers") {
        let Some((entry, args)) = cx.plugin(&table, "observer", &registry.observers) else {
            continue;
        };
        match chosen.iter_mut().find(|c| c.entry.name == entry.name) {
            Some(c) if c.listed => cx.error(ConfigError::new(
                span_in(Some(&table), "plugin"),
                format!("observer `{}` is listed twice", entry.name),
            )),
            Some(c) => (c.args, c.listed) = (args, true),
            None => chosen.push(Choice {
                entry,
                args,
                listed: true,
            }),
        }
    }
    let evaluation = cx.section(root, "evaluation");
    let mut planned = Vec::new();
    for Choice { entry, args, .. } in chosen {
        let Some(args) = moved_keys(cx, entry, args, &evaluation) else {
            continue;
        };
        let (switch, rest) = args.split_off(&["enabled"]);
        let Ok(Switch { enabled }) = switch.parse().map_err(|e| cx.error(e)) else {
            continue;
        };
        if enabled == Some(false) {
            continue;
        }
        match (entry.build)(&rest) {
            Ok(observer) => planned.push(PlannedObserver {
                name: entry.name.to_string(),
                observer,
            }),
            Err(e) => cx.error(e),
        }
    }
    (cx.diags.len() == errors).then_some(planned)
}

/// The observer's arguments with the deprecated `[evaluation]` keys that configure it.
fn moved_keys(
    cx: &mut Sections<'_>,
    entry: &ObserverEntry,
    mut args: PluginArgs,
    evaluation: &PluginArgs,
) -> Option<PluginArgs> {
    for (old, observer, key) in MOVED_TO_OBSERVERS {
        if *observer != entry.name || !evaluation.has(old) {
            continue;
        }
        match args.with_moved(evaluation, old, key) {
            Ok(moved) => {
                args = moved;
                cx.warn(
                    ConfigError::new(
                        Some(evaluation.span_of(old)),
                        format!("`[evaluation] {old}` is deprecated"),
                    )
                    .with_help(format!(
                        "write `[[observers]]` with `plugin = \"{observer}\"` and `{key} = ...`"
                    )),
                );
            }
            Err(span) => {
                cx.error(ConfigError::new(
                    Some(span),
                    format!("`[evaluation] {old}` and the `{observer}` observer's `{key}` both set it; keep the observer's"),
                ));
                return None;
            }
        }
    }
    Some(args)
}
