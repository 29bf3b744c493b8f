//! `cyberfilter runs`: the stores in the data dir with their date, state, counts, errors and
//! inputs; `cyberfilter runs rm STORE…` deletes stores that no run holds.

use super::{EXIT_CONFIG, EXIT_FAILURE, EXIT_IN_USE, EXIT_OK};
use crate::store::{lock, paths, RunStore};
use std::path::{Path, PathBuf};

#[derive(Debug, clap::Args)]
pub struct RunsArgs {
    /// Folder to list (default: the data dir's runs folder).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(subcommand)]
    pub action: Option<RunsAction>,
}

#[derive(Debug, clap::Subcommand)]
pub enum RunsAction {
    /// Delete run stores (with their WAL and lock files); a store in use is refused.
    Rm {
        /// Store paths, or names in the runs folder (as `runs` lists them).
        #[arg(required = true, value_name = "STORE")]
        stores: Vec<PathBuf>,
    },
}

pub fn run(args: &RunsArgs) -> i32 {
    let dir = args.dir.clone().unwrap_or_else(paths::runs_dir);
    match &args.action {
        Some(RunsAction::Rm { stores }) => remove(&dir, stores),
        None => list(&dir, args.json),
    }
}

fn list(dir: &Path, json: bool) -> i32 {
    let stores = paths::list_stores(dir);
    if stores.is_empty() && !json {
        eprintln!("no run stores in {}", dir.display());
    }
    if !json && !stores.is_empty() {
        println!(
            "{:<36} {:<16} {:<11} {:>8} {:>8} {:>8} {:>8} {:>6} {:>6}  inputs",
            "store",
            "modified (UTC)",
            "state",
            "records",
            "kept",
            "removed",
            "pending",
            "labels",
            "errors"
        );
    }
    for p in stores {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let modified = std::fs::metadata(&p)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| {
                let t = paths::timestamp(d.as_secs(), " ");
                format!(
                    "{}-{}-{} {}:{}",
                    &t[..4],
                    &t[4..6],
                    &t[6..8],
                    &t[9..11],
                    &t[11..13]
                )
            })
            .unwrap_or_default();
        let info = RunStore::open_read(&p).and_then(|s| {
            Ok((
                s.observed_state()?,
                s.summary()?,
                s.config()?.map(|c| c.inputs).unwrap_or_default(),
            ))
        });
        match info {
            Ok((state, sum, inputs)) => {
                let state = state.map(|s| s.as_str()).unwrap_or("new");
                if json {
                    println!(
                        "{}",
                        serde_json::json!({
                            "store": p.display().to_string(), "modified": modified,
                            "state": state, "summary": sum, "inputs": inputs,
                        })
                    );
                } else {
                    let inputs: Vec<String> =
                        inputs.iter().map(|i| i.display().to_string()).collect();
                    println!(
                        "{:<36} {:<16} {:<11} {:>8} {:>8} {:>8} {:>8} {:>6} {:>6}  {}",
                        name,
                        modified,
                        state,
                        sum.records,
                        sum.kept,
                        sum.removed,
                        sum.pending,
                        sum.labelled,
                        sum.errors,
                        inputs.join(" ")
                    );
                }
            }
            Err(e) => {
                if json {
                    println!(
                        "{}",
                        serde_json::json!({"store": p.display().to_string(), "error": e.to_string()})
                    );
                } else {
                    println!("{name:<36} unreadable: {e}");
                }
            }
        }
    }
    EXIT_OK
}

fn remove(dir: &Path, stores: &[PathBuf]) -> i32 {
    let mut code = EXIT_OK;
    for s in stores {
        let p = crate::engine::launch::resolve_store_in(dir, s);
        if !p.is_file() {
            eprintln!("cyberfilter runs rm: {}: no such store", s.display());
            code = EXIT_CONFIG;
            continue;
        }
        if RunStore::open_read(&p).is_err() {
            eprintln!(
                "cyberfilter runs rm: {}: not a cyberfilter run store; left alone",
                p.display()
            );
            code = EXIT_CONFIG;
            continue;
        }
        if lock::is_held(&p) {
            eprintln!(
                "cyberfilter runs rm: {}: in use by a running cyberfilter; left alone",
                p.display()
            );
            code = EXIT_IN_USE;
            continue;
        }
        let mut failed = false;
        for extra in ["", "-wal", "-shm", ".lock"] {
            let mut f = p.as_os_str().to_os_string();
            f.push(extra);
            match std::fs::remove_file(&f) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    eprintln!("cyberfilter runs rm: {}: {e}", Path::new(&f).display());
                    failed = true;
                }
            }
        }
        if failed {
            code = EXIT_FAILURE;
        } else {
            eprintln!("removed {}", p.display());
        }
    }
    code
}
