//! Hugging Face folders in the MLX verifier: tiny random-weight folders written here (dense
//! f32/bf16, MLX-quantized) against the naive f64 reference; `cyberfilter model convert` of
//! tiny GGUFs and of SmolLM2, whose folder must give the GGUF path's logits and token ids (and
//! Python mlx_lm's, when `.venv` exists); and bad folders, each a clear error.
//!
//! MLX is not thread-safe: every test holds one lock while it touches MLX.

mod common;
mod mlx_support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard, OnceLock};

use common::{code_out_err, cyberfilter, smollm2_or_skip, stderr, venv_python_or_skip};
use cyberfilter::verify::mlx::{default_model_path, MlxOptions, MlxVerifier};
use cyberfilter::verify::{Verifier, VerifyError};
use mlx_rs::{Array, Dtype};
use mlx_support::*;

fn mlx_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn load(path: &Path, keep_quantized: bool) -> MlxVerifier {
    MlxVerifier::load_with(
        path,
        MlxOptions {
            keep_quantized,
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn all_logits(v: &mut MlxVerifier, ids: &[u32]) -> Vec<f32> {
    let cols: Vec<u32> = (0..v.config().vocab_size as u32).collect();
    v.logits(&[ids], &cols).unwrap().remove(0)
}

fn max_abs(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

const TEXTS: [&str; 3] = [
    "hi",
    "Yes or no? A longer record: buffer overflow 1234.",
    "café <|im_start|> no",
];

/// Token ids of the text alone: short, so the naive reference stays fast in debug builds.
fn text_ids(v: &MlxVerifier, text: &str) -> Vec<u32> {
    v.tokenizer()
        .encode(text, false)
        .unwrap()
        .get_ids()
        .to_vec()
}

/// A folder's logits against the naive reference (split-half RoPE, as Hugging Face uses).
fn check_folder(t: Tiny, w: &Weights, v: &mut MlxVerifier, tolerance: f64, what: &str) {
    for text in TEXTS {
        let ids = text_ids(v, text);
        let want = reference_last_logits(t, w, &ids, false);
        let got = all_logits(v, &ids);
        let worst = worst_diff(&want, &got);
        assert!(worst < tolerance, "{what}: {text:?} differs by {worst}");
    }
}

// ---------------------------------------------------------------- dense folders

#[test]
fn tiny_hf_folders_match_the_naive_reference() {
    let _g = mlx_lock();
    let dir = tempfile::tempdir().unwrap();
    for (t, name) in [(LLAMA, "llama"), (QWEN2, "qwen2"), (QWEN3, "qwen3")] {
        let w = write_hf(dir.path(), name, t, None);
        let mut v = load(&w.path, false);
        assert_eq!(v.config().arch, name);
        assert!(!v.config().rope_traditional);
        assert_eq!(v.model_id(), format!("mlx:{name}"));
        check_folder(t, &w.weights, &mut v, 1e-3, name);
        let p = v.verify_batch(&TEXTS).unwrap();
        assert!(p.iter().all(|p| (0.0..=1.0).contains(p)), "{p:?}");
    }
}

/// Llama 3.1's scaled rotation speeds, written the way transformers computes them
/// (`_compute_llama3_parameters`, inverse frequencies), independent of the loader's form.
fn llama3_inv_freq(d: usize, factor: f64, low: f64, high: f64, context: f64) -> Vec<f64> {
    (0..d / 2)
        .map(|i| {
            let inv = 1.0 / 10000f64.powf(2.0 * i as f64 / d as f64);
            let wavelen = 2.0 * std::f64::consts::PI / inv;
            let scaled = if wavelen > context / low {
                inv / factor
            } else {
                inv
            };
            let medium = wavelen >= context / high && wavelen <= context / low;
            if medium {
                let s = (context / wavelen - low) / (high - low);
                (1.0 - s) * scaled / factor + s * scaled
            } else {
                scaled
            }
        })
        .collect()
}

#[test]
fn llama3_rope_scaling_matches_the_naive_reference() {
    let guard = mlx_lock();
    let dir = tempfile::tempdir().unwrap();
    let w = write_hf(dir.path(), "llama31", LLAMA, None);
    // head_dim 8: wavelengths 6.3, 63, 628, 6283. With context 200 and factors 1/4 the first is
    // kept, the second blended and the last two slowed 8x, so every branch is exercised.
    edit_config(&w.path, |c| {
        c["rope_scaling"] = serde_json::json!({"rope_type": "llama3", "factor": 8.0,
            "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 200})
    });
    let mut v = load(&w.path, false);
    let inv = llama3_inv_freq(LLAMA.head_dim, 8.0, 1.0, 4.0, 200.0);
    for text in TEXTS {
        let ids = text_ids(&v, text);
        let want = reference_last_logits_with_rope(LLAMA, &w.weights, &ids, false, Some(&inv));
        let plain = reference_last_logits(LLAMA, &w.weights, &ids, false);
        let got = all_logits(&mut v, &ids);
        let worst = worst_diff(&want, &got);
        let plain_f32: Vec<f32> = plain.iter().map(|&x| x as f32).collect();
        let scaling_effect = worst_diff(&want, &plain_f32);
        assert!(
            worst < 1e-3,
            "{text:?}: differs from the scaled reference by {worst}"
        );
        assert!(
            scaling_effect > 10.0 * worst,
            "{text:?}: the scaling moves logits by {scaling_effect} only (ours {worst})"
        );
    }
    drop((guard, v)); // load_err takes the lock itself
                      // A llama3 section without its parameters is refused, naming what is missing.
    edit_config(&w.path, |c| {
        c["rope_scaling"] = serde_json::json!({"rope_type": "llama3", "factor": 8.0})
    });
    let e = load_err(&w.path);
    assert!(e.contains("low_freq_factor"), "{e}");
}

/// Rounds every tensor through `dtype` (what a bf16 checkpoint holds), rewriting the folder.
fn round_folder(folder: &Path, w: &mut Weights, dtype: Dtype) {
    let mut arrays = HashMap::new();
    for (key, (data, shape)) in w.iter_mut() {
        let a = array(data, shape).as_dtype(dtype).unwrap();
        let back = a.as_dtype(Dtype::Float32).unwrap();
        *data = back.as_slice::<f32>().to_vec();
        arrays.insert(hf_name(key), a);
    }
    Array::save_safetensors(&arrays, None, folder.join("model.safetensors")).unwrap();
}

#[test]
fn bf16_and_f16_folders_load_as_f32() {
    let _g = mlx_lock();
    let dir = tempfile::tempdir().unwrap();
    for (dtype, name) in [(Dtype::Bfloat16, "bf16"), (Dtype::Float16, "f16")] {
        let mut w = write_hf(dir.path(), name, QWEN2, None);
        round_folder(&w.path, &mut w.weights, dtype);
        let mut v = load(&w.path, false);
        check_folder(QWEN2, &w.weights, &mut v, 1e-3, name);
    }
}

#[test]
fn sharded_folders_load_through_the_index() {
    let _g = mlx_lock();
    let dir = tempfile::tempdir().unwrap();
    let w = write_hf(dir.path(), "sharded", LLAMA, None);
    let all = Array::load_safetensors(w.path.join("model.safetensors")).unwrap();
    std::fs::remove_file(w.path.join("model.safetensors")).unwrap();
    let (mut a, mut b) = (HashMap::new(), HashMap::new());
    let mut map = serde_json::Map::new();
    for (i, (k, v)) in all.into_iter().enumerate() {
        let file = if i % 2 == 0 {
            a.insert(k.clone(), v);
            "model-00001-of-00002.safetensors"
        } else {
            b.insert(k.clone(), v);
            "model-00002-of-00002.safetensors"
        };
        map.insert(k, file.into());
    }
    Array::save_safetensors(&a, None, w.path.join("model-00001-of-00002.safetensors")).unwrap();
    Array::save_safetensors(&b, None, w.path.join("model-00002-of-00002.safetensors")).unwrap();
    std::fs::write(
        w.path.join("model.safetensors.index.json"),
        serde_json::json!({"metadata": {}, "weight_map": map}).to_string(),
    )
    .unwrap();
    let mut v = load(&w.path, false);
    check_folder(LLAMA, &w.weights, &mut v, 1e-3, "sharded");
}

#[test]
fn chat_template_comes_from_tokenizer_config_or_its_own_file() {
    let _g = mlx_lock();
    let dir = tempfile::tempdir().unwrap();
    let w = write_hf(dir.path(), "chat", LLAMA, None);
    let messages = [("user".to_string(), "hi".to_string())];
    let text_of = |v: &MlxVerifier| v.tokenizer().decode(&v.chat_ids(&messages).unwrap(), false);
    // No template anywhere: ChatML.
    let v = load(&w.path, false);
    assert_eq!(
        text_of(&v).unwrap(),
        "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    );
    // A list of named templates in tokenizer_config.json: "default" is used.
    std::fs::write(
        w.path.join("tokenizer_config.json"),
        serde_json::json!({
            "eos_token": "<|im_end|>",
            "bos_token": {"content": "<|endoftext|>"},
            "chat_template": [
                {"name": "tool_use", "template": "TOOLS"},
                {"name": "default", "template": "{{ bos_token }}{% for m in messages %}[{{ m.role }}]{{ m.content }}{{ eos_token }}{% endfor %}"},
            ],
        })
        .to_string(),
    )
    .unwrap();
    let v = load(&w.path, false);
    assert_eq!(text_of(&v).unwrap(), "<|endoftext|>[user]hi<|im_end|>");
    // chat_template.jinja wins over tokenizer_config.json, as in transformers.
    std::fs::write(
        w.path.join("chat_template.jinja"),
        "{% for m in messages %}<{{ m.content }}>{% endfor %}",
    )
    .unwrap();
    let v = load(&w.path, false);
    assert_eq!(text_of(&v).unwrap(), "<hi>");
}

// ---------------------------------------------------------------- MLX-quantized folders

/// A model whose every linear's input width is a multiple of 64, so groups of 32 and 64 fit.
const QUANT: Tiny = Tiny {
    arch: "qwen2",
    dim: 64,
    hidden: 128,
    heads: 4,
    kv_heads: 2,
    head_dim: 16,
    ..QWEN2
};

/// Quantizes every matrix of a dense folder the way mlx_lm does (embedding and head included;
/// `override_down` gives the MLP down projections their own bits, as mixed recipes do), with
/// scales and biases stored as `scale_dtype`. Returns the dequantized weights.
fn quantize_folder(
    t: Tiny,
    w: &Written,
    group: i32,
    bits: i32,
    override_down: Option<i32>,
    scale_dtype: Dtype,
) -> Weights {
    let dense = Array::load_safetensors(w.path.join("model.safetensors")).unwrap();
    mlx_rs::transforms::eval(dense.values()).unwrap();
    let mut out = HashMap::new();
    let mut per_module = serde_json::Map::new();
    let mut dequantized = w.weights.clone();
    for (gguf_key, (_, shape)) in &w.weights {
        let key = hf_name(gguf_key);
        let a = &dense[&key];
        if shape.len() != 2 {
            out.insert(key, a.clone());
            continue;
        }
        let prefix = key.strip_suffix(".weight").unwrap().to_string();
        let b = match override_down {
            Some(b) if prefix.ends_with("mlp.down_proj") => {
                per_module.insert(
                    prefix.clone(),
                    serde_json::json!({"group_size": group, "bits": b}),
                );
                b
            }
            _ => bits,
        };
        let (q, s, z) = mlx_rs::ops::quantize(a, group, b).unwrap();
        let (s, z) = (
            s.as_dtype(scale_dtype).unwrap(),
            z.as_dtype(scale_dtype).unwrap(),
        );
        let deq = mlx_rs::ops::dequantize(
            &q,
            s.as_dtype(Dtype::Float32).unwrap(),
            &z.as_dtype(Dtype::Float32).unwrap(),
            group,
            b,
        )
        .unwrap();
        dequantized.get_mut(gguf_key).unwrap().0 = deq.as_slice::<f32>().to_vec();
        out.insert(key.clone(), q);
        out.insert(format!("{prefix}.scales"), s);
        out.insert(format!("{prefix}.biases"), z);
    }
    Array::save_safetensors(&out, None, w.path.join("model.safetensors")).unwrap();
    let mut config = hf_config(t, w.weights["token_embd.weight"].1[0]);
    let mut q = serde_json::json!({"group_size": group, "bits": bits});
    for (k, v) in per_module {
        q[k] = v;
    }
    config["quantization"] = q.clone();
    config["quantization_config"] = q;
    std::fs::write(w.path.join("config.json"), config.to_string()).unwrap();
    dequantized
}

#[test]
fn mlx_quantized_folders_agree_with_their_dequantized_weights() {
    let _g = mlx_lock();
    let dir = tempfile::tempdir().unwrap();
    let tied = Tiny {
        tied: true,
        ..QUANT
    };
    // (model, group, bits, bits of the MLP down projections, dtype of scales and biases)
    let cases = [
        (QUANT, 32, 4, None, Dtype::Float32),
        (QUANT, 64, 4, Some(8), Dtype::Bfloat16),
        (tied, 64, 8, None, Dtype::Float16),
        (tied, 32, 3, None, Dtype::Float32),
        (QUANT, 64, 6, Some(2), Dtype::Float16),
        (tied, 64, 5, None, Dtype::Bfloat16),
    ];
    for (t, group, bits, down, scale_dtype) in cases {
        let name = format!("q{bits}g{group}");
        let w = write_hf(dir.path(), &name, t, None);
        let deq = quantize_folder(t, &w, group, bits, down, scale_dtype);
        let mut v = load(&w.path, false);
        check_folder(t, &deq, &mut v, 1e-3, &name);
        // Kept packed (the Metal default), quantized_matmul gives the same logits.
        let mut packed = load(&w.path, true);
        for text in TEXTS {
            let ids = v.prompt_tokens(text).unwrap();
            let diff = max_abs(&all_logits(&mut v, &ids), &all_logits(&mut packed, &ids));
            assert!(diff < 1e-3, "{name} packed vs dequantized: {diff}");
        }
        // The quantization is real: the weights differ from the dense ones.
        let hi = text_ids(&v, TEXTS[1]);
        let dense_logits = reference_last_logits(t, &w.weights, &hi, false);
        let q_logits = all_logits(&mut v, &hi);
        assert!(
            worst_diff(&dense_logits, &q_logits) > 1e-4,
            "{name}: quantization changed nothing"
        );
    }
}

// ---------------------------------------------------------------- model convert

fn convert(gguf: &Path, out: &Path, extra: &[&str]) {
    let mut args = vec![
        "model",
        "convert",
        gguf.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = cyberfilter(&args);
    assert_eq!(o.status.code(), Some(0), "convert failed: {}", stderr(&o));
    let report = common::json(&o);
    assert_eq!(report["out"], out.to_str().unwrap());
}

#[test]
fn converted_tiny_gguf_models_give_the_gguf_logits() {
    let _g = mlx_lock();
    let dir = tempfile::tempdir().unwrap();
    for (t, name) in [(LLAMA, "llama"), (QWEN2, "qwen2"), (QWEN3, "qwen3")] {
        let w = write_gguf(dir.path(), name, t, None);
        let out = dir.path().join(format!("{name}-hf"));
        convert(&w.path, &out, &[]);
        let mut g = load(&w.path, false);
        let mut h = load(&out, false);
        // Llama's Q/K rows were un-permuted and RoPE changed from adjacent pairs to halves.
        assert_eq!(g.config().rope_traditional, name == "llama");
        assert!(!h.config().rope_traditional);
        for text in TEXTS {
            let ids = g.prompt_tokens(text).unwrap();
            assert_eq!(ids, h.prompt_tokens(text).unwrap(), "{name}: prompt ids");
            let diff = max_abs(&all_logits(&mut g, &ids), &all_logits(&mut h, &ids));
            assert!(diff < 1e-5, "{name}: GGUF vs converted folder {diff}");
        }
        let config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap())
                .unwrap();
        assert_eq!(config["tie_word_embeddings"], t.tied, "{name}");
        // Half precision converts too, close to f32 (and not identical: it was cast).
        let half_dtype = if name == "qwen3" { "bf16" } else { "f16" };
        let half = dir.path().join(format!("{name}-{half_dtype}"));
        convert(&w.path, &half, &["--dtype", half_dtype]);
        let config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(half.join("config.json")).unwrap())
                .unwrap();
        let torch = if half_dtype == "bf16" {
            "bfloat16"
        } else {
            "float16"
        };
        assert_eq!(config["torch_dtype"], torch);
        let mut f = load(&half, false);
        let ids = g.prompt_tokens(TEXTS[1]).unwrap();
        let diff = max_abs(&all_logits(&mut g, &ids), &all_logits(&mut f, &ids));
        assert!(
            diff < 0.1 && diff > 0.0,
            "{name}: {half_dtype} folder differs by {diff}"
        );
    }
}

#[test]
fn convert_refuses_a_non_empty_folder_and_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("keep.txt"), "x").unwrap();
    let w = {
        let _g = mlx_lock();
        write_gguf(dir.path(), "tiny", LLAMA, None)
    };
    let gguf = w.path.to_str().unwrap();
    let outs = out.to_str().unwrap();
    let (code, _, err) = code_out_err(&cyberfilter(&["model", "convert", gguf, "--out", outs]));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("not empty") && err.contains("--force"),
        "{err}"
    );
    // --force writes into it, replacing a stale shard that would otherwise load with it.
    std::fs::write(out.join("model-00002-of-00002.safetensors"), "stale").unwrap();
    let (code, _, err) = code_out_err(&cyberfilter(&[
        "model", "convert", gguf, "--out", outs, "--force",
    ]));
    assert_eq!(code, 0, "{err}");
    assert!(!out.join("model-00002-of-00002.safetensors").exists());
    assert!(out.join("keep.txt").exists());
    {
        let _g = mlx_lock();
        load(&out, false);
    }
    let fresh = dir.path().join("fresh");
    let fresh = fresh.to_str().unwrap();
    let (code, _, err) = code_out_err(&cyberfilter(&[
        "model",
        "convert",
        "/nonexistent/m.gguf",
        "--out",
        fresh,
    ]));
    assert_eq!(code, 66, "{err}");
    assert!(
        err.contains("/nonexistent/m.gguf") && err.contains("does not exist"),
        "{err}"
    );
    let junk = dir.path().join("junk.gguf");
    std::fs::write(&junk, "not a model").unwrap();
    let (code, _, err) = code_out_err(&cyberfilter(&[
        "model",
        "convert",
        junk.to_str().unwrap(),
        "--out",
        fresh,
    ]));
    assert_eq!(code, 65, "{err}");
    assert!(
        err.contains("junk.gguf") && err.contains("not a GGUF"),
        "{err}"
    );
    let (code, _, err) = code_out_err(&cyberfilter(&[
        "model", "convert", gguf, "--out", fresh, "--dtype", "f8",
    ]));
    assert_eq!(code, 2, "{err}");
}

// ---------------------------------------------------------------- SmolLM2: GGUF vs folder

struct Smol {
    _dir: tempfile::TempDir,
    folder: PathBuf,
}

/// SmolLM2 converted once by the real binary, for the tests below; `None` (the tests skip)
/// when the model is not installed.
fn smol_folder() -> Option<&'static Smol> {
    static SMOL: OnceLock<Option<Smol>> = OnceLock::new();
    SMOL.get_or_init(|| {
        let gguf = smollm2_or_skip()?;
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("SmolLM2-135M-Instruct");
        convert(&gguf, &folder, &[]);
        Some(Smol { _dir: dir, folder })
    })
    .as_ref()
}

fn chat_cases() -> Vec<Vec<(String, String)>> {
    let m = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(r, c)| (r.to_string(), c.to_string()))
            .collect()
    };
    vec![
        m(&[("user", "What is the capital of France?")]),
        m(&[
            ("system", "You answer only Yes or No."),
            ("user", "Is this about cybersecurity?\n<record>\nCVE-2021-44228: Apache Log4j2 JNDI features do not protect against attacker controlled LDAP endpoints.\n</record>\nAnswer Yes or No."),
        ]),
        m(&[("user", "Numbers: 12345, dates 2024-06-01, émigré café naïve 🙂 `fn main() {}`")]),
    ]
}

const TOKENIZER_TEXTS: [&str; 8] = [
    "Hello, world!",
    "CVE-2024-3094: xz 5.6.0 backdoor (liblzma) — sshd RCE, CVSS 10.0",
    "fn main() {\n    let x: Vec<u8> = vec![0x41; 1024];\n\tprintln!(\"{x:?}\");\n}",
    "Ünïcödé: 日本語のテキスト, Ελληνικά, русский, emoji 🔐🐛, ZWJ 👩‍💻",
    "digits 0123456789 3.14159 1e-5 -42 +7 1,000,000",
    "  leading and trailing spaces   \n\n\r\n tabs\t\tend ",
    "<|im_start|>user\nspecial tokens inline<|im_end|><|endoftext|>",
    "",
];

#[test]
fn smollm2_folder_gives_the_gguf_logits_and_token_ids() {
    let Some(smol) = smol_folder() else { return };
    let _g = mlx_lock();
    let mut g = load(&default_model_path(), false);
    let mut h = load(&smol.folder, false);
    assert_eq!(h.model_id(), "mlx:SmolLM2-135M-Instruct");
    let (gc, hc) = (g.config().clone(), h.config().clone());
    assert_eq!(
        (
            gc.n_layers,
            gc.dim,
            gc.n_heads,
            gc.n_kv_heads,
            gc.vocab_size,
            gc.rms_eps,
            gc.rope_theta
        ),
        (
            hc.n_layers,
            hc.dim,
            hc.n_heads,
            hc.n_kv_heads,
            hc.vocab_size,
            hc.rms_eps,
            hc.rope_theta
        )
    );
    // The tokenizer.json written by convert, read back by `tokenizers`, tokenizes like the
    // tokenizer rebuilt from the GGUF metadata.
    for text in TOKENIZER_TEXTS {
        let a = g.tokenizer().encode(text, false).unwrap();
        let b = h.tokenizer().encode(text, false).unwrap();
        assert_eq!(a.get_ids(), b.get_ids(), "{text:?}");
    }
    assert_eq!(g.answer_tokens().yes, h.answer_tokens().yes);
    assert_eq!(g.answer_tokens().no, h.answer_tokens().no);
    let mut worst = 0.0f32;
    for messages in chat_cases() {
        let ids = g.chat_ids(&messages).unwrap();
        assert_eq!(ids, h.chat_ids(&messages).unwrap(), "chat template ids");
        let diff = max_abs(&all_logits(&mut g, &ids), &all_logits(&mut h, &ids));
        worst = worst.max(diff);
        assert!(
            diff < 1e-4,
            "{messages:?}: GGUF vs folder logits differ by {diff}"
        );
    }
    let texts = [
        "CVE-2024-3094: malicious code in the xz tarballs allows unauthorized access through sshd.",
        "Preheat the oven to 180 degrees and bake the cake for 35 minutes.",
        "short",
    ];
    let (pg, ph) = (
        g.verify_batch(&texts).unwrap(),
        h.verify_batch(&texts).unwrap(),
    );
    let p_worst = pg
        .iter()
        .zip(&ph)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    eprintln!("SmolLM2 GGUF vs converted folder: worst |logit diff| {worst:.2e}, worst |P(yes) diff| {p_worst:.2e}");
    assert!(p_worst < 1e-5, "P(yes) {pg:?} vs {ph:?}");
}

/// The converted folder in Python mlx_lm (transformers' tokenizer and jinja2 template): the
/// same token ids and logits as our load of it. Then mlx_lm quantizes it (`mlx_lm convert -q`,
/// the layout of mlx-community models) and our load of that folder, dequantized or kept
/// packed, gives mlx_lm's logits too.
#[test]
fn smollm2_folder_and_its_mlx_lm_quantization_match_python_mlx_lm() {
    let Some(python) = venv_python_or_skip() else {
        return;
    };
    let Some(smol) = smol_folder() else { return };
    let quantized = smol._dir.path().join("smollm2-mlx-4bit");
    // Per-layer bits, the entries' group_size left to MLX's default (null).
    let mixed = smol._dir.path().join("smollm2-mlx-mixed_3_6");
    let cases: Vec<serde_json::Value> = chat_cases()
        .iter()
        .map(|m| {
            serde_json::Value::Array(
                m.iter()
                    .map(|(r, c)| serde_json::json!({"role": r, "content": c}))
                    .collect(),
            )
        })
        .collect();
    let script = r#"
import json, subprocess, sys
import mlx.core as mx, mlx_lm
folder, quantized, mixed, cases = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
for path, args in [(quantized, ["--q-bits", "4", "--q-group-size", "64"]),
                   (mixed, ["--quant-predicate", "mixed_3_6"])]:
    subprocess.run([sys.executable, "-m", "mlx_lm", "convert", "--hf-path", folder, "-q",
                    "--mlx-path", path] + args,
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
out = {}
# The wheel's MLX runs on reference BLAS (seconds per forward): one prompt per quantized folder.
for name, path, n in [("dense", folder, 3), ("q4", quantized, 1), ("mixed_3_6", mixed, 1)]:
    model, tok = mlx_lm.load(path)
    out[name] = []
    for messages in cases[:n]:
        ids = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        if isinstance(ids, dict):
            ids = ids["input_ids"]
        logits = model(mx.array([ids]))[0, -1].astype(mx.float32)
        out[name].append({"ids": [int(i) for i in ids], "logits": logits.tolist()})
print(json.dumps(out))
"#;
    let run = Command::new(&python)
        .args([
            "-c",
            script,
            smol.folder.to_str().unwrap(),
            quantized.to_str().unwrap(),
            mixed.to_str().unwrap(),
            &serde_json::Value::Array(cases).to_string(),
        ])
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "mlx_lm: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let results: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    let _g = mlx_lock();
    for (name, folder, keep, tolerance) in [
        ("dense", &smol.folder, false, 5e-4),
        ("q4", &quantized, false, 1e-3),
        ("q4", &quantized, true, 1e-3),
        ("mixed_3_6", &mixed, false, 1e-3),
    ] {
        let mut h = load(folder, keep);
        let mut worst = 0.0f32;
        for (messages, r) in chat_cases().iter().zip(results[name].as_array().unwrap()) {
            let ids: Vec<u32> = r["ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i.as_u64().unwrap() as u32)
                .collect();
            assert_eq!(
                h.chat_ids(messages).unwrap(),
                ids,
                "{name}: template + tokenizer ids vs transformers"
            );
            let py: Vec<f32> = r["logits"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect();
            let diff = max_abs(&py, &all_logits(&mut h, &ids));
            worst = worst.max(diff);
            assert!(
                diff < tolerance,
                "{name} (kept packed: {keep}): mlx_lm vs ours {diff}"
            );
        }
        eprintln!(
            "SmolLM2 {name} folder (kept packed: {keep}), Python mlx_lm vs ours: worst |logit diff| {worst:.2e}"
        );
    }
}

// ---------------------------------------------------------------- bad folders

fn load_err(path: &Path) -> String {
    let _g = mlx_lock();
    match MlxVerifier::load(path) {
        Ok(_) => panic!("{} loaded", path.display()),
        Err(e @ VerifyError::Model { .. }) => e.to_string(),
        Err(e) => panic!("wrong error kind: {e}"),
    }
}

fn tiny_folder(dir: &Path, name: &str) -> PathBuf {
    let _g = mlx_lock();
    write_hf(dir, name, QWEN2, None).path
}

fn edit_config(folder: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let p = folder.join("config.json");
    let mut c: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    edit(&mut c);
    std::fs::write(p, c.to_string()).unwrap();
}

fn edit_tensors(folder: &Path, edit: impl FnOnce(&mut HashMap<String, Array>)) {
    let _g = mlx_lock();
    let p = folder.join("model.safetensors");
    let mut t = Array::load_safetensors(&p).unwrap();
    // MLX reads lazily: the old file must be read before it is overwritten.
    mlx_rs::transforms::eval(t.values()).unwrap();
    edit(&mut t);
    Array::save_safetensors(&t, None, &p).unwrap();
}

#[test]
fn folder_without_config_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let f = tiny_folder(dir.path(), "noconfig");
    std::fs::remove_file(f.join("config.json")).unwrap();
    let e = load_err(&f);
    assert!(
        e.contains("noconfig/config.json") && e.contains("missing"),
        "{e}"
    );
    let e = load_err(dir.path());
    assert!(e.contains("config.json") && e.contains("missing"), "{e}");
    std::fs::write(dir.path().join("model.gguf"), "x").unwrap();
    let e = load_err(dir.path());
    assert!(
        e.contains("pass one of them") && e.contains("model.gguf"),
        "{e}"
    );
}

#[test]
fn unsupported_model_type_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let f = tiny_folder(dir.path(), "gemma");
    edit_config(&f, |c| c["model_type"] = "gemma2".into());
    let e = load_err(&f);
    assert!(
        e.contains("config.json") && e.contains("unsupported model_type \"gemma2\""),
        "{e}"
    );
    edit_config(&f, |c| {
        c.as_object_mut().unwrap().remove("model_type");
        c["architectures"] = serde_json::json!(["MistralForCausalLM"]);
    });
    let e = load_err(&f);
    assert!(e.contains("MistralForCausalLM"), "{e}");
    edit_config(&f, |c| {
        c["architectures"] = serde_json::json!(["Qwen2ForCausalLM"])
    });
    let _g = mlx_lock();
    assert_eq!(
        load(&f, false).config().arch,
        "qwen2",
        "architectures alone is enough"
    );
}

#[test]
fn missing_and_unexpected_tensors_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let f = tiny_folder(dir.path(), "missing");
    edit_tensors(&f, |t| {
        t.remove("model.layers.1.mlp.up_proj.weight");
    });
    let e = load_err(&f);
    assert!(
        e.contains("tensor model.layers.1.mlp.up_proj.weight is missing"),
        "{e}"
    );
    let f = tiny_folder(dir.path(), "nohead");
    edit_tensors(&f, |t| {
        t.remove("lm_head.weight");
    });
    let e = load_err(&f);
    assert!(e.contains("lm_head.weight is missing"), "{e}");
    let f = tiny_folder(dir.path(), "extra");
    edit_tensors(&f, |t| {
        t.insert(
            "model.layers.0.post_feedforward_layernorm.weight".into(),
            Array::ones::<f32>(&[32]).unwrap(),
        );
    });
    let e = load_err(&f);
    assert!(
        e.contains("post_feedforward_layernorm") && e.contains("does not know"),
        "{e}"
    );
    let f = tiny_folder(dir.path(), "scalar");
    edit_tensors(&f, |t| {
        t.insert("model.embed_tokens.weight".into(), Array::from_f32(1.0));
    });
    let e = load_err(&f);
    assert!(e.contains("embed_tokens.weight has shape []"), "{e}");
    let f = tiny_folder(dir.path(), "shape");
    edit_tensors(&f, |t| {
        t.insert(
            "model.layers.0.self_attn.k_proj.weight".into(),
            Array::zeros::<f32>(&[8, 32]).unwrap(),
        );
    });
    let e = load_err(&f);
    assert!(e.contains("k_proj.weight has shape"), "{e}");
}

#[test]
fn truncated_or_garbage_safetensors_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let f = tiny_folder(dir.path(), "trunc");
    let p = f.join("model.safetensors");
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() - 100]).unwrap();
    let e = load_err(&f);
    assert!(
        e.contains("model.safetensors") && e.contains("truncated"),
        "{e}"
    );
    std::fs::write(&p, b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}").unwrap();
    let e = load_err(&f);
    assert!(e.contains("not a safetensors file"), "{e}");
    std::fs::write(&p, "hello").unwrap();
    let e = load_err(&f);
    assert!(e.contains("not a safetensors file"), "{e}");
    std::fs::write(&p, [0xffu8; 64]).unwrap();
    let e = load_err(&f);
    assert!(e.contains("not a safetensors file"), "{e}");
    std::fs::remove_file(&p).unwrap();
    let e = load_err(&f);
    assert!(e.contains("no model.safetensors"), "{e}");
}

#[test]
fn tokenizer_that_does_not_match_the_embedding_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let rows = vocab().0.len() + 100;
    let f = {
        let _g = mlx_lock();
        write_hf(dir.path(), "fewer", QWEN2, Some(rows)).path
    };
    let e = load_err(&f);
    assert!(
        e.contains("tokenizer.json")
            && e.contains("tokenizer has")
            && e.contains(&format!("{rows} rows")),
        "{e}"
    );
    // A few padding rows past the tokenizer are normal (Qwen pads its embedding).
    let f = {
        let _g = mlx_lock();
        write_hf(dir.path(), "padded", QWEN2, Some(vocab().0.len() + 4)).path
    };
    let _g = mlx_lock();
    load(&f, false);
    drop(_g);
    std::fs::remove_file(f.join("tokenizer.json")).unwrap();
    let e = load_err(&f);
    assert!(e.contains("tokenizer.json is missing"), "{e}");
}

#[test]
fn bad_quantization_and_rope_settings_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let w = {
        let _g = mlx_lock();
        let w = write_hf(dir.path(), "q", QUANT, None);
        quantize_folder(QUANT, &w, 64, 4, None, Dtype::Float16);
        w
    };
    edit_config(&w.path, |c| {
        c["quantization"] = serde_json::json!({"group_size": 64, "bits": 7})
    });
    let e = load_err(&w.path);
    assert!(e.contains("unsupported quantization bits 7"), "{e}");
    // The config says 8 bits, the tensors are packed 4-bit.
    edit_config(&w.path, |c| {
        c["quantization"] = serde_json::json!({"group_size": 64, "bits": 8})
    });
    let e = load_err(&w.path);
    assert!(
        e.contains("unsupported quantisation layout") && e.contains("do not fit"),
        "{e}"
    );
    edit_config(&w.path, |c| {
        c["quantization"] = serde_json::json!({"group_size": 32, "bits": 4, "mode": "mxfp4"})
    });
    let e = load_err(&w.path);
    assert!(e.contains("mxfp4"), "{e}");
    edit_config(&w.path, |c| {
        let o = c.as_object_mut().unwrap();
        o.remove("quantization");
        o.remove("quantization_config");
    });
    let e = load_err(&w.path);
    assert!(e.contains("no \"quantization\" section"), "{e}");
    let f = tiny_folder(dir.path(), "rope");
    edit_config(&f, |c| {
        c["rope_scaling"] = serde_json::json!({"rope_type": "yarn", "factor": 32.0})
    });
    let e = load_err(&f);
    assert!(
        e.contains("rope_scaling") && e.contains("not supported"),
        "{e}"
    );
    edit_config(&f, |c| {
        c["rope_scaling"] = serde_json::Value::Null;
        c["hidden_size"] = "large".into();
    });
    let e = load_err(&f);
    assert!(e.contains("hidden_size is \"large\""), "{e}");
}
