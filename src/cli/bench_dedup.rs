//! `cyberfilter bench dedup`: the duplicate grouping measured.
//! - a generated input of `--records` (default 1M) records with planted exact copies, shared
//!   CVE ids and near copies: time and peak RSS of signatures + grouping, recall of the planted
//!   near copies;
//! - the planted-similarity set (recall and precision at several thresholds);
//! - `--engine FILE`: the engine's records/s with grouping off and on alternated, back to back;
//! - `--realdata DIR`: the NVD 2.0 ∩ NVD 1.1 ∩ CVE 5 overlap counted from ids and checked
//!   against the groups, near-duplicate pairs per source, `--sample` pairs listed.

use super::pipeline::{stream, Item};
use super::{text_chars, EXIT_FAILURE, EXIT_OK};
use crate::dedup::group::{Grouper, Via};
use crate::dedup::minhash::{jaccard, signature};
use crate::dedup::planted::{base_text, evaluate, generate, Rng};
use crate::dedup::{item, Settings, DEFAULT_THRESHOLD};
use crate::engine::stats::{peak_rss_bytes, rss_bytes};
use crate::record::SourceKind;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, clap::Args)]
pub struct DedupArgs {
    /// Records of the generated input (0: skip).
    #[arg(long, default_value_t = 1_000_000)]
    pub records: usize,
    /// Near-duplicate threshold.
    #[arg(long, default_value_t = DEFAULT_THRESHOLD)]
    pub threshold: f32,
    /// Also run the engine on this input with grouping off and on alternated, `ENGINE_ROUNDS`
    /// rounds (verifier none).
    #[arg(long, value_name = "FILE")]
    pub engine: Option<PathBuf>,
    /// Also measure the cross-feed overlap and near-duplicate pairs of this folder.
    #[arg(long, value_name = "DIR")]
    pub realdata: Option<PathBuf>,
    /// Near-duplicate pairs of `--realdata` listed (ids and similarity), spread over sources.
    #[arg(long, default_value_t = 50)]
    pub sample: usize,
    /// With the sample: print the first characters of both texts too (for judging them by
    /// reading; never for the README).
    #[arg(long)]
    pub show_text: bool,
}

const MB: f64 = 1024.0 * 1024.0;

pub fn run(a: &DedupArgs) -> i32 {
    let settings = Settings {
        threshold: a.threshold,
        ..Default::default()
    };
    if let Err(e) = settings.validate() {
        eprintln!("cyberfilter bench dedup: {e}");
        return super::EXIT_USAGE;
    }
    if a.records > 0 {
        generated(a.records, &settings);
    }
    planted_sweep();
    if let Some(f) = &a.engine {
        if let Err(e) = engine_on_off(f, &settings) {
            eprintln!("cyberfilter bench dedup: {e}");
            return EXIT_FAILURE;
        }
    }
    if let Some(d) = &a.realdata {
        if let Err(e) = realdata(d, &settings, a.sample, a.show_text) {
            eprintln!("cyberfilter bench dedup: {e}");
            return EXIT_FAILURE;
        }
    }
    EXIT_OK
}

/// Record `i`'s base text (regenerated from its index, so copies need no stored text).
fn base(i: usize) -> Vec<String> {
    let mut rng = Rng::new(i as u64 + 1);
    let n = 40 + rng.below(60) as usize;
    base_text(&mut rng, n)
}

fn generated(n: usize, settings: &Settings) {
    println!("## generated input: {n} records");
    let rss0 = rss_bytes();
    let mut g = Grouper::new(settings.clone());
    let mut rng = Rng::new(99);
    let mut in_grouping = Duration::ZERO;
    let mut planted_near: Vec<(u32, u32, f32)> = Vec::new();
    let (mut exact, mut ids) = (0u64, 0u64);
    // Whether record i's text is its own base text (a copy's truth is measured against it).
    let mut own_base = Vec::with_capacity(n);
    let started = Instant::now();
    for i in 0..n {
        // 5% exact copies, 4% another record of an earlier CVE id, 10% near copies (1-4
        // words of 40-100 changed), the rest distinct.
        let roll = rng.below(100);
        let earlier = if i > 0 {
            rng.below(i as u64) as usize
        } else {
            0
        };
        let (id, text, near_of) = match roll {
            0..=4 if i > 0 => {
                exact += 1;
                (format!("doc-{i}"), base(earlier).join(" "), None)
            }
            5..=8 if i > 0 => {
                ids += 1;
                (format!("CVE-2024-{earlier}"), base(i).join(" "), None)
            }
            9..=18 if i > 0 => {
                let mut w = base(earlier);
                for _ in 0..1 + rng.below(4) {
                    let k = rng.below(w.len() as u64) as usize;
                    w[k] = format!("v{}", rng.below(50_000));
                }
                (format!("doc-{i}"), w.join(" "), Some(earlier))
            }
            _ => (format!("CVE-2024-{i}"), base(i).join(" "), None),
        };
        own_base.push(i == 0 || !(roll <= 4 || (9..=18).contains(&roll)));
        let t0 = Instant::now();
        let h = *blake3::hash(text.as_bytes()).as_bytes();
        let mut it = item(
            SourceKind::Json,
            &id,
            &text,
            &h,
            text.len(),
            signature(&text),
        );
        it.order = i as u64;
        g.push(&it);
        in_grouping += t0.elapsed();
        if let Some(e) = near_of.filter(|e| own_base[*e]) {
            let j = jaccard(&base(e).join(" "), &text);
            planted_near.push((e as u32, i as u32, j));
        }
    }
    let total = started.elapsed();
    let peak = peak_rss_bytes();
    let true_pairs: Vec<_> = planted_near
        .iter()
        .filter(|p| p.2 >= settings.threshold)
        .collect();
    let found = true_pairs
        .iter()
        .filter(|p| g.rep_of(p.0) == g.rep_of(p.1))
        .count();
    let dups = (0..n as u32).filter(|&p| g.rep_of(p) != p).count();
    println!(
        "signatures + grouping: {:.1} s ({:.0} records/s; generating the texts took {:.1} s more)",
        in_grouping.as_secs_f64(),
        n as f64 / in_grouping.as_secs_f64().max(1e-9),
        (total - in_grouping).as_secs_f64()
    );
    println!(
        "memory: RSS {:.0} MB before, peak {:.0} MB (grouper's own tables {:.0} MB, {:.0} bytes per record)",
        rss0 as f64 / MB,
        peak as f64 / MB,
        g.bytes() as f64 / MB,
        g.bytes() as f64 / n as f64
    );
    println!(
        "planted: {exact} exact copies, {ids} shared CVE ids, {} near copies ({} at J >= {}); \
         {} groups, {dups} duplicates; near copies at J >= {} grouped: {found}/{} (recall {:.3}); \
         LSH chain walks cut: {}",
        planted_near.len(),
        true_pairs.len(),
        settings.threshold,
        g.groups(),
        settings.threshold,
        true_pairs.len(),
        found as f64 / true_pairs.len().max(1) as f64,
        g.truncated()
    );
}

fn planted_sweep() {
    println!("## planted similarities: 4000 base texts, 2000 copies at exact Jaccard 0.3-1.0");
    let p = generate(4000, 11);
    println!("threshold  true pairs  found  recall  grouped pairs  precision(J >= t-0.1)  precision(J >= t)");
    for t in [0.5f32, 0.6, 0.7, 0.8, 0.9] {
        let s = Settings {
            threshold: t,
            ..Default::default()
        };
        let q = evaluate(&p, &s, 0.1);
        let strict = evaluate(&p, &s, 0.0);
        println!(
            "{t:>9.2}  {:>10}  {:>5}  {:>6.3}  {:>13}  {:>21.3}  {:>17.3}",
            q.true_pairs, q.found, q.recall, q.grouped_pairs, q.precision, strict.precision
        );
    }
}

/// CPU seconds this process has used (user + system), 0 where unknown.
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
        return 0.0;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// Rounds of grouping off then on in `--engine` (5: on a shared machine single runs vary by
/// ±30%, so the median of the per-round ratios is the figure to read).
const ENGINE_ROUNDS: usize = 5;

fn engine_on_off(input: &std::path::Path, settings: &Settings) -> Result<(), String> {
    println!(
        "## engine: {} (verifier none), grouping off / on alternated, {ENGINE_ROUNDS} rounds",
        input.display()
    );
    let dir = std::env::temp_dir().join(format!("cyberfilter-bench-dedup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let mut rates = Vec::new();
    let runs = [false, true].into_iter().cycle().take(2 * ENGINE_ROUNDS);
    for (k, on) in runs.enumerate() {
        let store = dir.join(format!("run{k}.cfrun"));
        let mut c = crate::engine::EngineConfig::new(
            store.clone(),
            vec![input.to_path_buf()],
            crate::rules::RuleSet::default_rules(),
        );
        c.dedup = on.then(|| settings.clone());
        let (t0, cpu0) = (Instant::now(), cpu_seconds());
        let mut h = crate::engine::start(c).map_err(|e| e.to_string())?;
        while h.events.blocking_recv().is_some() {}
        let snap = h
            .join
            .join()
            .map_err(|_| "engine thread panicked".to_string())?
            .map_err(|e| e.to_string())?;
        let secs = t0.elapsed().as_secs_f64();
        let cpu = cpu_seconds() - cpu0;
        let rate = snap.records_read as f64 / secs;
        println!(
            "grouping {:<3}: {} records in {:.2} s = {:.0} records/s, {:.2} CPU s ({} groups, {} duplicates, {} verifier asks saved)",
            if on { "on" } else { "off" },
            snap.records_read,
            secs,
            rate,
            cpu,
            snap.groups,
            snap.duplicates,
            snap.verifier_saved
        );
        rates.push((on, rate, cpu));
        let _ = std::fs::remove_file(&store);
        for ext in ["cfrun-wal", "cfrun-shm", "cfrun.lock"] {
            let _ = std::fs::remove_file(store.with_extension(ext));
        }
    }
    let mean = |want: bool, f: fn(&(bool, f64, f64)) -> f64| {
        let v: Vec<f64> = rates.iter().filter(|r| r.0 == want).map(f).collect();
        v.iter().sum::<f64>() / v.len().max(1) as f64
    };
    // Each round's on against the off run just before it.
    let mut per_round: Vec<f64> = rates.chunks(2).map(|p| p[1].1 / p[0].1).collect();
    per_round.sort_by(f64::total_cmp);
    println!(
        "on / off: {:.2}x records/s, {:.2}x CPU s (means of {ENGINE_ROUNDS} runs each, alternated); \
         per round {}, median {:.2}x",
        mean(true, |r| r.1) / mean(false, |r| r.1),
        mean(true, |r| r.2) / mean(false, |r| r.2),
        per_round
            .iter()
            .map(|r| format!("{r:.2}"))
            .collect::<Vec<_>>()
            .join(" "),
        per_round[per_round.len() / 2]
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// (record, representative, estimated similarity).
type Pair = (u32, u32, f32);

/// The identifier-like words of a record's text (a digit or an underscore in them: versions,
/// parameter names, other CVE ids), with the record's own natural ids taken out first.
fn id_tokens(r: &Rec) -> BTreeSet<String> {
    let mut t = r.text.to_lowercase();
    for k in crate::dedup::natural_keys(r.source, &r.id, crate::dedup::text_head(&r.text)) {
        let k = k.strip_prefix("attack:").unwrap_or(&k).to_lowercase();
        t = t.replace(&k, " ");
    }
    t.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| w.chars().any(|c| c.is_ascii_digit() || c == '_'))
        .map(str::to_string)
        .collect()
}

/// The rule measured (not applied) for precision: two records that each carry a natural id
/// and whose identifier-like words differ are distinct facts in templated wording.
fn id_rule_splits(a: &Rec, b: &Rec) -> bool {
    let has_id = |r: &Rec| {
        !crate::dedup::natural_keys(r.source, &r.id, crate::dedup::text_head(&r.text)).is_empty()
    };
    has_id(a) && has_id(b) && id_tokens(a) != id_tokens(b)
}

struct Rec {
    id: String,
    source: SourceKind,
    file: String,
    text: String,
}

fn realdata(
    dir: &std::path::Path,
    settings: &Settings,
    sample: usize,
    show: bool,
) -> Result<(), String> {
    println!("## {}", dir.display());
    let mut recs: Vec<Rec> = Vec::new();
    let mut g = Grouper::new(settings.clone());
    let t0 = Instant::now();
    let mut file_no: HashMap<String, u64> = HashMap::new();
    stream(&[dir.to_path_buf()], &Default::default(), true, &mut |it| {
        if let Item::Record(r) = it {
            let file = r.locator.file.display().to_string();
            let n = file_no.len() as u64;
            let f = *file_no.entry(file.clone()).or_insert(n);
            let mut itm = crate::dedup::record_item(&r, &r.content_hash(), text_chars(&r.text));
            itm.order = crate::dedup::order_key(f as i64, r.locator.index);
            g.push(&itm);
            recs.push(Rec {
                id: r.id,
                source: r.source,
                file,
                text: r.text,
            });
        }
        ControlFlow::Continue(())
    })
    .map_err(|e| e.to_string())?;
    println!(
        "{} records grouped in {:.1} s: {} groups of two or more, {} duplicates",
        recs.len(),
        t0.elapsed().as_secs_f64(),
        g.groups(),
        (0..recs.len() as u32).filter(|&p| g.rep_of(p) != p).count()
    );

    // Cross-feed CVE overlap, from ids alone.
    let mut sets: BTreeMap<SourceKind, BTreeSet<String>> = BTreeMap::new();
    for r in &recs {
        if matches!(
            r.source,
            SourceKind::NvdApi2 | SourceKind::NvdLegacy | SourceKind::Cve5
        ) {
            sets.entry(r.source)
                .or_default()
                .insert(r.id.to_ascii_uppercase());
        }
    }
    let empty = BTreeSet::new();
    let s2 = sets.get(&SourceKind::NvdApi2).unwrap_or(&empty);
    let s11 = sets.get(&SourceKind::NvdLegacy).unwrap_or(&empty);
    let s5 = sets.get(&SourceKind::Cve5).unwrap_or(&empty);
    let i = |a: &BTreeSet<String>, b: &BTreeSet<String>| -> BTreeSet<String> {
        a.intersection(b).cloned().collect()
    };
    let all3 = i(&i(s2, s11), s5);
    println!(
        "CVE ids: NVD 2.0 {}, NVD 1.1 {}, CVE 5 {}; 2.0∩1.1 {}, 2.0∩5 {}, 1.1∩5 {}, all three {}",
        s2.len(),
        s11.len(),
        s5.len(),
        i(s2, s11).len(),
        i(s2, s5).len(),
        i(s11, s5).len(),
        all3.len()
    );
    // Checked against the groups: every CVE id in two or more feeds is one group.
    let mut groups_of: HashMap<String, BTreeSet<u32>> = HashMap::new();
    let mut feeds_of: HashMap<String, BTreeSet<SourceKind>> = HashMap::new();
    for (p, r) in recs.iter().enumerate() {
        if matches!(
            r.source,
            SourceKind::NvdApi2 | SourceKind::NvdLegacy | SourceKind::Cve5
        ) {
            let id = r.id.to_ascii_uppercase();
            groups_of
                .entry(id.clone())
                .or_default()
                .insert(g.rep_of(p as u32));
            feeds_of.entry(id).or_default().insert(r.source);
        }
    }
    let multi: Vec<&String> = feeds_of
        .iter()
        .filter(|(_, f)| f.len() > 1)
        .map(|(k, _)| k)
        .collect();
    let one_group = multi.iter().filter(|k| groups_of[**k].len() == 1).count();
    let three_one = all3.iter().filter(|k| groups_of[*k].len() == 1).count();
    println!(
        "checked: {one_group} of {} CVE ids in two or more feeds are one group; {three_one} of {} in all three",
        multi.len(),
        all3.len()
    );

    // Near-duplicate pairs per source: each record that joined by text similarity, with
    // the representative of its group.
    let mut per_source: BTreeMap<(SourceKind, SourceKind), Vec<Pair>> = BTreeMap::new();
    let mut exact: BTreeMap<SourceKind, u64> = BTreeMap::new();
    let mut transitive = 0u64;
    for p in 0..recs.len() as u32 {
        let rep = g.rep_of(p);
        if rep == p {
            continue;
        }
        let (a, b) = (&recs[p as usize], &recs[rep as usize]);
        let sim = g.similarity(p, rep).unwrap_or(0.0);
        if a.text == b.text {
            *exact.entry(a.source).or_default() += 1;
        } else if a.id.eq_ignore_ascii_case(&b.id) {
            // One fact in two feeds (grouped by id).
        } else if sim >= settings.threshold {
            per_source
                .entry((a.source, b.source))
                .or_default()
                .push((p, rep, sim));
        } else {
            // In the group through another member.
            transitive += 1;
        }
    }
    let _ = Via::Near;
    println!("duplicates in a group through another member only: {transitive}");
    println!("equal-text duplicates per source: {exact:?}");
    println!("near-duplicate (record, representative) pairs per source (not equal text, not same id only):");
    for ((a, b), v) in &per_source {
        let split = v
            .iter()
            .filter(|(p, r, _)| id_rule_splits(&recs[*p as usize], &recs[*r as usize]))
            .count();
        println!(
            "  {a} -> {b}: {} ({split} with differing identifier-like words)",
            v.len()
        );
    }
    // A sample spread over the sources (round robin), deterministic.
    let mut lists: Vec<&Vec<Pair>> = per_source.values().collect();
    let mut picked = Vec::new();
    let mut k = 0;
    while picked.len() < sample && lists.iter().any(|l| k < l.len()) {
        for l in lists.iter_mut() {
            // Every few pairs, not only the first ones of each list.
            let step = (l.len() / (sample / per_source.len().max(1)).max(1)).max(1);
            if k * step < l.len() && picked.len() < sample {
                picked.push(l[k * step]);
            }
        }
        k += 1;
    }
    println!(
        "sample of {} pairs: source/id -> representative source/id, estimated J, exact J \
         (ids: identifier-like words differ)",
        picked.len()
    );
    for (n, (p, r, sim)) in picked.iter().enumerate() {
        let (a, b) = (&recs[*p as usize], &recs[*r as usize]);
        println!(
            "{:>2}. {}/{} -> {}/{}  est {:.2}  exact {:.2}{}",
            n + 1,
            a.source,
            a.id,
            b.source,
            b.id,
            sim,
            jaccard(&a.text, &b.text),
            if id_rule_splits(a, b) { "  ids" } else { "" }
        );
        if show {
            let cut = |t: &str| t.chars().take(300).collect::<String>().replace('\n', " ");
            println!("    A [{}]: {}", a.file, cut(&a.text));
            println!("    B [{}]: {}", b.file, cut(&b.text));
        }
    }
    Ok(())
}
