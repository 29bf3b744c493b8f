//! `cyberfilter`: the engine without a screen, for scripts and CI. Each subcommand lives in
//! `cyberfilter::cli::<name>`; this file only parses and dispatches.

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use cyberfilter::cli;

#[derive(Parser)]
#[command(
    name = "cyberfilter",
    version,
    about = "Stream, score and verify security-relevant records from raw security feeds"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Stream and score inputs; one JSON line per record on stdout, a summary on stderr.
    Scan(cli::scan::ScanArgs),
    /// Measure the rules on labelled inputs: precision, recall, F1, confusion, threshold sweep.
    Eval(cli::eval::EvalArgs),
    /// Work with rule files.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Write a deterministic NVD-API-2.0-shaped file of a given size (for benchmarks).
    GenNvd(cli::gen_nvd::GenNvdArgs),
    /// Run the engine over inputs into a run store (an existing store is resumed).
    Run(Box<cli::run::RunArgs>),
    /// Export a store: kept/removed/pending per input, summary.json, metrics.jsonl.
    Export(cli::export::ExportArgs),
    /// List the run stores with their state.
    Runs(cli::runs::RunsArgs),
    /// Label a record in a store (for scripts).
    Relabel(cli::relabel::RelabelArgs),
    /// Show one stored record: text, score by rule, tier, P(yes), verdict and why.
    Show(cli::show::ShowArgs),
    /// Shell completions and man pages, generated from these definitions.
    #[command(flatten)]
    Docs(cli::DocsArgs),
    /// Work with verifier models (convert a GGUF to a Hugging Face folder).
    #[command(subcommand)]
    Model(cli::model::ModelCommand),
    /// Measure the verifier: throughput against the Python baseline, accuracy on labels.
    #[command(subcommand)]
    Bench(cli::bench::BenchCommand),
    /// The verdict head of a run store: show its metrics, or retrain it and re-decide.
    #[command(subcommand)]
    Head(cli::head::HeadCommand),
}

#[derive(Subcommand)]
enum RulesCommand {
    /// Compile a rule file and report every error with the rule name and reason.
    Check(cli::rules_check::CheckArgs),
    /// Mine candidate rules from labelled records: phrases that separate the classes.
    Suggest(cli::rules_suggest::SuggestArgs),
}

fn main() {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let code = match &cli.command {
        Command::Scan(a) => cli::scan::run(a),
        Command::Eval(a) => cli::eval::run(a),
        Command::Rules(RulesCommand::Check(a)) => cli::rules_check::run(a),
        Command::Rules(RulesCommand::Suggest(a)) => cli::rules_suggest::run(a),
        Command::GenNvd(a) => cli::gen_nvd::run(a),
        Command::Run(a) => cli::run::run(a, matches.subcommand_matches("run")),
        Command::Export(a) => cli::export::run(a),
        Command::Runs(a) => cli::runs::run(a),
        Command::Relabel(a) => cli::relabel::run(a),
        Command::Show(a) => cli::show::run(a),
        Command::Docs(d) => cli::write_docs(Cli::command(), d),
        Command::Model(c) => cli::model::run(c),
        Command::Bench(c) => cli::bench::run(c),
        Command::Head(c) => cli::head::run(c),
    };
    cyberfilter::engine::verifier::exit_process(code);
}
