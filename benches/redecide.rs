//! Re-deciding every stored record after a threshold move (the engine's index, no store
//! access): one million records, thresholds alternating so every iteration flips verdicts.
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

criterion_group!(benches, redecide);
criterion_main!(benches);
