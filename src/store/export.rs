//! Export: kept, removed and pending files per input, written from the store at any time.
//!
//! Verdicts are recomputed from the stored inputs and the thresholds in force (the decision is
//! a pure function), so an export is right even if the run was killed mid-update.
//! Each record is its original content (read back through its locator) plus a `cyberfilter`
//! object. `ExportLayout::Upstream` writes the Python pipeline's
//! `{stem}_filtered_{ts}.json` / `{stem}_removed_{ts}.json` arrays instead.

use super::{now_secs, paths::timestamp, RunStore, StoreError, StoredRecord};
use crate::decide::{decide, Decision, Verdict};
use crate::rules::Thresholds;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// One JSON value per line, or one JSON array per file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ExportFormat {
    #[default]
    Jsonl,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ExportLayout {
    /// kept/removed/pending files per input.
    #[default]
    PerInput,
    /// The Python pipeline's `{stem}_filtered_{ts}.json` / `{stem}_removed_{ts}.json`.
    Upstream,
}

/// What an export wrote.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ExportReport {
    pub out: PathBuf,
    pub records: u64,
    pub kept: u64,
    pub removed: u64,
    pub pending: u64,
    /// Duplicates written to `{stem}.duplicates.jsonl` (grouping on), not counted in
    /// kept/removed/pending: those count one record per group.
    #[serde(default)]
    pub duplicates: u64,
    /// Records whose original bytes could not be read back (exported with `original_error`).
    pub original_errors: u64,
    pub files: Vec<ExportedFile>,
    /// `merge`: the shared files every input was written to.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub merged: Vec<ExportedFile>,
}

impl ExportReport {
    /// Every file written, relative to `out` (summary and metrics included).
    pub fn outputs(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .files
            .iter()
            .chain(&self.merged)
            .flat_map(|f| f.outputs.iter().cloned())
            .collect();
        v.push("summary.json".into());
        v.push("metrics.jsonl".into());
        v
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ExportedFile {
    pub input: String,
    pub kept: u64,
    pub removed: u64,
    pub pending: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub duplicates: u64,
    pub outputs: Vec<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn io_err(path: &Path, source: std::io::Error) -> StoreError {
    StoreError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Reads originals of one input in file order with one open handle (plain files), falling
/// back to `ingest::read_original` for compressed files and nested records.
struct OriginalReader {
    open: Option<(String, File)>,
}

impl OriginalReader {
    fn read(&mut self, rec: &StoredRecord) -> Result<Vec<u8>, String> {
        let loc = &rec.locator;
        let plain = loc.outer_offset.is_none()
            && loc.file.extension().is_none_or(|e| e != "gz")
            && loc.len > 0;
        if !plain {
            return crate::ingest::read_original(loc).map_err(|e| e.to_string());
        }
        let key = loc.file.display().to_string();
        if self.open.as_ref().map(|(k, _)| k != &key).unwrap_or(true) {
            let f = File::open(loc.file.as_ref()).map_err(|e| format!("{key}: {e}"))?;
            self.open = Some((key.clone(), f));
        }
        let (_, f) = self.open.as_mut().expect("opened above");
        let mut buf = vec![0u8; loc.len as usize];
        f.seek(SeekFrom::Start(loc.offset))
            .and_then(|_| f.read_exact(&mut buf))
            .map_err(|e| format!("{key} at byte {}: {e}", loc.offset))?;
        Ok(buf)
    }
}

/// The `cyberfilter` object attached to every exported record, with the same `why` the
/// record view and `cyberfilter show` give.
pub fn cyberfilter_object(rec: &StoredRecord, d: &Decision, t: &Thresholds) -> Value {
    json!({
        "id": rec.id,
        "source": rec.source.as_str(),
        "kind": rec.kind,
        "index": rec.index,
        "tier": d.tier.as_str(),
        "score": rec.score,
        "rules": rec.hits.iter().map(|h| h.rule.as_str()).collect::<Vec<_>>(),
        "p_yes": rec.p_yes,
        "p_head": rec.p_head,
        "model": rec.model,
        "verdict": d.verdict.as_str(),
        "decided_by": d.decided_by.map(|x| x.as_str()),
        "label": rec.label.map(|l| l.as_str()),
        "why": crate::decide::why(&rec.inputs(), d, t),
    })
}

/// The original content as JSON: parsed JSON as is, anything else (XML) as a string.
fn original_value(bytes: &[u8]) -> Value {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(v) => v,
        Err(_) => Value::String(String::from_utf8_lossy(bytes).into_owned()),
    }
}

/// Merge `extra` fields into the original when it is an object, else wrap it.
fn with_fields(original: Value, extra: Vec<(&str, Value)>) -> Value {
    let mut obj = match original {
        Value::Object(m) => m,
        other => {
            let mut m = Map::new();
            m.insert("original".into(), other);
            m
        }
    };
    for (k, v) in extra {
        obj.insert(k.to_string(), v);
    }
    Value::Object(obj)
}

/// One output stream (a JSONL file or a streamed JSON array).
struct Sink {
    path: PathBuf,
    w: BufWriter<File>,
    array: bool,
    pretty: bool,
    n: u64,
}

impl Sink {
    fn create(path: PathBuf, array: bool, pretty: bool) -> Result<Sink, StoreError> {
        let f = File::create(&path).map_err(|e| io_err(&path, e))?;
        let mut w = BufWriter::with_capacity(256 * 1024, f);
        if array {
            w.write_all(b"[").map_err(|e| io_err(&path, e))?;
        }
        Ok(Sink {
            path,
            w,
            array,
            pretty,
            n: 0,
        })
    }

    fn push(&mut self, v: &Value) -> Result<(), StoreError> {
        let p = self.path.clone();
        let res = (|| -> std::io::Result<()> {
            if self.array {
                self.w.write_all(if self.n == 0 { b"\n" } else { b",\n" })?;
            }
            if self.pretty {
                serde_json::to_writer_pretty(&mut self.w, v)?;
            } else {
                serde_json::to_writer(&mut self.w, v)?;
            }
            if !self.array {
                self.w.write_all(b"\n")?;
            }
            Ok(())
        })();
        res.map_err(|e| io_err(&p, e))?;
        self.n += 1;
        Ok(())
    }

    fn finish(mut self) -> Result<(PathBuf, u64), StoreError> {
        let p = self.path.clone();
        if self.array {
            self.w
                .write_all(if self.n == 0 { b"]\n" } else { b"\n]\n" })
                .map_err(|e| io_err(&p, e))?;
        }
        self.w.flush().map_err(|e| io_err(&p, e))?;
        Ok((self.path, self.n))
    }
}

/// Output sinks of one input file, created lazily.
struct InputSinks {
    stem: String,
    sinks: BTreeMap<Verdict, Sink>,
    counts: HashMap<Verdict, u64>,
    /// `{stem}.duplicates.jsonl`: every record that is not its group's representative.
    dups: Option<Sink>,
    n_dups: u64,
}

/// The groups of a store whose run had grouping on (recomputed from stored inputs, so the
/// export agrees with the live session), with every record's decision inputs by position.
struct ExportGroups {
    g: super::groups::Grouping,
    inputs: Vec<super::StoredInputs>,
    files: HashMap<i64, String>,
    /// Each group's label by its representative's position, where a member carries one
    /// (`decide::group_label`), as the live index derives it.
    labels: HashMap<u32, crate::decide::Label>,
}

impl ExportGroups {
    fn load(s: &RunStore) -> Result<Option<ExportGroups>, StoreError> {
        let cfg = super::groups::config(s.conn(), s.path())?;
        let Some(c) = cfg.filter(|c| c.enabled) else {
            return Ok(None);
        };
        let g = super::groups::grouping(s.conn(), s.path(), &c.settings)?;
        let inputs = s.load_inputs()?;
        let files = s
            .files()?
            .into_iter()
            .map(|f| (f.file_id, f.path))
            .collect();
        let mut member_labels: HashMap<u32, Vec<crate::decide::Label>> = HashMap::new();
        for (pos, i) in inputs.iter().enumerate() {
            if let Some(l) = i.inputs.label {
                let rep = g.grouper.rep_of(pos as u32);
                member_labels.entry(rep).or_default().push(l);
            }
        }
        let labels = member_labels
            .into_iter()
            .filter_map(|(rep, ls)| {
                let own = inputs[rep as usize].inputs.label;
                crate::decide::group_label(own, ls.into_iter().map(Some)).map(|l| (rep, l))
            })
            .collect();
        Ok(Some(ExportGroups {
            g,
            inputs,
            files,
            labels,
        }))
    }

    /// The representative's inputs with its group's label: what its members are decided on.
    fn rep_inputs(&self, rep: usize) -> crate::decide::DecisionInputs {
        let mut i = self.inputs[rep].inputs;
        i.label = self.labels.get(&(rep as u32)).copied();
        i
    }

    /// A member as exported: where it is (file, index), never the arrival-order seq, so an
    /// export does not depend on how reader threads interleaved.
    fn member(&self, m: usize, rep: usize) -> Value {
        let (file_id, index) = self.g.places[m];
        json!({
            "id": self.g.ids[m],
            "source": self.g.sources[m].as_str(),
            "file": self.files.get(&file_id),
            "index": index,
            "similarity": self.g.grouper.similarity(m as u32, rep as u32),
        })
    }

    /// The decision of `rec` and, for a duplicate, its representative's position; for a
    /// representative of two or more, its members.
    fn decide(
        &self,
        rec: &StoredRecord,
        t: &Thresholds,
    ) -> (Decision, Option<usize>, Option<Value>) {
        let own = rec.inputs();
        let Some(pos) = self.g.pos(rec.seq) else {
            return (decide(&own, t), None, None);
        };
        let rep = self.g.grouper.rep_of(pos) as usize;
        if rep != pos as usize {
            let i = crate::decide::group_inputs(&own, Some(&self.rep_inputs(rep)));
            return (decide(&i, t), Some(rep), None);
        }
        let mut members = self.g.grouper.members(pos);
        if members.len() < 2 {
            return (decide(&own, t), None, None);
        }
        let own = self.rep_inputs(rep);
        members.sort_unstable_by_key(|&m| self.g.places[m as usize]);
        let list: Vec<Value> = members
            .iter()
            .map(|&m| self.member(m as usize, pos as usize))
            .collect();
        let group = json!({"size": list.len(), "members": list});
        (decide(&own, t), None, Some(group))
    }
}

/// Export a store. `thresholds` overrides the stored ones (a running engine passes its own).
/// Files are written only for verdicts that have records (no empty files).
pub fn export(
    store: &Path,
    out: &Path,
    format: ExportFormat,
    layout: ExportLayout,
    thresholds: Option<Thresholds>,
) -> Result<ExportReport, StoreError> {
    export_with(
        store,
        out,
        &ExportOptions {
            format,
            layout,
            thresholds,
            merge: false,
            replace: true,
            dedup: true,
        },
    )
}

/// What [`export_with`] writes.
#[derive(Debug, Clone, Copy)]
pub struct ExportOptions {
    pub format: ExportFormat,
    pub layout: ExportLayout,
    pub thresholds: Option<Thresholds>,
    /// Per-input layout: one `kept`/`removed`/`pending` file across every input
    /// (`all.kept.jsonl`, …) instead of one per input.
    pub merge: bool,
    /// Remove the files an earlier export into `out` wrote (as its `summary.json` lists
    /// them) before writing, so no stale `pending` file or timestamped array is left behind.
    pub replace: bool,
    /// One record per duplicate group in kept/removed/pending (with the group's members on
    /// it), the other members in `{stem}.duplicates.jsonl`, when the run grouped (the store
    /// says); `false` writes every record by its own verdict.
    pub dedup: bool,
}

/// The files an earlier export into `out` wrote, from its `summary.json` (empty when there
/// was none). Only names listed there, inside `out`, are ever removed.
pub fn previous_export(out: &Path) -> Vec<PathBuf> {
    let Ok(text) = std::fs::read_to_string(out.join("summary.json")) else {
        return vec![];
    };
    let Ok(v) = serde_json::from_str::<Value>(&text) else {
        return vec![];
    };
    let mut names: Vec<PathBuf> = ["files", "merged"]
        .iter()
        .flat_map(|k| v[k].as_array().cloned().unwrap_or_default())
        .flat_map(|f| f["outputs"].as_array().cloned().unwrap_or_default())
        .filter_map(|n| n.as_str().map(str::to_string))
        // A bare file name: never a path that leaves `out`.
        .filter(|n| !n.contains('/') && !n.contains('\\') && n != ".." && n != ".")
        .map(|n| out.join(n))
        .collect();
    names.push(out.join("summary.json"));
    names.push(out.join("metrics.jsonl"));
    names.retain(|p| p.is_file());
    names
}

/// The stem every input writes to under `--merge`.
pub const MERGED_STEM: &str = "all";

pub fn export_with(
    store: &Path,
    out: &Path,
    o: &ExportOptions,
) -> Result<ExportReport, StoreError> {
    let (format, layout, thresholds) = (o.format, o.layout, o.thresholds);
    let s = RunStore::open_read(store)?;
    let t = match thresholds {
        Some(t) => t,
        None => s.thresholds()?.unwrap_or_default(),
    };
    std::fs::create_dir_all(out).map_err(|e| io_err(out, e))?;
    if o.replace {
        for p in previous_export(out) {
            std::fs::remove_file(&p).map_err(|e| io_err(&p, e))?;
        }
    }
    let ts = timestamp(now_secs(), "_");
    let mut report = ExportReport {
        out: out.to_path_buf(),
        ..Default::default()
    };
    let mut reader = OriginalReader { open: None };
    let mut per_file: BTreeMap<String, InputSinks> = BTreeMap::new();
    let mut stems_used: HashMap<String, u32> = HashMap::new();
    let merge = o.merge && layout == ExportLayout::PerInput;
    // Sinks are keyed by stem: one per input, or one shared by all under `merge`.
    let mut shared: BTreeMap<String, BTreeMap<Verdict, Sink>> = BTreeMap::new();
    let files = s.files()?;
    let mut order = Vec::new();
    for f in &files {
        let stem = match merge {
            true => MERGED_STEM.to_string(),
            false => unique_stem(&f.path, &mut stems_used),
        };
        order.push(f.path.clone());
        per_file.insert(
            f.path.clone(),
            InputSinks {
                stem,
                sinks: BTreeMap::new(),
                counts: HashMap::new(),
                dups: None,
                n_dups: 0,
            },
        );
    }
    let groups = match o.dedup {
        true => ExportGroups::load(&s)?,
        false => None,
    };
    let mut shared_dups: BTreeMap<String, Sink> = BTreeMap::new();
    s.for_each_record(|rec| {
        let (d, dup_of, group) = match &groups {
            Some(g) => g.decide(&rec, &t),
            None => (decide(&rec.inputs(), &t), None, None),
        };
        let original = reader.read(&rec);
        let mut cf = cyberfilter_object(&rec, &d, &t);
        if let Some(g) = group {
            cf["group"] = g;
        }
        if let (Some(g), None, None) = (&groups, dup_of, rec.label) {
            let label = g.g.pos(rec.seq).and_then(|p| g.labels.get(&p));
            if let Some(l) = label {
                cf["why"] = Value::String(format!(
                    "curator label on a member of its group: {}",
                    l.as_str()
                ));
            }
        }
        if let (Some(rep), Some(g)) = (dup_of, &groups) {
            let me = g.g.pos(rec.seq).unwrap_or_default() as usize;
            let mut of = g.member(rep, rep);
            of["similarity"] = json!(g.g.grouper.similarity(me as u32, rep as u32));
            cf["duplicate_of"] = of;
            if rec.label.is_none() {
                let i = crate::decide::group_inputs(&rec.inputs(), Some(&g.rep_inputs(rep)));
                let why = crate::decide::why(&i, &d, &t);
                cf["why"] = Value::String(format!("duplicate of {}: {why}", g.g.ids[rep]));
            }
        }
        let value = match original {
            Ok(bytes) => {
                let o = original_value(&bytes);
                match layout {
                    ExportLayout::PerInput => with_fields(o, vec![("cyberfilter", cf)]),
                    ExportLayout::Upstream => upstream_entry(o, &rec, &d, cf),
                }
            }
            Err(e) => {
                report.original_errors += 1;
                with_fields(
                    Value::Null,
                    vec![("original_error", Value::String(e)), ("cyberfilter", cf)],
                )
            }
        };
        let entry = per_file
            .entry(rec.file.clone())
            .or_insert_with(|| InputSinks {
                stem: rec.file.clone(),
                sinks: BTreeMap::new(),
                counts: HashMap::new(),
                dups: None,
                n_dups: 0,
            });
        if dup_of.is_some() {
            let sink = match merge {
                true => shared_dups.entry(entry.stem.clone()),
                false => {
                    if entry.dups.is_none() {
                        entry.dups = Some(open_dups(out, &entry.stem, format, layout, &ts)?);
                    }
                    entry.n_dups += 1;
                    report.records += 1;
                    report.duplicates += 1;
                    return entry.dups.as_mut().expect("opened above").push(&value);
                }
            };
            let sink = match sink {
                std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::btree_map::Entry::Vacant(v) => {
                    v.insert(open_dups(out, &entry.stem, format, layout, &ts)?)
                }
            };
            entry.n_dups += 1;
            report.records += 1;
            report.duplicates += 1;
            return sink.push(&value);
        }
        let sinks = match merge {
            true => shared.entry(entry.stem.clone()).or_default(),
            false => &mut entry.sinks,
        };
        if let std::collections::btree_map::Entry::Vacant(slot) = sinks.entry(d.verdict) {
            slot.insert(open_sink(out, &entry.stem, d.verdict, format, layout, &ts)?);
        }
        sinks
            .get_mut(&d.verdict)
            .expect("inserted above")
            .push(&value)?;
        *entry.counts.entry(d.verdict).or_default() += 1;
        report.records += 1;
        match d.verdict {
            Verdict::Kept => report.kept += 1,
            Verdict::Removed => report.removed += 1,
            Verdict::Pending => report.pending += 1,
        }
        Ok(())
    })?;
    for path in order {
        let sinks = per_file.remove(&path).expect("registered above");
        let mut ef = ExportedFile {
            input: path,
            kept: *sinks.counts.get(&Verdict::Kept).unwrap_or(&0),
            removed: *sinks.counts.get(&Verdict::Removed).unwrap_or(&0),
            pending: *sinks.counts.get(&Verdict::Pending).unwrap_or(&0),
            duplicates: sinks.n_dups,
            outputs: vec![],
        };
        for sink in sinks.sinks.into_values().chain(sinks.dups) {
            let (p, _) = sink.finish()?;
            ef.outputs.push(
                p.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            );
        }
        report.files.push(ef);
    }
    for (stem, sink) in shared_dups {
        shared.entry(stem.clone()).or_default();
        let (p, _) = sink.finish()?;
        report.merged.push(ExportedFile {
            input: stem,
            outputs: vec![p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()],
            ..Default::default()
        });
    }
    for (stem, sinks) in shared {
        let mut outputs = Vec::new();
        for (_, sink) in sinks {
            let (p, _) = sink.finish()?;
            outputs.push(
                p.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            );
        }
        report.merged.push(ExportedFile {
            input: stem,
            outputs,
            ..Default::default()
        });
    }
    write_summary(&s, out, &t, &report)?;
    write_metrics(&s, out)?;
    Ok(report)
}

fn upstream_entry(original: Value, rec: &StoredRecord, d: &Decision, cf: Value) -> Value {
    let source_file = Path::new(&rec.file)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut extra = vec![("_source_file", Value::String(source_file))];
    match d.verdict {
        Verdict::Kept => extra.push(("is_relevant", Value::Bool(true))),
        Verdict::Removed => {
            let reason = match d.decided_by {
                Some(crate::decide::DecidedBy::Human) => "Curator label: reject".to_string(),
                Some(crate::decide::DecidedBy::Llm) => "LLM determined not relevant".to_string(),
                Some(crate::decide::DecidedBy::Head) => format!(
                    "Verdict head determined not relevant: P(head) {}",
                    rec.p_head.unwrap_or_default()
                ),
                _ => format!("Failed rule-based pre-filter: score {}", rec.score),
            };
            extra.push(("filtered_reason", Value::String(reason)));
        }
        Verdict::Pending => extra.push((
            "filtered_reason",
            Value::String("Pending: awaiting verifier".into()),
        )),
    }
    extra.push(("cyberfilter", cf));
    with_fields(original, extra)
}

fn unique_stem(path: &str, used: &mut HashMap<String, u32>) -> String {
    let p = Path::new(path);
    let mut stem = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "input".into());
    for ext in [".gz", ".jsonl", ".ndjson", ".json", ".xml"] {
        if let Some(s) = stem.strip_suffix(ext) {
            stem = s.to_string();
        }
    }
    let n = used.entry(stem.clone()).or_insert(0);
    *n += 1;
    if *n > 1 {
        format!("{stem}_{n}")
    } else {
        stem
    }
}

fn open_sink(
    out: &Path,
    stem: &str,
    v: Verdict,
    format: ExportFormat,
    layout: ExportLayout,
    ts: &str,
) -> Result<Sink, StoreError> {
    let upstream = match v {
        Verdict::Kept => "filtered",
        Verdict::Removed => "removed",
        Verdict::Pending => "pending",
    };
    open_named(out, stem, v.as_str(), upstream, format, layout, ts)
}

/// `{stem}.duplicates.jsonl` (or `{stem}_duplicates_{ts}.json` in the upstream layout).
fn open_dups(
    out: &Path,
    stem: &str,
    format: ExportFormat,
    layout: ExportLayout,
    ts: &str,
) -> Result<Sink, StoreError> {
    open_named(out, stem, "duplicates", "duplicates", format, layout, ts)
}

/// `{stem}.{name}.{ext}` per input, or `{stem}_{upstream}_{ts}.json` in the upstream layout.
fn open_named(
    out: &Path,
    stem: &str,
    name: &str,
    upstream: &str,
    format: ExportFormat,
    layout: ExportLayout,
    ts: &str,
) -> Result<Sink, StoreError> {
    match layout {
        ExportLayout::PerInput => {
            let ext = match format {
                ExportFormat::Jsonl => "jsonl",
                ExportFormat::Json => "json",
            };
            Sink::create(
                out.join(format!("{stem}.{name}.{ext}")),
                format == ExportFormat::Json,
                false,
            )
        }
        ExportLayout::Upstream => {
            Sink::create(out.join(format!("{stem}_{upstream}_{ts}.json")), true, true)
        }
    }
}

fn write_summary(
    s: &RunStore,
    out: &Path,
    t: &Thresholds,
    report: &ExportReport,
) -> Result<(), StoreError> {
    let cfg = s.config()?;
    let sum = s.summary()?;
    let v = json!({
        "store": s.path().display().to_string(),
        "exported_at": now_secs(),
        "state": s.state()?.map(|x| x.as_str()),
        "config": cfg,
        "thresholds": t,
        "records": report.records,
        "kept": report.kept,
        "removed": report.removed,
        "pending": report.pending,
        "duplicates": report.duplicates,
        "labelled": sum.labelled,
        "errors": sum.errors,
        "original_errors": report.original_errors,
        "files": report.files,
        "input_progress": s.files()?,
    });
    let p = out.join("summary.json");
    let text = serde_json::to_string_pretty(&v).expect("summary serialises");
    std::fs::write(&p, text + "\n").map_err(|e| io_err(&p, e))
}

fn write_metrics(s: &RunStore, out: &Path) -> Result<(), StoreError> {
    let p = out.join("metrics.jsonl");
    let mut text = String::new();
    for line in s.metrics_lines()? {
        text.push_str(&line);
        text.push('\n');
    }
    std::fs::write(&p, text).map_err(|e| io_err(&p, e))
}
