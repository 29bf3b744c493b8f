//! Tiny random-weight models for the MLX verifier tests, written by the tests themselves as a
//! GGUF file (mlx-rs's GGUF writer) or a Hugging Face folder (safetensors + config.json +
//! tokenizer.json), and a naive f64 forward pass, independent of MLX, to compare against.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use mlx_rs::io::GgufFile;
use mlx_rs::Array;

#[derive(Clone, Copy)]
pub struct Tiny {
    pub arch: &'static str,
    pub layers: usize,
    pub dim: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub hidden: usize,
    pub tied: bool,
    pub qkv_bias: bool,
    pub qk_norm: bool,
}

pub const LLAMA: Tiny = Tiny {
    arch: "llama",
    layers: 2,
    dim: 32,
    heads: 4,
    kv_heads: 2,
    head_dim: 8,
    hidden: 48,
    tied: true,
    qkv_bias: false,
    qk_norm: false,
};

pub const QWEN2: Tiny = Tiny {
    arch: "qwen2",
    tied: false,
    qkv_bias: true,
    ..LLAMA
};

pub const QWEN3: Tiny = Tiny {
    arch: "qwen3",
    qk_norm: true,
    head_dim: 16,
    ..LLAMA
};

/// Deterministic pseudo-random weights (xorshift), scaled like an initialised network.
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    pub fn matrix(&mut self, rows: usize, cols: usize, scale: f32) -> Vec<f32> {
        (0..rows * cols).map(|_| self.next() * scale).collect()
    }
}

/// GPT-2's byte-to-unicode table: the byte-level BPE alphabet.
pub fn byte_chars() -> Vec<String> {
    let mut printable: Vec<u32> = (b'!' as u32..=b'~' as u32).collect();
    printable.extend(0xA1..=0xAC);
    printable.extend(0xAE..=0xFF);
    let mut n = 0;
    (0u32..256)
        .map(|b| {
            let c = if printable.contains(&b) {
                b
            } else {
                n += 1;
                255 + n
            };
            char::from_u32(c).unwrap().to_string()
        })
        .collect()
}

/// Vocabulary: specials, the 256 byte symbols, then a few merged words.
pub fn vocab() -> (Vec<String>, Vec<String>, Vec<i32>) {
    let mut tokens: Vec<String> = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
        .map(String::from)
        .to_vec();
    let mut types = vec![3, 3, 3];
    for c in byte_chars() {
        tokens.push(c);
        types.push(1);
    }
    let merges: Vec<String> = ["Y e", "Ye s", "N o", "y e", "ye s", "n o"]
        .map(String::from)
        .to_vec();
    for m in &merges {
        tokens.push(m.replace(' ', ""));
        types.push(1);
    }
    (tokens, merges, types)
}

/// Tensors by their GGUF name: row-major data and shape.
pub type Weights = HashMap<String, (Vec<f32>, Vec<usize>)>;

pub struct Written {
    pub path: PathBuf,
    /// Under GGUF names whatever the format written, in the layout written.
    pub weights: Weights,
}

/// The random weights of a tiny model, in a fixed order (so a seed always gives the same).
pub fn tiny_weights(
    t: Tiny,
    seed_name: &str,
    vocab_rows: usize,
) -> Vec<(String, Vec<f32>, Vec<usize>)> {
    let mut rng = Rng(0x9E3779B97F4A7C15 ^ seed_name.len() as u64);
    let mut out = Vec::new();
    let mut put = |key: String, data: Vec<f32>, shape: Vec<usize>| out.push((key, data, shape));
    let (d, q, kv) = (t.dim, t.heads * t.head_dim, t.kv_heads * t.head_dim);
    let ones = |rng: &mut Rng, n: usize| -> Vec<f32> {
        rng.matrix(1, n, 0.2).iter().map(|x| 1.0 + x).collect()
    };
    put(
        "token_embd.weight".into(),
        rng.matrix(vocab_rows, d, 1.0),
        vec![vocab_rows, d],
    );
    if !t.tied {
        put(
            "output.weight".into(),
            rng.matrix(vocab_rows, d, 0.3),
            vec![vocab_rows, d],
        );
    }
    put("output_norm.weight".into(), ones(&mut rng, d), vec![d]);
    for i in 0..t.layers {
        let p = |s: &str| format!("blk.{i}.{s}");
        let s = 1.0 / (d as f32).sqrt();
        put(p("attn_norm.weight"), ones(&mut rng, d), vec![d]);
        put(p("ffn_norm.weight"), ones(&mut rng, d), vec![d]);
        put(p("attn_q.weight"), rng.matrix(q, d, s), vec![q, d]);
        put(p("attn_k.weight"), rng.matrix(kv, d, s), vec![kv, d]);
        put(p("attn_v.weight"), rng.matrix(kv, d, s), vec![kv, d]);
        put(p("attn_output.weight"), rng.matrix(d, q, s), vec![d, q]);
        put(
            p("ffn_gate.weight"),
            rng.matrix(t.hidden, d, s),
            vec![t.hidden, d],
        );
        put(
            p("ffn_up.weight"),
            rng.matrix(t.hidden, d, s),
            vec![t.hidden, d],
        );
        let sd = 1.0 / (t.hidden as f32).sqrt();
        put(
            p("ffn_down.weight"),
            rng.matrix(d, t.hidden, sd),
            vec![d, t.hidden],
        );
        if t.qkv_bias {
            put(p("attn_q.bias"), rng.matrix(1, q, 0.1), vec![q]);
            put(p("attn_k.bias"), rng.matrix(1, kv, 0.1), vec![kv]);
            put(p("attn_v.bias"), rng.matrix(1, kv, 0.1), vec![kv]);
        }
        if t.qk_norm {
            put(
                p("attn_q_norm.weight"),
                ones(&mut rng, t.head_dim),
                vec![t.head_dim],
            );
            put(
                p("attn_k_norm.weight"),
                ones(&mut rng, t.head_dim),
                vec![t.head_dim],
            );
        }
    }
    out
}

pub fn array(data: &[f32], shape: &[usize]) -> Array {
    let dims: Vec<i32> = shape.iter().map(|&d| d as i32).collect();
    Array::from_slice(data, &dims)
}

/// A tiny model as a GGUF file `dir/name.gguf`, tokenizer in its metadata.
pub fn write_gguf(dir: &Path, name: &str, t: Tiny, vocab_rows: Option<usize>) -> Written {
    let (tokens, merges, types) = vocab();
    let vocab = vocab_rows.unwrap_or(tokens.len());
    let mut f = GgufFile::new().unwrap();
    let a = t.arch;
    f.insert_metadata("general.architecture", a).unwrap();
    f.insert_metadata("general.name", "tiny").unwrap();
    let int = |v: usize| Array::from_slice(&[v as u32], &[1]);
    for (key, v) in [
        ("block_count", t.layers),
        ("embedding_length", t.dim),
        ("feed_forward_length", t.hidden),
        ("attention.head_count", t.heads),
        ("attention.head_count_kv", t.kv_heads),
        ("attention.key_length", t.head_dim),
    ] {
        f.insert_metadata(format!("{a}.{key}"), int(v)).unwrap();
    }
    f.insert_metadata(
        format!("{a}.attention.layer_norm_rms_epsilon"),
        Array::from_slice(&[1e-5f32], &[1]),
    )
    .unwrap();
    f.insert_metadata(
        format!("{a}.rope.freq_base"),
        Array::from_slice(&[10000.0f32], &[1]),
    )
    .unwrap();
    f.insert_metadata("tokenizer.ggml.model", "gpt2").unwrap();
    f.insert_metadata("tokenizer.ggml.pre", "smollm").unwrap();
    f.insert_metadata("tokenizer.ggml.tokens", tokens.clone())
        .unwrap();
    f.insert_metadata("tokenizer.ggml.merges", merges).unwrap();
    f.insert_metadata(
        "tokenizer.ggml.token_type",
        Array::from_slice(&types, &[types.len() as i32]),
    )
    .unwrap();
    f.insert_metadata("tokenizer.ggml.eos_token_id", int(2))
        .unwrap();
    let mut weights = Weights::new();
    for (key, data, shape) in tiny_weights(t, name, vocab) {
        f.insert_array(&key, &array(&data, &shape)).unwrap();
        weights.insert(key, (data, shape));
    }
    let path = dir.join(format!("{name}.gguf"));
    f.save(&path).unwrap();
    Written { path, weights }
}

/// GGUF tensor name to the Hugging Face one.
pub fn hf_name(gguf: &str) -> String {
    let (base, kind) = gguf.rsplit_once('.').unwrap();
    let mapped = match base {
        "token_embd" => "model.embed_tokens".to_string(),
        "output_norm" => "model.norm".to_string(),
        "output" => "lm_head".to_string(),
        _ => {
            let rest = base.strip_prefix("blk.").unwrap();
            let (i, part) = rest.split_once('.').unwrap();
            let sub = match part {
                "attn_norm" => "input_layernorm",
                "ffn_norm" => "post_attention_layernorm",
                "attn_q" => "self_attn.q_proj",
                "attn_k" => "self_attn.k_proj",
                "attn_v" => "self_attn.v_proj",
                "attn_output" => "self_attn.o_proj",
                "attn_q_norm" => "self_attn.q_norm",
                "attn_k_norm" => "self_attn.k_norm",
                "ffn_gate" => "mlp.gate_proj",
                "ffn_up" => "mlp.up_proj",
                "ffn_down" => "mlp.down_proj",
                other => panic!("no HF name for {other}"),
            };
            format!("model.layers.{i}.{sub}")
        }
    };
    format!("{mapped}.{kind}")
}

/// The `config.json` of a tiny model.
pub fn hf_config(t: Tiny, vocab_rows: usize) -> serde_json::Value {
    let class = match t.arch {
        "llama" => "LlamaForCausalLM",
        "qwen2" => "Qwen2ForCausalLM",
        "qwen3" => "Qwen3ForCausalLM",
        other => other,
    };
    serde_json::json!({
        "architectures": [class],
        "model_type": t.arch,
        "hidden_size": t.dim,
        "intermediate_size": t.hidden,
        "num_hidden_layers": t.layers,
        "num_attention_heads": t.heads,
        "num_key_value_heads": t.kv_heads,
        "head_dim": t.head_dim,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "vocab_size": vocab_rows,
        "tie_word_embeddings": t.tied,
        "torch_dtype": "float32",
    })
}

/// Writes `tokenizer.json` (the tiny vocabulary as a byte-level BPE) and a
/// `tokenizer_config.json` with the ChatML eos token.
pub fn write_hf_tokenizer(dir: &Path) {
    let (tokens, merges, types) = vocab();
    let tok =
        cyberfilter::verify::mlx::tokenizer::build_bpe(&tokens, &merges, &types, "smollm").unwrap();
    tok.save(dir.join("tokenizer.json"), false).unwrap();
    std::fs::write(
        dir.join("tokenizer_config.json"),
        serde_json::json!({"eos_token": {"content": "<|im_end|>"}, "bos_token": null}).to_string(),
    )
    .unwrap();
}

/// A tiny model as a Hugging Face folder `dir/name/`, f32 weights in `model.safetensors`.
pub fn write_hf(dir: &Path, name: &str, t: Tiny, vocab_rows: Option<usize>) -> Written {
    let vocab = vocab_rows.unwrap_or(vocab().0.len());
    let folder = dir.join(name);
    std::fs::create_dir_all(&folder).unwrap();
    let mut weights = Weights::new();
    let mut arrays = HashMap::new();
    for (key, data, shape) in tiny_weights(t, name, vocab) {
        arrays.insert(hf_name(&key), array(&data, &shape));
        weights.insert(key, (data, shape));
    }
    Array::save_safetensors(&arrays, None, folder.join("model.safetensors")).unwrap();
    std::fs::write(folder.join("config.json"), hf_config(t, vocab).to_string()).unwrap();
    write_hf_tokenizer(&folder);
    Written {
        path: folder,
        weights,
    }
}

// ---------------------------------------------------------------- naive reference (f64)

fn rms_norm(x: &[f64], w: &[f32]) -> Vec<f64> {
    let ms = x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64;
    let r = 1.0 / (ms + 1e-5).sqrt();
    x.iter().zip(w).map(|(v, w)| v * r * *w as f64).collect()
}

fn matvec(w: &(Vec<f32>, Vec<usize>), x: &[f64]) -> Vec<f64> {
    let (rows, cols) = (w.1[0], w.1[1]);
    (0..rows)
        .map(|r| (0..cols).map(|c| w.0[r * cols + c] as f64 * x[c]).sum())
        .collect()
}

/// RoPE on one head vector at position `pos`: traditional (adjacent pairs) or split halves;
/// `inv_freq[i]` is pair i's rotation speed (default `10000^(-2i/d)`).
fn rope(v: &mut [f64], pos: usize, traditional: bool, inv_freq: Option<&[f64]>) {
    let d = v.len();
    for i in 0..d / 2 {
        let speed = inv_freq.map_or_else(|| 10000f64.powf(-2.0 * i as f64 / d as f64), |f| f[i]);
        let theta = pos as f64 * speed;
        let (a, b) = if traditional {
            (2 * i, 2 * i + 1)
        } else {
            (i, i + d / 2)
        };
        let (x0, x1) = (v[a], v[b]);
        v[a] = x0 * theta.cos() - x1 * theta.sin();
        v[b] = x0 * theta.sin() + x1 * theta.cos();
    }
}

/// The last-position logits of `ids`, with GGUF-named `weights` in the layout whose RoPE is
/// `traditional` (GGUF Llama) or split-half (everything else).
pub fn reference_last_logits(t: Tiny, w: &Weights, ids: &[u32], traditional: bool) -> Vec<f64> {
    reference_last_logits_with_rope(t, w, ids, traditional, None)
}

/// [`reference_last_logits`] with each rotated pair's speed given (a RoPE scaling).
pub fn reference_last_logits_with_rope(
    t: Tiny,
    w: &Weights,
    ids: &[u32],
    traditional: bool,
    inv_freq: Option<&[f64]>,
) -> Vec<f64> {
    let g = |k: &str| &w[k];
    let (d, hd) = (t.dim, t.head_dim);
    let embed = g("token_embd.weight");
    let mut h: Vec<Vec<f64>> = ids
        .iter()
        .map(|&id| {
            embed.0[id as usize * d..(id as usize + 1) * d]
                .iter()
                .map(|&x| x as f64)
                .collect()
        })
        .collect();
    let add_bias = |v: &mut Vec<f64>, key: String| {
        if let Some(b) = w.get(&key) {
            v.iter_mut().zip(&b.0).for_each(|(x, b)| *x += *b as f64);
        }
    };
    for l in 0..t.layers {
        let p = |s: &str| format!("blk.{l}.{s}");
        let mut qs = Vec::new();
        let mut ks = Vec::new();
        let mut vs = Vec::new();
        for (pos, x) in h.iter().enumerate() {
            let xn = rms_norm(x, &g(&p("attn_norm.weight")).0);
            let (mut q, mut k, mut v) = (
                matvec(g(&p("attn_q.weight")), &xn),
                matvec(g(&p("attn_k.weight")), &xn),
                matvec(g(&p("attn_v.weight")), &xn),
            );
            add_bias(&mut q, p("attn_q.bias"));
            add_bias(&mut k, p("attn_k.bias"));
            add_bias(&mut v, p("attn_v.bias"));
            for (vec, norm) in [
                (&mut q, "attn_q_norm.weight"),
                (&mut k, "attn_k_norm.weight"),
            ] {
                for head in vec.chunks_mut(hd) {
                    if let Some(nw) = w.get(&p(norm)) {
                        let n = rms_norm(head, &nw.0);
                        head.copy_from_slice(&n);
                    }
                    rope(head, pos, traditional, inv_freq);
                }
            }
            qs.push(q);
            ks.push(k);
            vs.push(v);
        }
        let group = t.heads / t.kv_heads;
        for i in 0..h.len() {
            let mut o = vec![0.0; t.heads * hd];
            for head in 0..t.heads {
                let kvh = head / group;
                let q = &qs[i][head * hd..(head + 1) * hd];
                let scores: Vec<f64> = (0..=i)
                    .map(|j| {
                        q.iter()
                            .zip(&ks[j][kvh * hd..(kvh + 1) * hd])
                            .map(|(a, b)| a * b)
                            .sum::<f64>()
                            / (hd as f64).sqrt()
                    })
                    .collect();
                let m = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = scores.iter().map(|s| (s - m).exp()).collect();
                let z: f64 = e.iter().sum();
                for (j, ej) in e.iter().enumerate() {
                    for c in 0..hd {
                        o[head * hd + c] += ej / z * vs[j][kvh * hd + c];
                    }
                }
            }
            let out = matvec(g(&p("attn_output.weight")), &o);
            h[i].iter_mut().zip(out).for_each(|(a, b)| *a += b);
        }
        for x in h.iter_mut() {
            let xn = rms_norm(x, &g(&p("ffn_norm.weight")).0);
            let gate = matvec(g(&p("ffn_gate.weight")), &xn);
            let up = matvec(g(&p("ffn_up.weight")), &xn);
            let act: Vec<f64> = gate
                .iter()
                .zip(&up)
                .map(|(g, u)| g / (1.0 + (-g).exp()) * u)
                .collect();
            let down = matvec(g(&p("ffn_down.weight")), &act);
            x.iter_mut().zip(down).for_each(|(a, b)| *a += b);
        }
    }
    let last = rms_norm(h.last().unwrap(), &g("output_norm.weight").0);
    let head = if t.tied {
        g("token_embd.weight")
    } else {
        g("output.weight")
    };
    matvec(head, &last)
}

/// Largest absolute difference.
pub fn worst_diff(a: &[f64], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(a, b)| (a - *b as f64).abs())
        .fold(0.0, f64::max)
}
