//! `cyberfilter rules check FILE`: compile a rule file and report every error with the rule
//! name and the reason (exit 1), or a short description of the rule set (exit 0).

use super::{EXIT_FAILED_CHECK, EXIT_OK};
use crate::rules::RuleSet;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Clone, clap::Args)]
pub struct CheckArgs {
    /// The rule file to check.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Also list every rule (name, category, weight, cap, whether it needs other evidence, and
    /// `max_lines`).
    #[arg(long)]
    pub list: bool,
}

pub fn run(args: &CheckArgs) -> i32 {
    match RuleSet::from_file(&args.file) {
        Err(e) => {
            let lines: Vec<String> = e.all().iter().map(|e| e.to_string()).collect();
            eprintln!(
                "{}",
                crate::engine::launch::rule_errors_report(&args.file, &lines)
            );
            EXIT_FAILED_CHECK
        }
        Ok(rules) => {
            let mut per_category: BTreeMap<&str, usize> = BTreeMap::new();
            for r in rules.rules() {
                *per_category.entry(r.category.as_str()).or_default() += 1;
            }
            let t = rules.thresholds();
            let cats: Vec<String> = per_category
                .iter()
                .map(|(c, n)| format!("{c} {n}"))
                .collect();
            println!(
                "{}: ok, {} ({}); keep >= {}, verify >= {}, min text {} chars",
                args.file.display(),
                super::run::plural(rules.len() as u64, "rule"),
                cats.join(", "),
                t.high,
                t.low,
                t.min_text_len
            );
            if args.list {
                for r in rules.rules() {
                    let mut notes = String::new();
                    if r.requires_other_evidence {
                        notes.push_str("  (needs other evidence)");
                    }
                    match r.max_lines {
                        Some(1) => notes.push_str("  (one-line texts only)"),
                        Some(n) => notes.push_str(&format!("  (texts of at most {n} lines)")),
                        None => {}
                    }
                    println!(
                        "{:<28} {:<14} {:>6} x{}{notes}",
                        r.name, r.category, r.weight, r.cap
                    );
                }
            }
            EXIT_OK
        }
    }
}
