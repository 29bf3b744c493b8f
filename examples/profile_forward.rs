//! Where the time of one forward pass goes: each kind of op timed alone, with an eval barrier
//! after it, on the shapes of a real batch. A development tool, not a benchmark:
//!     cargo run --release --example profile_forward -- [BATCH] [LEN] [REPS]
use std::time::Instant;

use cyberfilter::verify::mlx::model::causal_mask;
use cyberfilter::verify::mlx::{default_model_path, gguf};
use mlx_rs::{fast, Array};

fn time<F: FnMut() -> Array>(name: &str, reps: usize, flops: f64, mut f: F) -> f64 {
    f().eval().unwrap();
    let mut best = f64::MAX;
    for _ in 0..reps {
        let t = Instant::now();
        f().eval().unwrap();
        best = best.min(t.elapsed().as_secs_f64());
    }
    let gf = if flops > 0.0 {
        format!("{:>7.1} GFLOP/s", flops / best / 1e9)
    } else {
        String::new()
    };
    println!("{name:<34} {:>9.2} ms {gf}", best * 1e3);
    best
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|s| s.parse())
        .collect::<Result<_, _>>()?;
    let (b, l, reps) = (
        *args.first().unwrap_or(&1) as i32,
        *args.get(1).unwrap_or(&300) as i32,
        *args.get(2).unwrap_or(&3),
    );
    let m = gguf::load(&default_model_path(), false)?.model;
    let c = m.config.clone();
    let layer = &m.layers[0];
    let bl = (b * l) as f64;
    let x = mlx_rs::random::normal::<f32>(&[b, l, c.dim], None, None, None)?;
    let xh = mlx_rs::random::normal::<f32>(&[b, l, c.hidden_dim], None, None, None)?;
    x.eval()?;
    xh.eval()?;
    let mut per_layer = 0.0;
    let dd = 2.0 * bl * c.dim as f64;
    per_layer += time("q (x W^T via .t())", reps, dd * c.dim as f64, || {
        layer.q.apply(&x).unwrap()
    });
    per_layer += 2.0
        * time("k", reps, dd * (c.n_kv_heads * c.head_dim) as f64, || {
            layer.k.apply(&x).unwrap()
        });
    per_layer += time("o", reps, dd * c.dim as f64, || layer.o.apply(&x).unwrap());
    per_layer += 2.0
        * time("gate", reps, dd * c.hidden_dim as f64, || {
            layer.gate.apply(&x).unwrap()
        });
    per_layer += time("down", reps, dd * c.hidden_dim as f64, || {
        layer.down.apply(&xh).unwrap()
    });
    if let cyberfilter::verify::mlx::model::Weight::Dense(w) = &layer.gate.weight {
        let wt = w.t().contiguous()?; // (in, out), row-major
        wt.eval()?;
        time(
            "gate, pre-transposed (in,out)",
            reps,
            dd * c.hidden_dim as f64,
            || x.matmul(&wt).unwrap(),
        );
    }
    per_layer += time("silu(g)*u", reps, 0.0, || {
        mlx_rs::nn::silu(&xh).unwrap().multiply(&xh).unwrap()
    });
    per_layer += 2.0
        * time("rms_norm", reps, 0.0, || {
            fast::rms_norm(&x, Some(&layer.attn_norm), c.rms_eps).unwrap()
        });
    per_layer += 2.0 * time("residual add", reps, 0.0, || x.add(&x).unwrap());
    let hd = c.head_dim;
    let q = x
        .reshape(&[b, l, c.n_heads, hd])?
        .transpose_axes(&[0, 2, 1, 3])?
        .contiguous()?;
    let kv = mlx_rs::random::normal::<f32>(&[b, c.n_kv_heads, l, hd], None, None, None)?;
    q.eval()?;
    kv.eval()?;
    per_layer += time("rope q", reps, 0.0, || {
        fast::rope(&q, hd, c.rope_traditional, c.rope_theta, 1.0, 0, None).unwrap()
    });
    per_layer += time("rope k", reps, 0.0, || {
        fast::rope(&kv, hd, c.rope_traditional, c.rope_theta, 1.0, 0, None).unwrap()
    });
    let mask = causal_mask(l as usize, 0);
    mask.eval()?;
    let att_flops = 4.0 * b as f64 * (l as f64).powi(2) * (c.n_heads * hd) as f64;
    let scale = 1.0 / (hd as f32).sqrt();
    per_layer += time("sdpa, additive mask", reps, att_flops, || {
        fast::scaled_dot_product_attention(&q, &kv, &kv, scale, &mask, None).unwrap()
    });
    time("sdpa, causal", reps, att_flops, || {
        fast::scaled_dot_product_attention(
            &q,
            &kv,
            &kv,
            scale,
            fast::ScaledDotProductAttentionMask::Causal,
            None,
        )
        .unwrap()
    });
    let rep = c.n_heads / c.n_kv_heads;
    let qg = q.reshape(&[b, c.n_kv_heads, rep * l, hd])?;
    qg.eval()?;
    let kt = kv.transpose_axes(&[0, 1, 3, 2])?;
    time(
        "  q@k^T grouped (B,kv,rep*L,L)",
        reps,
        att_flops / 2.0,
        || qg.matmul(&kt).unwrap(),
    );
    let s5 = qg.matmul(&kt)?.reshape(&[b, c.n_kv_heads, rep, l, l])?;
    s5.eval()?;
    let m5 = mask.reshape(&[1, 1, 1, l, l])?;
    time("  + mask", reps, 0.0, || s5.add(&m5).unwrap());
    time("  softmax precise", reps, 0.0, || {
        mlx_rs::ops::softmax_axis(&s5, -1, true).unwrap()
    });
    time("  softmax", reps, 0.0, || {
        mlx_rs::ops::softmax_axis(&s5, -1, false).unwrap()
    });
    let p4 = s5.reshape(&[b, c.n_kv_heads, rep * l, l])?;
    time("  p@v", reps, att_flops / 2.0, || p4.matmul(&kv).unwrap());
    time("  manual grouped attention total", reps, att_flops, || {
        let s = qg
            .multiply(Array::from_f32(scale))
            .unwrap()
            .matmul(&kt)
            .unwrap();
        let s = s
            .reshape(&[b, c.n_kv_heads, rep, l, l])
            .unwrap()
            .add(&m5)
            .unwrap();
        let p = mlx_rs::ops::softmax_axis(&s, -1, true).unwrap();
        p.reshape(&[b, c.n_kv_heads, rep * l, l])
            .unwrap()
            .matmul(&kv)
            .unwrap()
    });
    time("pow2 softmax", reps, 0.0, || {
        let e = Array::from_f32(2.0)
            .power(
                s5.subtract(s5.max_axis(-1, true).unwrap())
                    .unwrap()
                    .multiply(Array::from_f32(std::f32::consts::LOG2_E))
                    .unwrap(),
            )
            .unwrap();
        e.divide(e.sum_axis(-1, true).unwrap()).unwrap()
    });
    time("pow2 silu(g)*u", reps, 0.0, || {
        let e = Array::from_f32(2.0)
            .power(
                xh.multiply(Array::from_f32(-std::f32::consts::LOG2_E))
                    .unwrap(),
            )
            .unwrap();
        xh.divide(e.add(Array::from_f32(1.0)).unwrap())
            .unwrap()
            .multiply(&xh)
            .unwrap()
    });
    time("rust causal softmax", reps, 0.0, || {
        cyberfilter::verify::mlx::cpu_kernels::causal_softmax(&p4, l as usize).unwrap()
    });
    time("rust silu(g)*u", reps, 0.0, || {
        cyberfilter::verify::mlx::cpu_kernels::silu_mul(&xh, &xh).unwrap()
    });
    time("silu uncompiled x*sigmoid(x)*u", reps, 0.0, || {
        xh.multiply(mlx_rs::ops::sigmoid(&xh).unwrap())
            .unwrap()
            .multiply(&xh)
            .unwrap()
    });
    per_layer += time("transpose+reshape o", reps, 0.0, || {
        q.transpose_axes(&[0, 2, 1, 3])
            .unwrap()
            .reshape(&[b, l, c.n_heads * hd])
            .unwrap()
    });
    println!(
        "sum of ops per layer {:.1} ms; x {} layers = {:.0} ms",
        per_layer * 1e3,
        c.n_layers,
        per_layer * 1e3 * c.n_layers as f64
    );
    let tokens = Array::from_slice(&vec![100i32; (b * l) as usize], &[b, l]);
    let last = vec![l - 1; b as usize];
    time("whole forward (logits_at)", reps, 0.0, || {
        m.logits_at(&tokens, &last, None).unwrap()
    });
    for n in [1024, 2048] {
        let a = mlx_rs::random::normal::<f32>(&[n, n], None, None, None)?;
        a.eval()?;
        time(
            &format!("sgemm {n}"),
            reps,
            2.0 * (n as f64).powi(3),
            || a.matmul(&a).unwrap(),
        );
    }
    Ok(())
}
