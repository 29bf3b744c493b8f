//! Verification of verify-tier records by a local LLM.
//!
//! CONTRACT (used by the engine): `Verifier`, `VerifierFactory`, `VerifyError`. A verifier is
//! created *on the thread that will own it* (MLX is not thread-safe), from a factory sent there.

pub mod backend;
pub mod batcher;
pub mod head;
pub mod http;
pub mod mlx;
pub mod prompt;
pub mod test_hash;

/// A backend that answers "is this text security-relevant?" with P(yes) for a batch of texts.
pub trait Verifier {
    /// Model identity stored with every answer and part of the cache key.
    fn model_id(&self) -> String;
    /// Version of the prompt; bump when the prompt changes so cached answers are not reused.
    fn prompt_version(&self) -> String;
    /// The batch size this backend works best at.
    fn preferred_batch(&self) -> usize;
    /// P(yes) for each text, in order. An `Err` means the whole batch failed and its records
    /// stay pending. A NaN (or any non-finite value) in the answers means *that text* failed:
    /// its records stay pending and the error is counted, the other answers are kept.
    fn verify_batch(&mut self, texts: &[&str]) -> Result<Vec<f32>, VerifyError>;
    /// Asks for pooled hidden states of `layer` with every answer (the verdict head); returns
    /// false when this backend cannot give any.
    fn set_feature_layer(&mut self, layer: Option<usize>) -> bool {
        let _ = layer;
        false
    }
    /// The hidden-state features this backend can pool in the same pass as P(yes) (for the
    /// verdict head), or `None` when it has none (then the head is off).
    fn feature_spec(&self) -> Option<head::FeatureSpec> {
        None
    }
    /// [`Self::verify_batch`] that also returns each text's pooled features
    /// ([`Self::feature_spec`]); a backend without features returns empty vectors.
    fn verify_batch_features(
        &mut self,
        texts: &[&str],
    ) -> Result<Vec<(f32, Vec<f32>)>, VerifyError> {
        Ok(self
            .verify_batch(texts)?
            .into_iter()
            .map(|p| (p, Vec::new()))
            .collect())
    }
    /// Why [`Self::set_feature_layer`] gave no features, when the backend can say (one line
    /// for the curator: the head is off and this is why).
    fn features_unavailable(&self) -> Option<String> {
        None
    }
    /// Why the texts answered NaN by the last `verify_batch` failed, when the backend knows
    /// (for the error the engine reports).
    fn failure_reason(&mut self) -> Option<String> {
        None
    }
}

/// Builds a verifier on the thread that will own it.
pub type VerifierFactory = Box<dyn FnOnce() -> Result<Box<dyn Verifier>, VerifyError> + Send>;

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("model {path}: {reason}")]
    Model { path: String, reason: String },
    #[error("verifier unavailable: {0}")]
    Unavailable(String),
    #[error("verifier failed: {0}")]
    Failed(String),
}
