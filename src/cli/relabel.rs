//! `cyberfilter relabel STORE ID keep|reject|clear`: set a curator label from a script.
//! Written at once with its label-log entry; a run resumed on the store picks it up.
//! Meant for stores no engine is running on (a running engine keeps its own index).

use super::{resolve_store, EXIT_FAILURE, EXIT_OK};
use crate::decide::{decide, Label};
use crate::store::{LabelChange, RunStore};
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LabelArg {
    Keep,
    Reject,
    /// Remove the label: rules and the verifier decide again.
    Clear,
}

#[derive(Debug, clap::Args)]
pub struct RelabelArgs {
    pub store: PathBuf,
    /// Record id (every record with this id is labelled), or `#SEQ` for one stored row.
    pub id: String,
    #[arg(value_enum)]
    pub label: LabelArg,
}

pub fn run(args: &RelabelArgs) -> i32 {
    let label = match args.label {
        LabelArg::Keep => Some(Label::Keep),
        LabelArg::Reject => Some(Label::Reject),
        LabelArg::Clear => None,
    };
    match relabel(&resolve_store(&args.store), &args.id, label) {
        Ok(0) => {
            eprintln!("cyberfilter: no record with id {}", args.id);
            EXIT_FAILURE
        }
        Ok(n) => {
            eprintln!("cyberfilter: labelled {n} record(s) {}", args.id);
            EXIT_OK
        }
        Err(e) => {
            eprintln!("cyberfilter: relabel: {e}");
            EXIT_FAILURE
        }
    }
}

/// Label every record with `id`; returns how many.
pub fn relabel(
    store: &std::path::Path,
    id: &str,
    label: Option<Label>,
) -> Result<usize, crate::store::StoreError> {
    if !store.is_file() {
        return Err(crate::store::StoreError::Invalid {
            path: store.display().to_string(),
            what: "no such store".into(),
        });
    }
    let mut s = RunStore::open(store)?;
    let t = s.thresholds()?.unwrap_or_default();
    let seqs = s.seqs_for_id(id)?;
    let recs = s.records_by_seq(&seqs)?;
    for r in &recs {
        let old = decide(&r.inputs(), &t);
        let mut inputs = r.inputs();
        inputs.label = label;
        s.apply_label(&LabelChange {
            seq: r.seq,
            record_id: r.id.clone(),
            old_verdict: old.verdict,
            old_label: r.label,
            new_label: label,
            decision: decide(&inputs, &t),
            undoes: None,
        })?;
    }
    Ok(recs.len())
}
