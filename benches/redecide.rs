//! Re-deciding every stored record after a threshold move (the engine's index, no store
//! access): one million records, thresholds alternating so every iteration flips verdicts.
//! And after a verdict-head retrain: 100k verify-tier records rescored from their kept
//! features (576 dims, f16, as the engine holds them) by alternating heads, then re-decided.
//!     cargo bench --bench redecide
use criterion::{criterion_group, criterion_main, Criterion};
use cyberfilter::decide::DecisionInputs;
use cyberfilter::engine::index::Index;
use cyberfilter::rules::Thresholds;
use cyberfilter::SourceKind;

fn million_records(t: &Thresholds) -> Index {
    let mut ix = Index::default();
    for n in 0..1_000_000u32 {
        // A cheap deterministic spread of scores, lengths, answers.
        let x = n.wrapping_mul(2_654_435_761);
        let inputs = DecisionInputs {
            score: (x % 1000) as f32 / 100.0,
            text_len: 10 + (x % 200) as usize,
            scored: x % 17 != 0,
            p_yes: (x % 3 == 0).then(|| (x % 101) as f32 / 100.0),
            p_head: (x % 6 == 0).then(|| (x % 89) as f32 / 88.0),
            label: None,
        };
        ix.push(n as i64 + 1, SourceKind::Json, &inputs, t);
    }
    ix
}

fn redecide(c: &mut Criterion) {
    let a = Thresholds::default();
    let b = Thresholds {
        high: 5.0,
        low: 1.5,
        ..a
    };
    let mut ix = million_records(&a);
    let mut flip = false;
    let mut g = c.benchmark_group("redecide");
    g.sample_size(20);
    g.bench_function("1M records", |bench| {
        bench.iter(|| {
            flip = !flip;
            let r = ix.redecide(if flip { &b } else { &a });
            std::hint::black_box(r.changed.len())
        })
    });
    g.finish();
}

fn synthetic_head(seed: u64) -> cyberfilter::verify::head::Head {
    use cyberfilter::verify::head::{train, Example, FeatureSpec, LabelSource, TrainOptions};
    let mut s = seed;
    let mut r = move || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((s >> 33) as f64 / (1u64 << 31) as f64) as f32 - 0.5
    };
    let examples: Vec<Example> = (0..200)
        .map(|i| {
            let mut pooled: Vec<f32> = (0..576).map(|_| r()).collect();
            let positive = i % 2 == 0;
            if positive {
                pooled[(seed % 576) as usize] += 1.0;
            }
            Example {
                key: format!("{seed}:{i}"),
                group: "bench".into(),
                pooled,
                p_yes: Some(0.3),
                score: None,
                positive,
                source: LabelSource::Weak,
            }
        })
        .collect();
    let spec = FeatureSpec {
        model: "bench".into(),
        layer: 16,
        pooling: "mean".into(),
        max_text_tokens: 256,
        dim: 576,
    };
    train(&spec, &examples, &TrainOptions::default(), None).expect("bench head trains")
}

fn retrain_redecide(c: &mut Criterion) {
    use cyberfilter::engine::head::{pack, rescore_index, Packed};
    use std::collections::HashMap;
    let t = Thresholds::default();
    let mid = (t.low + t.high) / 2.0;
    let mut ix = Index::default();
    let mut feats: HashMap<i64, Packed> = HashMap::new();
    let mut x = 1u32;
    for n in 0..100_000i64 {
        let inputs = DecisionInputs {
            score: mid,
            text_len: 200,
            scored: true,
            p_yes: Some((n % 97) as f32 / 96.0),
            p_head: None,
            label: None,
        };
        ix.push(n + 1, SourceKind::Json, &inputs, &t);
        let v: Vec<f32> = (0..576)
            .map(|_| {
                x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (x >> 8) as f32 / (1u32 << 24) as f32 - 0.5
            })
            .collect();
        feats.insert(n + 1, pack(&v));
    }
    let heads = [synthetic_head(3), synthetic_head(7)];
    let mut flip = false;
    let mut g = c.benchmark_group("redecide");
    g.sample_size(10);
    g.bench_function("100k verify-tier after a head retrain", |bench| {
        bench.iter(|| {
            flip = !flip;
            let changed = rescore_index(&mut ix, &feats, Some(&heads[flip as usize]));
            let r = ix.redecide(&t);
            std::hint::black_box((changed.len(), r.changed.len()))
        })
    });
    g.finish();
}

criterion_group!(benches, redecide, retrain_redecide);
criterion_main!(benches);
