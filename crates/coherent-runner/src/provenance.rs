//! Where a run comes from: the program that ran it, the framework's source, and the plugin
//! crates that provided each plugin it used (recorded in `run.json`).

use coherent_core::{CrateId, Registry};
use coherent_record::meta::{CrateMeta, PluginUse};
use std::sync::OnceLock;

static PROGRAM: OnceLock<String> = OnceLock::new();

/// Names the program that runs (a researcher's own binary built on `coherent-cli`, or
/// `coherent`); the first call wins.
pub fn set_program(name: &str) {
    let _ = PROGRAM.set(name.to_string());
}

/// The program's name (`coherent` unless [`set_program`] said otherwise).
pub fn program() -> &'static str {
    PROGRAM.get().map_or("coherent", String::as_str)
}

/// The framework's git commit, captured when it was built (`None` when it was not built from a
/// git checkout).
pub fn git_commit() -> Option<&'static str> {
    option_env!("COHERENT_GIT_COMMIT")
}

/// A crate as the record names it.
pub fn crate_meta(id: CrateId) -> CrateMeta {
    CrateMeta {
        name: id.name.into(),
        version: id.version.into(),
    }
}

/// Every crate that registered plugins in this program, sorted by name.
pub fn linked_crates(registry: &Registry) -> Vec<CrateMeta> {
    let mut ids: Vec<CrateId> = coherent_core::PluginKind::ALL
        .iter()
        .flat_map(|k| registry.list(*k))
        .map(|l| l.krate)
        .chain(
            crate::protocol::ProtocolEntry::all()
                .iter()
                .map(|e| e.krate),
        )
        .collect();
    ids.sort();
    ids.dedup();
    ids.into_iter().map(crate_meta).collect()
}

/// One plugin a run uses: its role (`model`, `metric`, ...), name and crate.
pub fn plugin_use(role: &str, name: &str, krate: CrateId) -> PluginUse {
    PluginUse {
        role: role.into(),
        plugin: name.into(),
        krate: crate_meta(krate),
    }
}
