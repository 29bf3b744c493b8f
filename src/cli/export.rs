//! `cyberfilter export STORE --out DIR`: kept/removed/pending files per input (or the upstream
//! pipeline's layout), a `summary.json` and a `metrics.jsonl` beside them.

use super::{resolve_store, EXIT_FAILURE, EXIT_OK};
use crate::engine::{ExportFormat, ExportLayout};
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FormatArg {
    Jsonl,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LayoutArg {
    /// `{stem}.kept.jsonl`, `{stem}.removed.jsonl`, `{stem}.pending.jsonl` per input.
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
    #[arg(long, value_enum, default_value = "jsonl")]
    pub format: FormatArg,
    #[arg(long, value_enum, default_value = "per-input")]
    pub layout: LayoutArg,
}

pub fn run(args: &ExportArgs) -> i32 {
    let store = resolve_store(&args.store);
    let format = match args.format {
        FormatArg::Jsonl => ExportFormat::Jsonl,
        FormatArg::Json => ExportFormat::Json,
    };
    let layout = match args.layout {
        LayoutArg::PerInput => ExportLayout::PerInput,
        LayoutArg::Upstream => ExportLayout::Upstream,
    };
    match crate::store::export::export(&store, &args.out, format, layout, None) {
        Ok(r) => {
            println!("{}", serde_json::to_string(&r).unwrap_or_default());
            eprintln!(
                "cyberfilter: exported {} records to {} (kept {}, removed {}, pending {})",
                r.records,
                r.out.display(),
                r.kept,
                r.removed,
                r.pending
            );
            EXIT_OK
        }
        Err(e) => {
            eprintln!("cyberfilter: export: {e}");
            EXIT_FAILURE
        }
    }
}
