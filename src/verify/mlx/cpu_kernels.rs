//! The forward pass's two exp-heavy element-wise steps, written in Rust for the CPU: the
//! causal softmax of attention and `silu(gate) * up`.
//!
//! Why: the mlx-cpu wheel's libmlx is built for baseline x86-64, so its `exp` (softmax, silu)
//! and even `power` cost 7-11 ns an element on one thread, which on a 135M model is a third of
//! a forward pass (examples/profile_forward.rs). Here `exp` is a range-reduced polynomial that
//! the compiler vectorises (AVX2 when the CPU has it), the work is split over the cores (BLAS
//! threads sit idle between matmuls), and the softmax skips the causally masked half of every
//! score row instead of adding -inf and exponentiating it. Each kernel evaluates its input,
//! so the lazy graph is cut once per use; on the CPU that costs nothing measurable.
//!
//! Metal has fused kernels for both, so macOS keeps MLX's own ops (see `model::CPU_MATH`).

use mlx_rs::error::Exception;
use mlx_rs::Array;

/// Below this many elements a kernel stays on the calling thread.
const PARALLEL_MIN: usize = 1 << 15;

/// `e^x` for f32, relative error below 2e-7 on the range that matters (results under 2^-126
/// flush to the smallest normal, far below anything a softmax or sigmoid can resolve).
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split so that n * LN2_HI is exact for |n| < 2^9.
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // 1.5 * 2^23: adding and subtracting it rounds to the nearest integer without `round`,
    // which baseline x86-64 has no vector instruction for.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let n = (x * LOG2_E + ROUND) - ROUND;
    let r = (x - n * LN2_HI) - n * LN2_LO; // |r| <= ln2 / 2
                                           // Taylor series of e^r to degree 7: truncation error < 3e-8 relative on |r| <= 0.347.
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0
                        + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    p * f32::from_bits(((n as i32 + 127) << 23) as u32)
}

/// Softmax over the last axis of `scores` `(..., L, S)` rows under a causal mask: query `i`
/// of a block of `L` that follows `S - L` earlier keys sees keys `0..=S-L+i`; the rest of its
/// row becomes 0. `scores` must be f32. Returns an array of the same shape.
pub fn causal_softmax(scores: &Array, queries: usize) -> Result<Array, Exception> {
    let shape = scores.shape().to_vec();
    let keys = *shape.last().unwrap_or(&0) as usize;
    if keys == 0 || queries == 0 || keys < queries {
        return Err(Exception::custom(format!(
            "causal softmax: {queries} queries over {keys} keys"
        )));
    }
    let data = read(scores, "attention scores")?;
    let past = keys - queries;
    let mut out = vec![0.0f32; data.len()];
    let row = |r: usize, src: &[f32], dst: &mut [f32]| {
        let visible = past + r % queries + 1;
        softmax_row(&src[..visible], &mut dst[..visible]);
    };
    for_rows(data, &mut out, keys, &row);
    Ok(Array::from_slice(&out, &shape))
}

/// `silu(gate) * up = gate / (1 + e^-gate) * up`, element-wise over equal shapes (f32).
pub fn silu_mul(gate: &Array, up: &Array) -> Result<Array, Exception> {
    if gate.shape() != up.shape() {
        return Err(Exception::custom(format!(
            "silu_mul: gate {:?} and up {:?} differ",
            gate.shape(),
            up.shape()
        )));
    }
    let shape = gate.shape().to_vec();
    let g = read(gate, "MLP gate")?;
    let u = read(up, "MLP up")?;
    let mut out = vec![0.0f32; g.len()];
    let chunk = (g.len() / workers(g.len())).max(1).next_multiple_of(64);
    std::thread::scope(|s| {
        for ((o, g), u) in out
            .chunks_mut(chunk)
            .zip(g.chunks(chunk))
            .zip(u.chunks(chunk))
        {
            s.spawn(move || silu_mul_slice(g, u, o));
        }
    });
    Ok(Array::from_slice(&out, &shape))
}

/// The f32 contents of `a`, evaluated and made row-contiguous.
fn read<'a>(a: &'a Array, what: &str) -> Result<&'a [f32], Exception> {
    a.try_as_slice::<f32>()
        .map_err(|e| Exception::custom(format!("reading {what}: {e}")))
}

fn workers(elements: usize) -> usize {
    if elements < PARALLEL_MIN {
        return 1;
    }
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Runs `f(row_index, src_row, dst_row)` over rows of `width`, split across the cores.
fn for_rows<F>(src: &[f32], dst: &mut [f32], width: usize, f: &F)
where
    F: Fn(usize, &[f32], &mut [f32]) + Sync,
{
    let rows = src.len() / width;
    let per = rows.div_ceil(workers(src.len())).max(1);
    std::thread::scope(|s| {
        for (k, (d, sr)) in dst
            .chunks_mut(per * width)
            .zip(src.chunks(per * width))
            .enumerate()
        {
            s.spawn(move || {
                for (i, (drow, srow)) in d.chunks_mut(width).zip(sr.chunks(width)).enumerate() {
                    f(k * per + i, srow, drow);
                }
            });
        }
    });
}

fn softmax_row(src: &[f32], dst: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, checked just above.
        return unsafe { softmax_row_avx2(src, dst) };
    }
    softmax_row_portable(src, dst)
}

fn silu_mul_slice(g: &[f32], u: &[f32], o: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, checked just above.
        return unsafe { silu_mul_avx2(g, u, o) };
    }
    silu_mul_portable(g, u, o)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn softmax_row_avx2(src: &[f32], dst: &mut [f32]) {
    softmax_row_portable(src, dst)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn silu_mul_avx2(g: &[f32], u: &[f32], o: &mut [f32]) {
    silu_mul_portable(g, u, o)
}

/// Eight independent lanes so the max and the sum vectorise (f32 reductions are not
/// reassociated otherwise).
const LANES: usize = 8;

#[inline(always)]
fn softmax_row_portable(src: &[f32], dst: &mut [f32]) {
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let mut chunks = src.chunks_exact(LANES);
    for c in &mut chunks {
        for k in 0..LANES {
            lanes[k] = lanes[k].max(c[k]);
        }
    }
    let max = chunks
        .remainder()
        .iter()
        .chain(lanes.iter())
        .fold(f32::NEG_INFINITY, |m, &x| m.max(x));
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = exp(s - max);
    }
    let mut sums = [0.0f32; LANES];
    let mut chunks = dst.chunks_exact(LANES);
    for c in &mut chunks {
        for k in 0..LANES {
            sums[k] += c[k];
        }
    }
    let sum: f32 = chunks.remainder().iter().sum::<f32>() + sums.iter().sum::<f32>();
    let inv = 1.0 / sum;
    for d in dst.iter_mut() {
        *d *= inv;
    }
}

#[inline(always)]
fn silu_mul_portable(g: &[f32], u: &[f32], o: &mut [f32]) {
    for ((o, &g), &u) in o.iter_mut().zip(g).zip(u) {
        *o = g / (1.0 + exp(-g)) * u;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_the_library_exp() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let want = (x as f64).exp();
            let rel = ((exp(x) as f64 - want) / want).abs();
            worst = worst.max(rel);
            x += 0.0137;
        }
        assert!(worst < 4e-7, "worst relative error {worst:e}");
        assert_eq!(exp(0.0), 1.0);
        assert!(exp(-1e30) > 0.0 && exp(-1e30) < 1e-37);
        assert!(exp(f32::NEG_INFINITY) < 1e-37);
    }

    #[test]
    fn causal_softmax_equals_mlx_softmax_with_an_additive_mask() {
        let (rows, l, s) = (3usize, 5usize, 9usize); // 4 earlier keys
        let data: Vec<f32> = (0..rows * l * s)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0)
            .collect();
        let scores = Array::from_slice(&data, &[rows as i32, l as i32, s as i32]);
        let mask = super::super::model::causal_mask(l, s - l);
        let want = mlx_rs::ops::softmax_axis(scores.add(&mask).unwrap(), -1, true).unwrap();
        let got = causal_softmax(&scores, l).unwrap();
        assert_eq!(got.shape(), want.shape());
        for (a, b) in got.as_slice::<f32>().iter().zip(want.as_slice::<f32>()) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
    }

    #[test]
    fn causal_softmax_splits_rows_over_threads_like_one_thread() {
        // Large enough to go parallel; row r's query index is r % L in every chunk.
        let (rows, l, s) = (64usize, 40usize, 100usize);
        let data: Vec<f32> = (0..rows * l * s)
            .map(|i| ((i * 7919 % 1013) as f32) / 97.0)
            .collect();
        let got =
            causal_softmax(&Array::from_slice(&data, &[(rows * l) as i32, s as i32]), l).unwrap();
        let got = got.as_slice::<f32>();
        for r in 0..rows * l {
            let visible = s - l + r % l + 1;
            let mut want = vec![0.0f32; s];
            softmax_row_portable(&data[r * s..r * s + visible], &mut want[..visible]);
            assert_eq!(&got[r * s..(r + 1) * s], &want[..], "row {r}");
        }
    }

    #[test]
    fn silu_mul_matches_the_formula() {
        let n = 70_000; // parallel path, with a ragged last chunk
        let g: Vec<f32> = (0..n).map(|i| (i as f32 - 35_000.0) / 3_000.0).collect();
        let u: Vec<f32> = (0..n).map(|i| 1.0 + (i % 13) as f32 / 13.0).collect();
        let got = silu_mul(
            &Array::from_slice(&g, &[7, 10_000]),
            &Array::from_slice(&u, &[7, 10_000]),
        )
        .unwrap();
        for ((&o, &g), &u) in got.as_slice::<f32>().iter().zip(&g).zip(&u) {
            let want = (g as f64 / (1.0 + (-g as f64).exp())) * u as f64;
            assert!(
                (o as f64 - want).abs() <= 1e-6 * (1.0 + want.abs()),
                "{o} vs {want}"
            );
        }
        let bad = silu_mul(
            &Array::from_slice(&g[..4], &[4]),
            &Array::from_slice(&u[..2], &[2]),
        );
        assert!(bad.is_err());
    }

    #[test]
    fn causal_softmax_refuses_more_queries_than_keys() {
        let a = Array::from_slice(&[0.0f32; 6], &[3, 2]);
        assert!(causal_softmax(&a, 3).is_err());
    }
}
