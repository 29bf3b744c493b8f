//! `cyberfilter runs`: the stores in the data dir with their state and counts.

use super::EXIT_OK;
use crate::store::{paths, RunStore};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct RunsArgs {
    /// Folder to list (default: the data dir's runs folder).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &RunsArgs) -> i32 {
    let dir = args.dir.clone().unwrap_or_else(paths::runs_dir);
    let stores = paths::list_stores(&dir);
    if stores.is_empty() && !args.json {
        eprintln!("no run stores in {}", dir.display());
    }
    if !args.json && !stores.is_empty() {
        println!(
            "{:<40} {:<9} {:>9} {:>9} {:>9} {:>8} {:>6}  inputs",
            "store", "state", "records", "kept", "removed", "pending", "labels"
        );
    }
    for p in stores {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let info = RunStore::open_read(&p).and_then(|s| {
            Ok((
                s.state()?,
                s.summary()?,
                s.config()?.map(|c| c.inputs).unwrap_or_default(),
            ))
        });
        match info {
            Ok((state, sum, inputs)) => {
                // A store left "running" by a process that is gone is resumable.
                let state = state.map(|s| s.as_str()).unwrap_or("new");
                if args.json {
                    println!(
                        "{}",
                        serde_json::json!({
                            "store": p.display().to_string(), "state": state,
                            "summary": sum, "inputs": inputs,
                        })
                    );
                } else {
                    let inputs: Vec<String> =
                        inputs.iter().map(|i| i.display().to_string()).collect();
                    println!(
                        "{:<40} {:<9} {:>9} {:>9} {:>9} {:>8} {:>6}  {}",
                        name,
                        state,
                        sum.records,
                        sum.kept,
                        sum.removed,
                        sum.pending,
                        sum.labelled,
                        inputs.join(" ")
                    );
                }
            }
            Err(e) => {
                if args.json {
                    println!(
                        "{}",
                        serde_json::json!({"store": p.display().to_string(), "error": e.to_string()})
                    );
                } else {
                    println!("{name:<40} unreadable: {e}");
                }
            }
        }
    }
    EXIT_OK
}
