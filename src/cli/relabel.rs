//! `cyberfilter relabel STORE ID keep|reject|clear`: set a curator label from a script.
//! Written at once with its label-log entry; a run resumed on the store picks it up.
//! Meant for stores no engine is running on (a running engine keeps its own index).

use super::{resolve_store, EXIT_FAILURE, EXIT_OK};
use crate::decide::{decide, Label, Verdict};
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
    let store = resolve_store(&args.store);
    match relabel(&store, &args.id, label) {
        Ok(changes) if changes.is_empty() => {
            eprintln!(
                "cyberfilter: no record with id {} in {} (ids as in the export's cyberfilter.id, \
                 or #SEQ as `cyberfilter show` prints)",
                args.id,
                store.display()
            );
            EXIT_FAILURE
        }
        Ok(changes) => {
            for c in &changes {
                eprintln!(
                    "cyberfilter: {} (#{}, {}): {} -> {} ({})",
                    c.id,
                    c.seq,
                    c.file,
                    c.old.as_str(),
                    c.new.as_str(),
                    match label {
                        Some(l) => format!("labelled {}", l.as_str()),
                        None => "label cleared".into(),
                    }
                );
                if let Some((rep_seq, rep_id)) = &c.copy_of {
                    eprintln!(
                        "cyberfilter:   a copy of {rep_id} (#{rep_seq}) in a duplicate group: the \
                         group follows its representative's label, else its members' (keep wins), \
                         and the export writes the group once, as {rep_id}"
                    );
                }
            }
            if crate::store::lock::is_held(&store) {
                eprintln!(
                    "cyberfilter: note: a run holds this store; the label is stored, and that \
                     session shows it when it next reads the label log"
                );
            }
            EXIT_OK
        }
        Err(e) => {
            eprintln!("cyberfilter: relabel: {e}");
            if e.is_write_failure() {
                super::EXIT_IOERR
            } else {
                EXIT_FAILURE
            }
        }
    }
}

/// One record a relabel changed.
#[derive(Debug, Clone)]
pub struct Relabelled {
    pub seq: i64,
    pub id: String,
    /// The input file's name.
    pub file: String,
    pub old: Verdict,
    pub new: Verdict,
    /// (seq, id) of the record's group representative when it is a copy in a duplicate group:
    /// then the export and the engine decide the group by the representative's label, else its
    /// members' (`decide::group_label`), and the copy follows its group.
    pub copy_of: Option<(i64, String)>,
}

/// Label every record with `id` (or the one row `#SEQ`); returns what changed.
pub fn relabel(
    store: &std::path::Path,
    id: &str,
    label: Option<Label>,
) -> Result<Vec<Relabelled>, crate::store::StoreError> {
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
    let mut out = Vec::new();
    for r in &recs {
        let old = decide(&r.inputs(), &t);
        let mut inputs = r.inputs();
        inputs.label = label;
        let new = decide(&inputs, &t);
        out.push(Relabelled {
            seq: r.seq,
            id: r.id.clone(),
            file: std::path::Path::new(&r.file)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| r.file.clone()),
            old: old.verdict,
            new: new.verdict,
            copy_of: crate::store::groups::stored_rep(s.conn(), store, r.seq)?,
        });
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
    Ok(out)
}
