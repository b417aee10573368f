//! `own-coherent`: coherent's whole command line, with this crate's plugins next to the bundled ones.

fn main() -> std::process::ExitCode {
    coherent_cli::App::new("own-coherent")
        .with(&own_plugins::PLUGINS)
        .main()
}
