//! Plugin crates: where each plugin comes from, and how a program links a crate of plugins.
//!
//! `inventory` registrations live in the crate that submits them, and a crate that nothing
//! refers to is not linked: its plugins would silently vanish. So every plugin crate declares
//! itself with [`plugin_crate!`] — a `PLUGINS` static naming the crate and its version — and a
//! program passes that static to the command line (`coherent_cli::App::with(&my_crate::PLUGINS)`):
//! the reference links the crate, and the program checks that each crate it was given registered
//! plugins. Plugins are submitted with [`register!`], which stamps each entry with its crate, so
//! every run records which crate (and version) provided each plugin it used.

/// A crate by name and version, as Cargo knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CrateId {
    /// The package name (`coherent-mlp`).
    pub name: &'static str,
    /// Its version (`0.1.0`).
    pub version: &'static str,
}

/// The plugins of a crate as a program links them: the crate itself, and the plugin crates it
/// bundles (a crate such as `coherent-plugins` that links others). Declare it with
/// [`plugin_crate!`](crate::plugin_crate!).
#[derive(Debug)]
pub struct PluginCrate {
    /// The crate.
    pub id: CrateId,
    /// The plugin crates it links in turn.
    pub includes: &'static [&'static PluginCrate],
}

impl PluginCrate {
    /// This crate and every crate it bundles, depth first, each once.
    pub fn all(&'static self) -> Vec<&'static PluginCrate> {
        let mut out: Vec<&'static PluginCrate> = Vec::new();
        let mut stack = vec![self];
        while let Some(c) = stack.pop() {
            if !out.iter().any(|o| o.id == c.id) {
                out.push(c);
                stack.extend(c.includes.iter().rev());
            }
        }
        out
    }
}

/// The [`CrateId`] of the crate this is written in.
#[macro_export]
macro_rules! this_crate {
    () => {
        $crate::CrateId {
            name: env!("CARGO_PKG_NAME"),
            version: env!("CARGO_PKG_VERSION"),
        }
    };
}

/// Declares the crate's plugins for a program to link: a `pub static PLUGINS` with the crate's
/// name and version, and the plugin crates it bundles (`plugin_crate!(other::PLUGINS, ...)`).
///
/// ```ignore
/// coherent_core::plugin_crate!();
/// // in a program:
/// coherent_cli::App::new("my-coherent").with(&my_plugins::PLUGINS).main()
/// ```
#[macro_export]
macro_rules! plugin_crate {
    ($($bundled:path),* $(,)?) => {
        /// This crate's plugins (and those of the crates it bundles), for a program to link:
        /// pass `&PLUGINS` to the command line's `App::with`.
        pub static PLUGINS: $crate::PluginCrate = $crate::PluginCrate {
            id: $crate::this_crate!(),
            includes: &[$(&$bundled),*],
        };
    };
}

/// Submits a plugin's registry entry, stamped with the crate it comes from:
///
/// ```ignore
/// coherent_core::register! {
///     MetricEntry {
///         name: "my_metric",
///         description: "...",
///         params: MyConfig::params,
///         sampling: Sampling::STREAMED,
///         headline: &[],
///         build,
///     }
/// }
/// ```
#[macro_export]
macro_rules! register {
    ($($entry:ident)::+ { $($field:ident $(: $value:expr)?),* $(,)? }) => {
        $crate::inventory::submit! {
            $($entry)::+ {
                $($field $(: $value)?,)*
                krate: $crate::this_crate!(),
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    static LEAF_A: PluginCrate = PluginCrate {
        id: CrateId {
            name: "a",
            version: "1",
        },
        includes: &[],
    };
    static LEAF_B: PluginCrate = PluginCrate {
        id: CrateId {
            name: "b",
            version: "2",
        },
        includes: &[&LEAF_A],
    };
    static BUNDLE: PluginCrate = PluginCrate {
        id: CrateId {
            name: "bundle",
            version: "3",
        },
        includes: &[&LEAF_A, &LEAF_B],
    };

    #[test]
    fn all_lists_each_crate_once_depth_first() {
        let names: Vec<&str> = BUNDLE.all().iter().map(|c| c.id.name).collect();
        assert_eq!(names, ["bundle", "a", "b"]);
        assert_eq!(this_crate!().name, "coherent-core");
    }
}
