//! `cyberfilter export STORE --out DIR`: kept/removed/pending files per input (or merged across
//! inputs, or the upstream pipeline's layout), a `summary.json` and a `metrics.jsonl` beside
//! them. A short summary on stdout (`--json`: the full report).

use super::{resolve_store, EXIT_FAILURE, EXIT_IOERR, EXIT_OK, EXIT_USAGE};
use crate::store::export::{
    export_with, previous_export, ExportFormat, ExportLayout, ExportOptions,
};
use crate::store::StoreError;
use std::path::PathBuf;

/// EX_CANTCREAT: the output folder holds an earlier export and `--force` was not given.
pub const EXIT_CANTCREAT: i32 = 73;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FormatArg {
    Jsonl,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LayoutArg {
    /// `{stem}.kept.jsonl`, `{stem}.removed.jsonl`, `{stem}.pending.jsonl` per input (only
    /// those with records).
    PerInput,
    /// The Python pipeline's `{stem}_filtered_{ts}.json` / `{stem}_removed_{ts}.json` arrays.
    Upstream,
}

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The run store (a path, or a store name in the data dir).
    pub store: PathBuf,
    /// Output folder (created if needed).
    #[arg(long)]
    pub out: PathBuf,
    /// Per-input layout: JSON lines (default) or JSON arrays.
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
    #[arg(long, value_enum, default_value = "per-input")]
    pub layout: LayoutArg,
    /// One kept/removed/pending file across every input (`all.kept.jsonl`, …): the set for
    /// the next stage of a dataset pipeline.
    #[arg(long)]
    pub merge: bool,
    /// Replace an earlier export in `--out` (the files its summary.json lists).
    #[arg(long)]
    pub force: bool,
    /// Print the full export report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// `on` (default): when the run grouped duplicates, one record per group in the
    /// kept/removed/pending files (its group's member ids on it) and the other members in
    /// `{stem}.duplicates.jsonl`; `off`: every record by its own verdict, as without grouping.
    #[arg(long, value_enum, value_name = "ON|OFF", default_value = "on")]
    pub dedup: crate::engine::launch::OnOff,
}

pub fn run(args: &ExportArgs) -> i32 {
    let store = resolve_store(&args.store);
    if args.layout == LayoutArg::Upstream && (args.format.is_some() || args.merge) {
        eprintln!(
            "cyberfilter export: --format and --merge apply to the per-input layout; the upstream \
             layout always writes one JSON array per input and verdict"
        );
        return EXIT_USAGE;
    }
    let format = match args.format.unwrap_or(FormatArg::Jsonl) {
        FormatArg::Jsonl => ExportFormat::Jsonl,
        FormatArg::Json => ExportFormat::Json,
    };
    let layout = match args.layout {
        LayoutArg::PerInput => ExportLayout::PerInput,
        LayoutArg::Upstream => ExportLayout::Upstream,
    };
    let earlier = previous_export(&args.out);
    if !earlier.is_empty() && !args.force {
        eprintln!(
            "cyberfilter export: {} holds an earlier export ({} files); pass --force to replace \
             it, or choose another --out",
            args.out.display(),
            earlier.len()
        );
        return EXIT_CANTCREAT;
    }
    let options = ExportOptions {
        format,
        layout,
        thresholds: None,
        merge: args.merge,
        replace: args.force,
        dedup: args.dedup == crate::engine::launch::OnOff::On,
    };
    match export_with(&store, &args.out, &options) {
        Ok(r) => {
            if args.json {
                println!("{}", serde_json::to_string(&r).unwrap_or_default());
            } else {
                println!(
                    "exported {} records to {}: kept {}, removed {}, pending {}{}{}",
                    r.records,
                    r.out.display(),
                    r.kept,
                    r.removed,
                    r.pending,
                    if r.duplicates > 0 {
                        format!(", duplicates {}", r.duplicates)
                    } else {
                        String::new()
                    },
                    if r.original_errors > 0 {
                        format!("; {} originals unreadable", r.original_errors)
                    } else {
                        String::new()
                    }
                );
                let outputs = r.outputs();
                let shown: Vec<&str> = outputs.iter().take(8).map(String::as_str).collect();
                println!(
                    "files: {}{}",
                    shown.join(", "),
                    if outputs.len() > shown.len() {
                        format!(
                            " and {} more (summary.json lists them)",
                            outputs.len() - shown.len()
                        )
                    } else {
                        String::new()
                    }
                );
            }
            EXIT_OK
        }
        Err(e) => {
            eprintln!("cyberfilter export: {e}");
            match e {
                // Writing the output failed (an unwritable or impossible --out): EX_IOERR.
                StoreError::Io { path, .. } if PathBuf::from(&path).starts_with(&args.out) => {
                    EXIT_IOERR
                }
                _ => EXIT_FAILURE,
            }
        }
    }
}
