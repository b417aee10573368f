//! Every bundled plugin, as one crate a program links: `PLUGINS` bundles the `PLUGINS` of each
//! plugin crate of the repository.
//!
//! `inventory` registrations live in the plugin crates, and a crate that nothing refers to is not
//! linked: its plugins would silently vanish. A program passes [`PLUGINS`] to the command line
//! (`coherent_cli::App::with`), which refers to every crate below and checks that each one
//! registered its plugins. **To add a plugin crate: add it to this crate's `Cargo.toml` and its
//! `PLUGINS` to the list below**, then its names to the expected names in the registry test.

use coherent_core::{Registry, RegistryError};

coherent_core::plugin_crate!(
    coherent_mlp::PLUGINS,
    coherent_lenet::PLUGINS,
    coherent_vgg::PLUGINS,
    coherent_resnet::PLUGINS,
    coherent_alexnet::PLUGINS,
    coherent_mnist::PLUGINS,
    coherent_toy_linear::PLUGINS,
    coherent_fashion_mnist::PLUGINS,
    coherent_cifar10::PLUGINS,
    coherent_mean::PLUGINS,
    coherent_winsorized::PLUGINS,
    coherent_coordinate_median::PLUGINS,
    coherent_trimmed_mean::PLUGINS,
    coherent_clip::PLUGINS,
    coherent_median_of_means::PLUGINS,
    coherent_recent_three::PLUGINS,
    coherent_geometric_median::PLUGINS,
    coherent_coherence::PLUGINS,
    coherent_gradient_diversity::PLUGINS,
    coherent_noise_scale::PLUGINS,
    coherent_gsnr::PLUGINS,
    coherent_stiffness::PLUGINS,
    coherent_gradient_confusion::PLUGINS,
    coherent_cosine_matrix::PLUGINS,
    coherent_loss_fractions::PLUGINS,
    coherent_learning_times::PLUGINS,
    coherent_early_stopping::PLUGINS,
    coherent_easy_hard::PLUGINS,
);

/// The registry of every linked plugin (this crate's included).
pub fn registry() -> Result<&'static Registry, RegistryError> {
    std::hint::black_box(&PLUGINS);
    Registry::global()
}
