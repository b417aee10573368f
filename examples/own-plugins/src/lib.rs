//! A crate of coherent plugins written outside the framework: one of each kind, used together
//! by `spirals.toml`.
//!
//! | plugin | kind | file |
//! | --- | --- | --- |
//! | `csv` | dataset | `csv.rs`: labelled points from CSV files, with the shared data options |
//! | `fourier_net` | network | `fourier_net.rs`, with its own layer in `fourier.rs` |
//! | `norm_trimmed` | aggregator | `norm_trimmed.rs`: the mean without the largest gradients |
//! | `max_share` | metric | `max_share.rs`: how much one example dominates a sample |
//! | `update_norm` | observer | `update_norm.rs`: the length of the updates between evaluations |
//!
//! `plugin_crate!()` declares [`PLUGINS`], which the binary hands to `coherent_cli::App::with`:
//! that reference links the crate (so its registrations are in the program) and tells runs
//! which crate each plugin came from.

pub mod csv;
pub mod fourier;
pub mod fourier_net;
pub mod max_share;
pub mod norm_trimmed;
pub mod update_norm;

coherent_core::plugin_crate!();
