//! `cyberfilter rules suggest INPUT... --label-field F --positive V` (or `--store RUN`): mine
//! candidate rules from labelled records and print each as a ready `[[rule]]`, with its
//! precision, recall and the records it would move between tiers. The statistic lives in
//! `rules::suggest`; this file only reads inputs (the same readers as `scan`) or a run store's
//! curator labels, and prints.

use super::pipeline::{stream, Item};
use super::{
    resolve_store, InputArgs, RuleArgs, EXIT_DATAERR, EXIT_FAILURE, EXIT_NOINPUT, EXIT_OK,
    EXIT_USAGE,
};
use crate::rules::suggest::{Corpus, SuggestOptions};
use crate::rules::{RuleSet, Thresholds};
use crate::store::RunStore;
use std::io::Write;
use std::ops::ControlFlow;
use std::path::PathBuf;

#[derive(Debug, Clone, clap::Args)]
pub struct SuggestArgs {
    /// Labelled input files or folders (JSON/JSONL records with a label field).
    #[arg(value_name = "INPUT", required_unless_present = "store")]
    pub inputs: Vec<PathBuf>,
    /// Read the curator's labels from this run store's label log instead of input files
    /// (labelled keep = positive, reject = negative).
    #[arg(long, value_name = "STORE", conflicts_with_all = ["inputs", "label_field"])]
    pub store: Option<PathBuf>,
    /// Top-level field of each input record that holds its label.
    #[arg(long, value_name = "FIELD", default_value = "label")]
    pub label_field: String,
    /// Label value(s) of the positive class; any other label is negative.
    #[arg(long, value_name = "VALUE", value_delimiter = ',', default_values_t = ["security".to_string()])]
    pub positive: Vec<String>,
    /// Rule file whose matches are left out and whose scores give the moves (default rules if
    /// not given), with its thresholds.
    #[command(flatten)]
    pub rules: RuleArgs,
    /// Candidates to print (each side).
    #[arg(long, default_value_t = 20)]
    pub top: usize,
    /// Least number of positive records (negative ones with --negatives) a phrase occurs in.
    #[arg(long, default_value_t = 5)]
    pub min_support: u32,
    /// Longest phrase in words (1 to 3).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=3))]
    pub max_words: u8,
    /// Strength of the Dirichlet prior, in records.
    #[arg(long, default_value_t = 10.0)]
    pub prior: f64,
    /// Also print phrases typical of the negative class, as negative-weight rules.
    #[arg(long)]
    pub negatives: bool,
}

pub fn run(args: &SuggestArgs) -> i32 {
    let (rules, thresholds) = match args.rules.load() {
        Ok(x) => x,
        Err(msg) => {
            eprintln!("cyberfilter rules suggest: {msg}");
            return EXIT_USAGE;
        }
    };
    let mut corpus = Corpus::new(args.max_words as usize);
    let mut unlabelled = 0u64;
    let mut errors = 0u64;
    // In a store the classes are the curator's labels.
    let positive_name = if args.store.is_some() {
        "keep".to_string()
    } else {
        args.positive.join(",")
    };

    if let Some(store) = &args.store {
        match from_store(&resolve_store(store), &rules, &mut corpus) {
            Ok(n) => unlabelled = n,
            Err(msg) => {
                eprintln!("cyberfilter rules suggest: {msg}");
                return EXIT_FAILURE;
            }
        }
    } else {
        let input = InputArgs {
            inputs: args.inputs.clone(),
            stix_types: None,
            single_thread: false,
        };
        let opts = input.ingest_options(Some(args.label_field.clone()));
        let mut files = 0u64;
        let mut consume = |item: Item| -> ControlFlow<()> {
            match item {
                Item::Record(rec) => match (&rec.label, rec.scored) {
                    (Some(label), true) => {
                        let positive = args.positive.iter().any(|p| p == label);
                        let score = rules.score(&rec.text).score;
                        corpus.add(&rec.text, positive, score, true);
                    }
                    _ => unlabelled += 1,
                },
                Item::Error(e) => {
                    errors += 1;
                    eprintln!("cyberfilter rules suggest: {e}");
                }
                Item::FileDone { .. } => files += 1,
            }
            ControlFlow::Continue(())
        };
        if let Err(e) = stream(&input.inputs, &opts, false, &mut consume) {
            eprintln!("cyberfilter rules suggest: {e}");
            return EXIT_NOINPUT;
        }
        if files == 0 {
            eprintln!("cyberfilter rules suggest: no input files found");
            return EXIT_NOINPUT;
        }
    }

    let [n_pos, n_neg] = corpus.class_sizes();
    if n_pos == 0 || n_neg == 0 {
        eprintln!(
            "cyberfilter rules suggest: need labelled records of both classes ({n_pos} `{positive_name}`, {n_neg} other, {unlabelled} unlabelled)"
        );
        return EXIT_USAGE;
    }
    let opts = SuggestOptions {
        max_n: args.max_words as usize,
        min_support: args.min_support,
        prior: args.prior,
        top: args.top,
        negatives: args.negatives,
    };
    let found = corpus.suggest(&rules, &thresholds, &opts);
    if print(
        &found,
        &positive_name,
        [n_pos, n_neg],
        unlabelled,
        &thresholds,
    )
    .is_err()
    {
        return super::EXIT_IOERR;
    }
    if errors > 0 {
        EXIT_DATAERR
    } else {
        EXIT_OK
    }
}

fn print(
    found: &[crate::rules::suggest::Candidate],
    positive: &str,
    [n_pos, n_neg]: [u32; 2],
    unlabelled: u64,
    t: &Thresholds,
) -> std::io::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    writeln!(
        out,
        "# rules suggest: {n_pos} `{positive}` and {n_neg} other records ({unlabelled} unlabelled, left out);"
    )?;
    writeln!(
        out,
        "# phrases ranked by smoothed log-odds (informative Dirichlet prior), those the rules already match left out;"
    )?;
    writeln!(
        out,
        "# moves are tier changes if the rule were added alone (keep >= {}, verify >= {}).",
        t.high, t.low
    )?;
    if found.is_empty() {
        writeln!(out, "# no candidate passed the minimum support")?;
    }
    for c in found {
        writeln!(out)?;
        write!(out, "{}", c.to_toml(positive))?;
    }
    out.flush()
}

/// Curator labels from the store's label log, through the engine's reader (the workbench's
/// suggest overlay mines the same corpus). Returns how many labelled records were left out.
fn from_store(path: &std::path::Path, rules: &RuleSet, corpus: &mut Corpus) -> Result<u64, String> {
    let store = RunStore::open_read(path).map_err(|e| e.to_string())?;
    let (mined, missing) =
        crate::engine::suggest::corpus_from_store(&store, rules, corpus.max_n())?;
    *corpus = mined;
    Ok(missing)
}
