//! From token ids to P(yes): length buckets, left-padded batches, one prefill each.

use mlx_rs::error::Exception;
use mlx_rs::Array;

use super::model::{log_softmax_last, Model, Pooling, SharedPrefix};
use super::prompt::AnswerTokens;

/// The answer of the model for one prompt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Answer {
    /// log P(yes-set) and log P(no-set) over the whole vocabulary at the last position.
    pub logp_yes: f32,
    pub logp_no: f32,
    /// P(yes) renormalised over the two answers: `exp(lp_yes) / (exp(lp_yes) + exp(lp_no))`.
    pub p_yes: f32,
}

/// How prompts are grouped into forward batches.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchLimits {
    /// Rows per forward batch.
    pub max_rows: usize,
    /// Padded positions (rows x longest) per forward batch; a lone longer row still runs.
    pub max_tokens: usize,
    /// A new batch starts when padding would exceed this share of its positions.
    pub max_pad_fraction: f64,
}

/// Groups prompt indices into forward batches: sorted by length, and a new batch starts when
/// it would exceed `limits`.
pub fn buckets(lengths: &[usize], limits: BatchLimits) -> Vec<Vec<usize>> {
    let BatchLimits {
        max_rows: max_batch,
        max_tokens,
        max_pad_fraction,
    } = limits;
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by_key(|&i| (lengths[i], i));
    let mut out: Vec<Vec<usize>> = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    let mut sum = 0usize;
    for i in order {
        let len = lengths[i];
        let n = current.len() + 1;
        let padded = len * n; // sorted ascending: the newcomer is the longest
        let waste = (padded - (sum + len)) as f64;
        let over =
            n > max_batch.max(1) || padded > max_tokens || waste > max_pad_fraction * padded as f64;
        if !current.is_empty() && over {
            out.push(std::mem::take(&mut current));
            sum = 0;
        }
        current.push(i);
        sum += len;
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Positions each prompt costs a forward batch after a cached head of `head` tokens that every
/// prompt starts with (a prompt no longer than the head is computed whole).
pub fn lengths_after_head(prompts: &[Vec<u32>], head: usize) -> Vec<usize> {
    prompts
        .iter()
        .map(|p| {
            if p.len() > head {
                p.len() - head
            } else {
                p.len()
            }
        })
        .collect()
}

/// Length of the token head every row of the batch shares (the prompt's instructions), which
/// is computed once per batch. At least one token of each row stays out of it (its last
/// position is the one read), and a lone row has no shared head.
pub fn shared_prefix_len(batch: &[&[u32]]) -> usize {
    let Some((first, rest)) = batch.split_first() else {
        return 0;
    };
    if rest.is_empty() {
        return 0;
    }
    let shortest = batch.iter().map(|s| s.len()).min().unwrap_or(0);
    let common = rest.iter().fold(first.len(), |n, s| {
        n.min(
            first
                .iter()
                .zip(s.iter())
                .take_while(|(a, b)| a == b)
                .count(),
        )
    });
    common.min(shortest.saturating_sub(1))
}

/// Tokens of a right-padded batch (`pad_id` after each row; causal attention never shows it to
/// a real token) and the index of each row's last token.
pub fn right_pad(batch: &[&[u32]], pad_id: u32) -> (Array, Vec<i32>) {
    let len = batch.iter().map(|s| s.len()).max().unwrap_or(0).max(1);
    let mut ids = Vec::with_capacity(batch.len() * len);
    let mut last = Vec::with_capacity(batch.len());
    for seq in batch {
        ids.extend(seq.iter().map(|&t| t as i32));
        ids.extend(std::iter::repeat_n(pad_id as i32, len - seq.len()));
        last.push(seq.len().max(1) as i32 - 1);
    }
    (
        Array::from_slice(&ids, &[batch.len() as i32, len as i32]),
        last,
    )
}

/// The prompt's instruction head (its tokens before the record, the same in every prompt):
/// keys and values computed once per model and prompt, which every batch then continues, so
/// no record pays for the instructions again.
#[derive(Debug)]
pub struct PromptHead {
    tokens: Vec<u32>,
    kv: SharedPrefix,
}

impl PromptHead {
    pub fn build(model: &Model, tokens: &[u32]) -> Result<Self, Exception> {
        let kv = model.prefix(tokens)?;
        kv.eval()?;
        Ok(Self {
            tokens: tokens.to_vec(),
            kv,
        })
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Every row starts with the head and has at least one token after it.
    pub fn fits(&self, batch: &[&[u32]]) -> bool {
        !self.tokens.is_empty()
            && batch
                .iter()
                .all(|s| s.len() > self.tokens.len() && s.starts_with(&self.tokens))
    }
}

/// What to pool besides the answer: layers, and each row's record span in whole-prompt
/// positions.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolRequest {
    pub layers: Vec<usize>,
    pub spans: Vec<(usize, usize)>,
    pub logits: bool,
}

/// Last-position logits `(B, vocab)` of one batch: after the cached prompt head when every
/// row starts with it, else the head the batch shares once, then the rows. With `pool`, also
/// the pooled hidden states (spans shifted by what the cached or shared head took off).
fn batch_forward(
    model: &Model,
    batch: &[&[u32]],
    pad_id: u32,
    head: Option<&PromptHead>,
    pool: Option<&PoolRequest>,
) -> Result<(Option<Array>, Vec<Array>), Exception> {
    let pooling = |cut: usize| {
        pool.map(|p| Pooling {
            layers: p.layers.clone(),
            spans: p
                .spans
                .iter()
                .map(|&(a, b)| (a.saturating_sub(cut), b.saturating_sub(cut)))
                .collect(),
            logits: p.logits,
        })
    };
    if let Some(head) = head.filter(|h| h.fits(batch)) {
        let rest: Vec<&[u32]> = batch.iter().map(|s| &s[head.len()..]).collect();
        let (tokens, last) = right_pad(&rest, pad_id);
        return model.forward_pooled(&tokens, &last, Some(&head.kv), pooling(head.len()).as_ref());
    }
    let shared = shared_prefix_len(batch);
    let prefix = if shared > 0 {
        Some(model.prefix(&batch[0][..shared])?)
    } else {
        None
    };
    let rest: Vec<&[u32]> = batch.iter().map(|s| &s[shared..]).collect();
    let (tokens, last) = right_pad(&rest, pad_id);
    model.forward_pooled(&tokens, &last, prefix.as_ref(), pooling(shared).as_ref())
}

fn batch_logits(
    model: &Model,
    batch: &[&[u32]],
    pad_id: u32,
    head: Option<&PromptHead>,
) -> Result<Array, Exception> {
    batch_forward(model, batch, pad_id, head, None)?
        .0
        .ok_or_else(|| Exception::custom("forward pass returned no logits"))
}

/// One prefill over a batch; the answers come back in the batch's order.
pub fn score_batch(
    model: &Model,
    answers: &AnswerTokens,
    batch: &[&[u32]],
    pad_id: u32,
) -> Result<Vec<Answer>, Exception> {
    score_batch_after(model, answers, batch, pad_id, None)
}

/// [`score_batch`] continuing a cached [`PromptHead`] (used when every row starts with it).
pub fn score_batch_after(
    model: &Model,
    answers: &AnswerTokens,
    batch: &[&[u32]],
    pad_id: u32,
    head: Option<&PromptHead>,
) -> Result<Vec<Answer>, Exception> {
    let logits = batch_logits(model, batch, pad_id, head)?;
    answers_from_logits(answers, &logits)
}

/// Answers (when `pool.logits`) and, per row, the pooled vectors of every requested layer
/// concatenated in the order asked (`layers.len() * dim` floats).
pub type PooledRows = (Option<Vec<Answer>>, Vec<Vec<f32>>);

/// [`score_batch_after`] that also pools the hidden states `pool` asks for, in the same pass.
pub fn score_batch_pooled(
    model: &Model,
    answers: &AnswerTokens,
    batch: &[&[u32]],
    pad_id: u32,
    head: Option<&PromptHead>,
    pool: &PoolRequest,
) -> Result<PooledRows, Exception> {
    let (logits, pooled) = batch_forward(model, batch, pad_id, head, Some(pool))?;
    let answers = logits
        .map(|l| answers_from_logits(answers, &l))
        .transpose()?;
    let dim = model.config.dim as usize;
    let mut rows = vec![Vec::with_capacity(dim * pooled.len()); batch.len()];
    for p in &pooled {
        p.eval()?;
        let values = p
            .try_as_slice::<f32>()
            .map_err(|e| Exception::custom(format!("reading pooled states: {e}")))?;
        for (row, chunk) in rows.iter_mut().zip(values.chunks(dim)) {
            row.extend_from_slice(chunk);
        }
    }
    Ok((answers, rows))
}

fn answers_from_logits(answers: &AnswerTokens, logits: &Array) -> Result<Vec<Answer>, Exception> {
    let logp = log_softmax_last(logits)?;
    let cols: Vec<i32> = answers
        .yes
        .iter()
        .chain(answers.no.iter())
        .map(|&t| t as i32)
        .collect();
    let picked = logp
        .take_axis(Array::from_slice(&cols, &[cols.len() as i32]), 1)?
        .contiguous()?;
    picked.eval()?;
    let values = picked
        .try_as_slice::<f32>()
        .map_err(|e| Exception::custom(format!("reading answer log-probs: {e}")))?;
    let ny = answers.yes.len();
    Ok(values
        .chunks(cols.len())
        .map(|row| {
            let logp_yes = log_sum_exp(&row[..ny]);
            let logp_no = log_sum_exp(&row[ny..]);
            let p_yes = 1.0 / (1.0 + ((logp_no - logp_yes) as f64).exp());
            Answer {
                logp_yes,
                logp_no,
                p_yes: p_yes as f32,
            }
        })
        .collect())
}

/// Raw last-position logits of `columns` for each prompt of a batch.
pub fn logit_columns(
    model: &Model,
    batch: &[&[u32]],
    pad_id: u32,
    columns: &[u32],
) -> Result<Vec<Vec<f32>>, Exception> {
    let logits = batch_logits(model, batch, pad_id, None)?;
    let cols: Vec<i32> = columns.iter().map(|&t| t as i32).collect();
    let picked = logits
        .take_axis(Array::from_slice(&cols, &[cols.len() as i32]), 1)?
        .contiguous()?;
    picked.eval()?;
    let values = picked
        .try_as_slice::<f32>()
        .map_err(|e| Exception::custom(format!("reading logits: {e}")))?;
    Ok(values
        .chunks(cols.len().max(1))
        .map(<[f32]>::to_vec)
        .collect())
}

fn log_sum_exp(xs: &[f32]) -> f32 {
    let m = xs.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if m == f32::NEG_INFINITY {
        return m;
    }
    m + xs.iter().map(|x| ((x - m) as f64).exp()).sum::<f64>().ln() as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_index_once_and_respect_the_batch_cap() {
        let lengths = [10, 200, 12, 11, 198, 50, 10, 10, 10, 10];
        let b = buckets(&lengths, limits(4, usize::MAX, 0.25));
        let mut seen: Vec<usize> = b.iter().flatten().copied().collect();
        seen.sort();
        assert_eq!(seen, (0..lengths.len()).collect::<Vec<_>>());
        assert!(b.iter().all(|g| g.len() <= 4));
        // The two long texts share a batch, away from the short ones.
        assert!(b.iter().any(|g| g.contains(&1) && g.contains(&4)));
        assert!(b.iter().all(|g| !(g.contains(&1) && g.contains(&0))));
    }

    #[test]
    fn padding_stays_under_the_limit_unless_alone() {
        let lengths = [5, 7, 9, 30, 31, 90, 100, 100];
        for g in buckets(&lengths, limits(32, usize::MAX, 0.2)) {
            let max = g.iter().map(|&i| lengths[i]).max().unwrap();
            let sum: usize = g.iter().map(|&i| lengths[i]).sum();
            assert!((max * g.len() - sum) as f64 <= 0.2 * (max * g.len()) as f64);
        }
    }

    fn limits(max_rows: usize, max_tokens: usize, max_pad_fraction: f64) -> BatchLimits {
        BatchLimits {
            max_rows,
            max_tokens,
            max_pad_fraction,
        }
    }

    #[test]
    fn the_token_budget_splits_long_rows_and_packs_short_ones() {
        let mut lengths = vec![100usize; 8];
        lengths.extend([300, 300, 300, 900]);
        let b = buckets(&lengths, limits(16, 600, 0.25));
        let mut seen: Vec<usize> = b.iter().flatten().copied().collect();
        seen.sort();
        assert_eq!(seen, (0..lengths.len()).collect::<Vec<_>>());
        for g in &b {
            let longest = g.iter().map(|&i| lengths[i]).max().unwrap();
            // Within budget, or a lone row that is longer than it.
            assert!(longest * g.len() <= 600 || g.len() == 1, "{g:?}");
        }
        // Six short rows fill the budget exactly; the 900-token row runs alone.
        assert!(b
            .iter()
            .any(|g| g.len() == 6 && g.iter().all(|&i| lengths[i] == 100)));
        assert!(b.contains(&vec![11]));
        assert_eq!(
            b.iter()
                .filter(|g| g.contains(&8) || g.contains(&9) || g.contains(&10))
                .map(|g| g.len())
                .max(),
            Some(2)
        );
    }

    #[test]
    fn shared_prefix_leaves_every_row_a_token() {
        let (a, b, c) = ([1u32, 2, 3, 4], [1u32, 2, 3, 9, 9], [1u32, 2, 3]);
        assert_eq!(shared_prefix_len(&[&a, &b]), 3);
        // `c` is all prefix: one token of it stays in the rows.
        assert_eq!(shared_prefix_len(&[&a, &b, &c]), 2);
        assert_eq!(shared_prefix_len(&[&a]), 0);
        assert_eq!(shared_prefix_len(&[&a, &[7u32, 2]]), 0);
        assert_eq!(shared_prefix_len(&[]), 0);
    }

    #[test]
    fn right_pad_puts_padding_after_and_finds_the_last_tokens() {
        let (tokens, last) = right_pad(&[&[5, 6, 7], &[8]], 0);
        assert_eq!(tokens.shape(), &[2, 3]);
        assert_eq!(tokens.as_slice::<i32>(), &[5, 6, 7, 8, 0, 0]);
        assert_eq!(last, vec![2, 0]);
    }

    #[test]
    fn log_sum_exp_matches_the_direct_formula() {
        let xs = [-1.0f32, -2.0, -3.5];
        let direct = xs.iter().map(|x| (*x as f64).exp()).sum::<f64>().ln() as f32;
        assert!((log_sum_exp(&xs) - direct).abs() < 1e-6);
    }
}
