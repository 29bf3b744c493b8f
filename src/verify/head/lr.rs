//! L2-regularised, weighted logistic regression fitted by L-BFGS, ROC AUC, and Platt scaling:
//! the numerics of the verdict head, kept free of any model or store type.

/// Rows of a design matrix, row-major, `n x d`.
pub struct Design<'a> {
    pub x: &'a [f32],
    pub d: usize,
}

impl Design<'_> {
    pub fn n(&self) -> usize {
        self.x.len().checked_div(self.d).unwrap_or(0)
    }
    fn row(&self, i: usize) -> &[f32] {
        &self.x[i * self.d..(i + 1) * self.d]
    }
}

/// `w . x + b` for one row.
pub fn linear(w: &[f64], b: f64, x: &[f32]) -> f64 {
    b + w.iter().zip(x).map(|(w, x)| w * *x as f64).sum::<f64>()
}

pub fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// `log(1 + e^z)` without overflow.
fn softplus(z: f64) -> f64 {
    if z > 30.0 {
        z
    } else if z < -30.0 {
        z.exp()
    } else {
        z.exp().ln_1p()
    }
}

/// Minimises `sum_i s_i * logloss(y_i, w.x_i + b) / sum_i s_i + l2/2 * |w - prior|^2` (the
/// bias is not penalised). Returns `(w, b)`.
pub fn fit(
    data: &Design,
    y: &[bool],
    sample_weight: &[f64],
    l2: f64,
    prior: Option<&[f64]>,
    max_iter: usize,
) -> (Vec<f64>, f64) {
    let (n, d) = (data.n(), data.d);
    let total: f64 = sample_weight.iter().sum::<f64>().max(f64::MIN_POSITIVE);
    let zero = vec![0.0; d];
    let prior = prior.unwrap_or(&zero);
    let objective = |theta: &[f64], grad: &mut [f64]| -> f64 {
        let (w, b) = (&theta[..d], theta[d]);
        grad.iter_mut().for_each(|g| *g = 0.0);
        let mut loss = 0.0;
        for i in 0..n {
            let s = sample_weight[i] / total;
            if s == 0.0 {
                continue;
            }
            let x = data.row(i);
            let z = linear(w, b, x);
            // logloss = softplus(z) - y z; d/dz = sigmoid(z) - y
            loss += s * (softplus(z) - if y[i] { z } else { 0.0 });
            let r = s * (sigmoid(z) - if y[i] { 1.0 } else { 0.0 });
            for (g, xv) in grad[..d].iter_mut().zip(x) {
                *g += r * *xv as f64;
            }
            grad[d] += r;
        }
        for j in 0..d {
            let diff = w[j] - prior[j];
            loss += 0.5 * l2 * diff * diff;
            grad[j] += l2 * diff;
        }
        loss
    };
    let mut theta = prior.to_vec();
    theta.push(0.0);
    let theta = lbfgs(objective, theta, max_iter);
    let b = theta[d];
    (theta[..d].to_vec(), b)
}

/// Limited-memory BFGS (history 8) with a backtracking Armijo line search.
pub fn lbfgs(f: impl Fn(&[f64], &mut [f64]) -> f64, mut x: Vec<f64>, max_iter: usize) -> Vec<f64> {
    const M: usize = 8;
    let n = x.len();
    let mut g = vec![0.0; n];
    let mut fx = f(&x, &mut g);
    let mut s_hist: Vec<Vec<f64>> = Vec::new();
    let mut y_hist: Vec<Vec<f64>> = Vec::new();
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(a, b)| a * b).sum::<f64>();
    let mut g_new = vec![0.0; n];
    for _ in 0..max_iter {
        let gnorm = dot(&g, &g).sqrt();
        if gnorm < 1e-7 {
            break;
        }
        // Two-loop recursion: direction = -H g.
        let mut q = g.clone();
        let mut alpha = vec![0.0; s_hist.len()];
        for k in (0..s_hist.len()).rev() {
            let rho = 1.0 / dot(&y_hist[k], &s_hist[k]);
            alpha[k] = rho * dot(&s_hist[k], &q);
            for (qi, yi) in q.iter_mut().zip(&y_hist[k]) {
                *qi -= alpha[k] * yi;
            }
        }
        if let (Some(s), Some(y)) = (s_hist.last(), y_hist.last()) {
            let gamma = dot(s, y) / dot(y, y);
            q.iter_mut().for_each(|v| *v *= gamma);
        } else {
            let scale = 1.0 / gnorm.max(1.0);
            q.iter_mut().for_each(|v| *v *= scale);
        }
        for k in 0..s_hist.len() {
            let rho = 1.0 / dot(&y_hist[k], &s_hist[k]);
            let beta = rho * dot(&y_hist[k], &q);
            for (qi, si) in q.iter_mut().zip(&s_hist[k]) {
                *qi += (alpha[k] - beta) * si;
            }
        }
        let dir: Vec<f64> = q.iter().map(|v| -v).collect();
        let mut slope = dot(&g, &dir);
        let dir = if slope >= 0.0 {
            // Not a descent direction: fall back to steepest descent, history cleared.
            s_hist.clear();
            y_hist.clear();
            slope = -dot(&g, &g);
            g.iter().map(|v| -v).collect()
        } else {
            dir
        };
        let mut step = 1.0;
        let mut accepted = false;
        let mut x_new = x.clone();
        for _ in 0..40 {
            for i in 0..n {
                x_new[i] = x[i] + step * dir[i];
            }
            let f_new = f(&x_new, &mut g_new);
            if f_new <= fx + 1e-4 * step * slope {
                let s: Vec<f64> = (0..n).map(|i| x_new[i] - x[i]).collect();
                let yv: Vec<f64> = (0..n).map(|i| g_new[i] - g[i]).collect();
                let improvement = fx - f_new;
                if dot(&s, &yv) > 1e-12 {
                    s_hist.push(s);
                    y_hist.push(yv);
                    if s_hist.len() > M {
                        s_hist.remove(0);
                        y_hist.remove(0);
                    }
                }
                x.copy_from_slice(&x_new);
                g.copy_from_slice(&g_new);
                fx = f_new;
                accepted = true;
                if improvement.abs() < 1e-10 * fx.abs().max(1.0) {
                    return x;
                }
                break;
            }
            step *= 0.5;
        }
        if !accepted {
            break;
        }
    }
    x
}

/// ROC AUC (ties count half); `None` without both classes.
pub fn roc_auc(scores: &[f64], positive: &[bool]) -> Option<f64> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let (mut rank_sum, mut i) = (0.0f64, 0usize);
    let npos = positive.iter().filter(|p| **p).count();
    let nneg = positive.len() - npos;
    if npos == 0 || nneg == 0 {
        return None;
    }
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && scores[idx[j + 1]] == scores[idx[i]] {
            j += 1;
        }
        let avg_rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            if positive[k] {
                rank_sum += avg_rank;
            }
        }
        i = j + 1;
    }
    let u = rank_sum - (npos * (npos + 1)) as f64 / 2.0;
    Some(u / (npos as f64 * nneg as f64))
}

/// Platt scaling: `(a, c)` with `P = sigmoid(a z + c)` fitted on held-out logits `z`
/// (weighted, lightly regularised towards the identity `a = 1, c = 0`).
pub fn platt(z: &[f64], y: &[bool], sample_weight: &[f64]) -> (f64, f64) {
    let x: Vec<f32> = z.iter().map(|v| *v as f32).collect();
    let design = Design { x: &x, d: 1 };
    let (w, c) = fit(&design, y, sample_weight, 1e-4, Some(&[1.0]), 200);
    (w[0], c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_by_hand() {
        // Positives 0.9 and 0.4; negatives 0.5, 0.1, 0.4: pairs won 3 + 1 + a tie = 4.5 of 6.
        let scores = [0.9, 0.5, 0.4, 0.1, 0.4];
        let pos = [true, false, true, false, false];
        assert_eq!(roc_auc(&scores, &pos), Some(4.5 / 6.0));
        assert_eq!(roc_auc(&[0.1, 0.9], &[true, true]), None);
    }

    #[test]
    fn fit_recovers_a_known_direction_and_the_l2_pulls_towards_the_prior() {
        // y = 1 when 2*x0 - x1 > 0.3, deterministic pseudo-random points.
        let mut x = Vec::new();
        let mut y = Vec::new();
        let mut s = 12345u64;
        let mut r = || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 33) as f64 / (1u64 << 31) as f64) * 2.0 - 1.0
        };
        for _ in 0..400 {
            let (a, b, c) = (r(), r(), r());
            x.extend([a as f32, b as f32, c as f32]);
            y.push(2.0 * a - b > 0.3);
        }
        let d = Design { x: &x, d: 3 };
        let wts = vec![1.0; 400];
        let (w, b) = fit(&d, &y, &wts, 1e-4, None, 500);
        // Direction (2, -1, 0) up to scale, threshold 0.3.
        assert!(w[0] > 0.0 && w[1] < 0.0);
        assert!((w[0] / -w[1] - 2.0).abs() < 0.3, "{w:?}");
        assert!(w[2].abs() < 0.2 * w[0], "{w:?}");
        assert!((-b / w[0] - 0.15).abs() < 0.05, "{b} {w:?}");
        let scores: Vec<f64> = (0..400).map(|i| linear(&w, b, d.row(i))).collect();
        assert!(roc_auc(&scores, &y).unwrap() > 0.99);
        // A huge penalty towards a prior returns the prior.
        let prior = [0.5, 0.5, 0.5];
        let (w, _) = fit(&d, &y, &wts, 1e6, Some(&prior), 200);
        for (a, b) in w.iter().zip(prior) {
            assert!((a - b).abs() < 1e-3);
        }
    }

    #[test]
    fn platt_on_calibrated_logits_is_near_identity() {
        // z drawn so P(y|z) = sigmoid(z) exactly in expectation: weights instead of sampling.
        let (mut z, mut y, mut w) = (Vec::new(), Vec::new(), Vec::new());
        for k in -40..=40 {
            let v = k as f64 / 10.0;
            z.extend([v, v]);
            y.extend([true, false]);
            w.extend([sigmoid(v), 1.0 - sigmoid(v)]);
        }
        let (a, c) = platt(&z, &y, &w);
        assert!((a - 1.0).abs() < 0.02 && c.abs() < 0.02, "{a} {c}");
    }
}
