//! `cyberfilter show STORE ID`: one record as the workbench's record view shows it: its text,
//! the score by rule, the tier, P(yes), the verdict, who decided and why. `ID` is the record's
//! id (every stored record with it is shown) or `#SEQ` for one stored row.

use super::{resolve_store, EXIT_FAILURE, EXIT_OK};
use crate::decide::decide;
use crate::store::RunStore;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// The run store (a path, or a store name in the data dir).
    pub store: PathBuf,
    /// Record id (as in the export's `cyberfilter.id`), or `#SEQ` for one stored row.
    pub id: String,
    /// One JSON object per record instead of text.
    #[arg(long)]
    pub json: bool,
    /// Show at most this many characters of the text (0: all).
    #[arg(long, default_value_t = 2000)]
    pub max_chars: usize,
}

pub fn run(args: &ShowArgs) -> i32 {
    let store = resolve_store(&args.store);
    let result = RunStore::open_read(&store).and_then(|s| {
        let t = s.thresholds()?.unwrap_or_default();
        let seqs = s.seqs_for_id(&args.id)?;
        Ok((t, s.records_by_seq(&seqs)?))
    });
    let (t, records) = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cyberfilter show: {e}");
            return EXIT_FAILURE;
        }
    };
    if records.is_empty() {
        eprintln!(
            "cyberfilter show: no record with id {} in {}",
            args.id,
            store.display()
        );
        return EXIT_FAILURE;
    }
    for r in &records {
        let d = decide(&r.inputs(), &t);
        let why = crate::decide::why(&r.inputs(), &d, &t);
        if args.json {
            let v = serde_json::json!({
                "seq": r.seq, "id": r.id, "file": r.file, "index": r.index,
                "source": r.source.as_str(), "kind": r.kind,
                "score": r.score, "rules": r.hits.iter().map(|h| serde_json::json!({
                    "rule": h.rule, "category": h.category, "matches": h.count,
                    "contribution": h.contribution,
                })).collect::<Vec<_>>(),
                "tier": d.tier.as_str(), "p_yes": r.p_yes, "model": r.model,
                "verdict": d.verdict.as_str(),
                "decided_by": d.decided_by.map(|x| x.as_str()),
                "label": r.label.map(|l| l.as_str()), "why": why, "text": r.text,
            });
            println!("{v}");
            continue;
        }
        println!(
            "{} (#{}) {} record {} of {}",
            r.id, r.seq, r.kind, r.index, r.file
        );
        println!(
            "verdict  {} (decided by {}): {why}",
            d.verdict.as_str(),
            d.decided_by.map(|x| x.as_str()).unwrap_or("nobody yet")
        );
        println!(
            "tier     {} (score {} against low {}, high {})",
            d.tier.as_str(),
            r.score,
            t.low,
            t.high
        );
        match (r.p_yes, &r.model) {
            (Some(p), Some(m)) => println!("P(yes)   {p:.3} from {m} (cut {})", t.p_yes_cut),
            (Some(p), None) => println!("P(yes)   {p:.3} (cut {})", t.p_yes_cut),
            _ => println!("P(yes)   not asked"),
        }
        if let Some(l) = r.label {
            println!("label    {}", l.as_str());
        }
        println!("rules:");
        if r.hits.is_empty() {
            println!("  (none matched)");
        }
        for h in &r.hits {
            println!(
                "  {:>+6.1}  {:<28} {} match{}",
                h.contribution,
                h.rule,
                h.count,
                if h.count == 1 { "" } else { "es" }
            );
        }
        let text: String = match args.max_chars {
            0 => r.text.clone(),
            n => r.text.chars().take(n).collect(),
        };
        let cut = text.chars().count() < r.text.chars().count();
        println!(
            "text ({} chars{}):\n{text}\n",
            r.text_len,
            if cut {
                ", cut; --max-chars 0 for all"
            } else {
                ""
            }
        );
    }
    EXIT_OK
}
