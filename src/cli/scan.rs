//! `cyberfilter scan INPUT...`: stream, score and print one JSON line per record on stdout;
//! a summary (counts per source and tier, records/s, MB/s) on stderr.

use super::pipeline::{stream, Item};
use super::{
    text_chars, InputArgs, RuleArgs, EXIT_DATAERR, EXIT_IOERR, EXIT_NOINPUT, EXIT_OK, EXIT_USAGE,
};
use crate::record::{Record, SourceKind};
use crate::rules::{tier_for, Tier};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write;
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, clap::Args)]
pub struct ScanArgs {
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub rules: RuleArgs,
    /// Include each record's extracted text in its JSON line.
    #[arg(long)]
    pub text: bool,
    /// Print only the summary (no JSON lines); for timing the read+score path alone.
    #[arg(long)]
    pub summary_only: bool,
    /// Group duplicates (same CVE/ATT&CK/CAPEC/CWE id, equal or near-equal text) and print
    /// one JSON line per group of two or more records instead of one per record: its id (the
    /// representative's place), the representative and every member with how it joined.
    #[arg(long)]
    pub groups: bool,
    /// With `--groups`: the near-duplicate threshold (estimated Jaccard of word shingles).
    #[arg(long, value_name = "J", default_value_t = crate::dedup::DEFAULT_THRESHOLD)]
    pub dedup_threshold: f32,
}

/// `scan --groups`: the grouper and what is printed of each record.
struct ScanGroups {
    grouper: crate::dedup::group::Grouper,
    records: Vec<(String, SourceKind, String, (String, u64))>,
}

impl ScanGroups {
    fn push(&mut self, rec: &Record) {
        let hash = rec.content_hash();
        let mut item = crate::dedup::record_item(rec, &hash, text_chars(&rec.text));
        // Files are not numbered in a scan: a hash of the path keeps the tie-break stable.
        let file = rec.locator.file.display().to_string();
        let fh = crate::dedup::key_hash(&file) & 0xff_ffff;
        item.order = (fh << 40) | (rec.locator.index & ((1 << 40) - 1));
        self.grouper.push(&item);
        self.records.push((
            rec.id.clone(),
            rec.source,
            rec.locator.to_string(),
            (file, rec.locator.index),
        ));
    }

    /// One JSON value per group of two or more, in input order of the representatives.
    fn lines(&self) -> Vec<serde_json::Value> {
        let g = &self.grouper;
        let mut reps: Vec<u32> = (0..g.len() as u32)
            .filter(|&p| g.rep_of(p) == p && g.members(p).len() > 1)
            .collect();
        reps.sort_by(|a, b| {
            self.records[*a as usize]
                .3
                .cmp(&self.records[*b as usize].3)
        });
        reps.into_iter()
            .map(|r| {
                let mut ms = g.members(r);
                ms.sort_by(|a, b| {
                    self.records[*a as usize]
                        .3
                        .cmp(&self.records[*b as usize].3)
                });
                let show = |p: u32| {
                    let (id, src, at, _) = &self.records[p as usize];
                    serde_json::json!({
                        "id": id,
                        "source": src.as_str(),
                        "at": at,
                        "via": crate::store::groups::via_str(g.via(p)),
                        "similarity": g.similarity(p, r),
                    })
                };
                serde_json::json!({
                    "group": self.records[r as usize].2,
                    "size": ms.len(),
                    "representative": show(r),
                    "members": ms.into_iter().map(show).collect::<Vec<_>>(),
                })
            })
            .collect()
    }
}

/// One output line.
#[derive(Serialize)]
struct Line<'a> {
    id: &'a str,
    source: &'static str,
    kind: &'a str,
    tier: &'static str,
    score: f32,
    rules: Vec<&'a str>,
    /// `file#index@offset+len`, to find the original bytes again.
    at: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    flags: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
}

fn flag_names(r: &Record) -> Vec<&'static str> {
    let mut v = Vec::new();
    if r.flags.rejected {
        v.push("rejected");
    }
    if r.flags.deprecated {
        v.push("deprecated");
    }
    if r.flags.revoked {
        v.push("revoked");
    }
    v
}

/// Counts gathered during a scan, printed on stderr at the end.
#[derive(Debug, Default)]
pub struct ScanSummary {
    pub per_source: BTreeMap<SourceKind, [u64; 3]>,
    pub files: u64,
    pub records: u64,
    pub errors: u64,
    pub bytes: u64,
    pub elapsed: Duration,
    pub scoring: Duration,
}

fn tier_index(t: Tier) -> usize {
    match t {
        Tier::Keep => 0,
        Tier::Verify => 1,
        Tier::Reject => 2,
    }
}

impl ScanSummary {
    pub fn write_to(&self, w: &mut dyn Write) -> std::io::Result<()> {
        writeln!(
            w,
            "{:<12} {:>10} {:>10} {:>10} {:>10}",
            "source", "keep", "verify", "reject", "total"
        )?;
        let mut total = [0u64; 3];
        for (src, c) in &self.per_source {
            let n: u64 = c.iter().sum();
            writeln!(
                w,
                "{:<12} {:>10} {:>10} {:>10} {:>10}",
                src.as_str(),
                c[0],
                c[1],
                c[2],
                n
            )?;
            for i in 0..3 {
                total[i] += c[i];
            }
        }
        writeln!(
            w,
            "{:<12} {:>10} {:>10} {:>10} {:>10}",
            "total",
            total[0],
            total[1],
            total[2],
            total.iter().sum::<u64>()
        )?;
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let mb = self.bytes as f64 / 1e6;
        writeln!(
            w,
            "{} files, {} records, {} errors, {:.1} MB in {:.2} s: {:.0} records/s, {:.1} MB/s (scoring {:.2} s)",
            self.files,
            self.records,
            self.errors,
            mb,
            secs,
            self.records as f64 / secs,
            mb / secs,
            self.scoring.as_secs_f64()
        )
    }
}

pub fn run(args: &ScanArgs) -> i32 {
    let (rules, thresholds) = match args.rules.load() {
        Ok(x) => x,
        Err(msg) => {
            eprintln!("cyberfilter scan: {msg}");
            return EXIT_USAGE;
        }
    };
    let opts = args.input.ingest_options(None);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut sum = ScanSummary::default();
    let mut write_error: Option<std::io::Error> = None;
    let started = Instant::now();
    let settings = crate::dedup::Settings {
        threshold: args.dedup_threshold,
        ..Default::default()
    };
    if let Err(e) = settings.validate() {
        eprintln!("cyberfilter scan: {e}");
        return EXIT_USAGE;
    }
    let mut groups = args.groups.then(|| ScanGroups {
        grouper: crate::dedup::group::Grouper::new(settings),
        records: Vec::new(),
    });

    let mut consume = |item: Item| -> ControlFlow<()> {
        match item {
            Item::Record(rec) => {
                let t0 = Instant::now();
                let score = if rec.scored {
                    rules.score(&rec.text)
                } else {
                    Default::default()
                };
                let tier = tier_for(score.score, text_chars(&rec.text), rec.scored, &thresholds);
                sum.scoring += t0.elapsed();
                sum.records += 1;
                sum.per_source.entry(rec.source).or_default()[tier_index(tier)] += 1;
                if let Some(g) = groups.as_mut() {
                    g.push(&rec);
                } else if !args.summary_only {
                    let line = Line {
                        id: &rec.id,
                        source: rec.source.as_str(),
                        kind: &rec.kind,
                        tier: tier.as_str(),
                        score: score.score,
                        rules: score.rule_names(),
                        at: rec.locator.to_string(),
                        flags: flag_names(&rec),
                        text: args.text.then_some(rec.text.as_str()),
                    };
                    let res = serde_json::to_writer(&mut out, &line)
                        .map_err(std::io::Error::from)
                        .and_then(|_| out.write_all(b"\n"));
                    if let Err(e) = res {
                        write_error = Some(e);
                        return ControlFlow::Break(());
                    }
                }
            }
            Item::Error(e) => {
                sum.errors += 1;
                eprintln!("cyberfilter scan: {e}");
            }
            Item::FileDone { summary, .. } => {
                sum.files += 1;
                sum.bytes += summary.bytes;
            }
        }
        ControlFlow::Continue(())
    };

    if let Err(e) = stream(
        &args.input.inputs,
        &opts,
        args.input.single_thread,
        &mut consume,
    ) {
        eprintln!("cyberfilter scan: {e}");
        return EXIT_NOINPUT;
    }
    if let (Some(g), false) = (&groups, args.summary_only) {
        for v in g.lines() {
            let res = serde_json::to_writer(&mut out, &v)
                .map_err(std::io::Error::from)
                .and_then(|_| out.write_all(b"\n"));
            if let Err(e) = res {
                write_error = Some(e);
                break;
            }
        }
    }
    if let Some(g) = &groups {
        eprintln!(
            "{} duplicate groups of two or more records (near-duplicate threshold {})",
            g.grouper.groups(),
            g.grouper.settings().threshold
        );
    }
    if write_error.is_none() {
        if let Err(e) = out.flush() {
            write_error = Some(e);
        }
    }
    drop(out);
    sum.elapsed = started.elapsed();
    let _ = sum.write_to(&mut std::io::stderr().lock());
    if let Some(e) = write_error {
        // A closed pipe (`| head`) is the reader's choice, not a failure.
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            return EXIT_OK;
        }
        eprintln!("cyberfilter scan: writing output: {e}");
        return EXIT_IOERR;
    }
    if sum.files == 0 {
        eprintln!("cyberfilter scan: no input files found");
        return EXIT_NOINPUT;
    }
    if sum.errors > 0 {
        EXIT_DATAERR
    } else {
        EXIT_OK
    }
}
