//! `--verifier test-hash`: a backend for testing the pipeline itself, beside the real ones.

use super::{Verifier, VerifyError};
use std::time::Duration;

/// A deterministic stand-in backend for tests and benchmarks of the pipeline itself
/// (`--verifier test-hash`, hidden from help): P(yes) is derived from the text's hash, so
/// two runs agree exactly, and each batch sleeps `delay` to act like a slow model.
/// It is not a classifier and says nothing about relevance.
pub struct HashVerifier {
    pub delay: Duration,
    pub batch: usize,
}

impl Verifier for HashVerifier {
    fn model_id(&self) -> String {
        "test-hash".into()
    }
    fn prompt_version(&self) -> String {
        "1".into()
    }
    fn preferred_batch(&self) -> usize {
        self.batch
    }
    fn verify_batch(&mut self, texts: &[&str]) -> Result<Vec<f32>, VerifyError> {
        std::thread::sleep(self.delay);
        Ok(texts.iter().map(|t| hash_p_yes(t)).collect())
    }
}

/// The stand-in's answer for a text.
pub fn hash_p_yes(text: &str) -> f32 {
    let h = blake3::hash(text.as_bytes());
    h.as_bytes()[0] as f32 / 255.0
}
