//! Links every bundled plugin into the program that depends on this crate.
//!
//! `inventory` registrations live in the plugin crates; a crate that nothing references is not
//! linked and its registrations silently vanish. This crate references each plugin's `build`
//! function, and [`registry`] is the one way programs reach the registry, so every plugin below
//! is linked wherever the registry is used. **To add a plugin: add it to this crate's
//! `Cargo.toml` and one line to [`link`]**, then to the expected names in the registry test.

use coherent_core::{Registry, RegistryError};

/// References every plugin crate so the linker keeps its registrations.
pub fn link() {
    let builds = [
        coherent_mlp::build as *const (),
        coherent_lenet::build as *const (),
        coherent_vgg::build as *const (),
        coherent_resnet::build as *const (),
        coherent_alexnet::build as *const (),
        coherent_mnist::build as *const (),
        coherent_toy_linear::build as *const (),
        coherent_fashion_mnist::build as *const (),
        coherent_cifar10::build as *const (),
        coherent_mean::build as *const (),
        coherent_winsorized::build as *const (),
        coherent_coordinate_median::build as *const (),
        coherent_trimmed_mean::build as *const (),
        coherent_clip::build as *const (),
        coherent_median_of_means::build as *const (),
        coherent_recent_three::build_rm3 as *const (),
        coherent_recent_three::build_ra3 as *const (),
        coherent_geometric_median::build as *const (),
        coherent_coherence::build as *const (),
        coherent_gradient_diversity::build as *const (),
        coherent_noise_scale::build as *const (),
        coherent_gsnr::build as *const (),
        coherent_stiffness::build as *const (),
        coherent_gradient_confusion::build as *const (),
        coherent_cosine_matrix::build as *const (),
        coherent_loss_fractions::build as *const (),
        coherent_learning_times::build as *const (),
        coherent_early_stopping::build as *const (),
        coherent_easy_hard::build as *const (),
    ];
    std::hint::black_box(builds);
}

/// The registry of every bundled plugin.
pub fn registry() -> Result<&'static Registry, RegistryError> {
    link();
    Registry::global()
}
