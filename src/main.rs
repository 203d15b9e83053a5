//! The `teal` binary: parse arguments, run the command, exit with its code.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = teal::cli::Cli::parse();
    std::process::ExitCode::from(teal::cli::run(cli).code())
}
