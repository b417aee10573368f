//! `coherent`: measure gradient coherence and train with suppression strategies, from TOML
//! manifests. The whole command line is `coherent-cli`; this program is it with the bundled
//! plugins.

fn main() -> std::process::ExitCode {
    coherent_cli::App::new("coherent").main()
}
