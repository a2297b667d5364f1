//! `roster`: see `roster --help`.

use clap::Parser;

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = roster::cli::Cli::parse();
    if let Err(e) = roster::cli::run(cli) {
        eprintln!("error: {}", e.message);
        std::process::exit(e.code);
    }
}
