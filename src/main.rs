//! `roster`: see `roster --help`.

use clap::Parser;

fn main() {
    let cli = roster::cli::Cli::parse();
    roster::log_format::init(cli.global.log_format);
    if let Err(e) = roster::cli::run(cli) {
        eprintln!("error: {}", e.message);
        std::process::exit(e.code);
    }
}
