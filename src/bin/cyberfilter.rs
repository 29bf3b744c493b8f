//! `cyberfilter`: the engine without a screen, for scripts and CI.
//! Exit codes: 0 done, 1 failure, 2 usage, 3 bad configuration, 4 verifier unreachable,
//! 130 interrupted after a clean stop (see `cyberfilter::cli`).

use clap::{Parser, Subcommand};
use cyberfilter::cli;

#[derive(Parser)]
#[command(
    name = "cyberfilter",
    version,
    about = "Stream, score and verify security records; keep every decision in a run store.",
    after_help = "Exit codes: 0 done, 1 failure, 2 usage, 3 bad configuration, \
                  4 verifier unreachable, 130 interrupted after a clean stop (resumable)."
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the engine over inputs into a run store (resumes an existing store).
    Run(cli::run::RunArgs),
    /// Export a store: kept/removed/pending per input, summary.json, metrics.jsonl.
    Export(cli::export::ExportArgs),
    /// List the run stores with their state.
    Runs(cli::runs::RunsArgs),
    /// Label a record in a store (for scripts).
    Relabel(cli::relabel::RelabelArgs),
}

fn main() {
    let cli = Cli::parse();
    let code = match cli.command {
        Cmd::Run(a) => cli::run::run(a),
        Cmd::Export(a) => cli::export::run(a),
        Cmd::Runs(a) => cli::runs::run(a),
        Cmd::Relabel(a) => cli::relabel::run(a),
    };
    std::process::exit(code);
}
