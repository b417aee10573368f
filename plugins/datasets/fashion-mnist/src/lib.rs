//! Dataset plugin `fashion_mnist`: Zalando's Fashion-MNIST (Xiao, Rasul & Vollgraf 2017), ten
//! classes of 28x28 clothing images in the same IDX format and file names as MNIST, read with
//! the `mnist` plugin's loader from the directory `path` (the program cannot download it).

use coherent_core::{
    DataOptions, Dataset, DatasetBuildError, DatasetEntry, PluginArgs, PluginConfig,
};

coherent_core::plugin_crate!();

/// Builds the `fashion_mnist` plugin from its manifest table.
pub fn build(args: &PluginArgs) -> Result<Box<dyn Dataset>, DatasetBuildError> {
    let config = DataOptions::from_args(args)?;
    config.require_path(
        args,
        "the four Fashion-MNIST IDX files (train-images-idx3-ubyte[.gz], ...)",
    )?;
    Ok(Box::new(coherent_mnist::load(&config, ["train", "t10k"])?))
}

coherent_core::register! {
    DatasetEntry {
        name: "fashion_mnist",
        description: "Fashion-MNIST clothing images from the IDX files train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (plain or .gz) in `path` (required).",
        params: DataOptions::params,
        build,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_is_required() {
        let err = build(&PluginArgs::empty()).err().unwrap();
        assert!(err.to_string().contains("`path` is required"), "{err}");
    }
}
