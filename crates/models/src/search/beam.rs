//! `BeamSearch`: beam search batched over images and beams, with length penalty, min/max length,
//! n-gram repeat blocking and `<unk>` suppression.
//!
//! The decoder state holds `N·K` rows (image `i`, beam `j` at row `i·K + j`). Every step adds the
//! next-token log-probabilities to the running beam scores, picks the `K` best of the `K·V`
//! candidates of each image on the backend, and reorders the state with [`StepDecoder::select`].
//! A beam that emitted `<eos>` is recorded as a finished hypothesis and stays in the beam, only
//! able to extend with a zero-cost filler token, so that it keeps its slot while it ranks among
//! the `K` best. After `max_len` words each live beam takes one last step exactly as
//! [`GreedySearch`](super::GreedySearch) does: it ends with `<eos>` (and its log-probability) if
//! `<eos>` is the most likely token, otherwise it is cut as it is, without an `<eos>` score.

use burn::tensor::backend::Backend;
use burn::tensor::{Bool, IndexingUpdateOp, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::step::{Hypothesis, Search, StepDecoder};

/// Beam sizes up to this use `K` arg-max passes for the top-K; larger ones sort the candidates.
const ITERATIVE_TOPK_MAX: usize = 8;

/// How finished captions of different lengths are ranked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LengthPenalty {
    /// Raw sum of the log-probabilities.
    #[default]
    None,
    /// Sum divided by the number of scored tokens.
    Average,
    /// Sum divided by `((5 + len) / 6)^alpha` (Wu et al., 2016).
    Wu,
}

impl LengthPenalty {
    /// Ranking score of a caption whose `len` scored tokens (words, plus `<eos>` when emitted) sum to `log_prob`.
    pub fn score(self, log_prob: f64, len: usize, alpha: f64) -> f64 {
        let len = len.max(1) as f64;
        match self {
            Self::None => log_prob,
            Self::Average => log_prob / len,
            Self::Wu => log_prob / ((5.0 + len) / 6.0).powf(alpha),
        }
    }
}

/// Batched beam search over any [`StepDecoder`].
#[derive(Clone, Debug)]
pub struct BeamSearch {
    /// Number of beams kept per image (`K`, at least 1).
    pub beam_size: usize,
    /// Maximum number of words per caption (`<eos>` excluded).
    pub max_len: usize,
    /// Minimum number of words before `<eos>` is allowed.
    pub min_len: usize,
    /// How finished captions of different lengths are ranked.
    pub length_penalty: LengthPenalty,
    /// Exponent of the Wu et al. length penalty.
    pub alpha: f64,
    /// Forbids a token that would repeat an n-gram of this size already in the beam (0: off).
    pub no_repeat_ngram_size: usize,
    /// Id of `<sos>`.
    pub sos: u32,
    /// Id of `<eos>`.
    pub eos: u32,
    /// Id of a token never to emit (`<unk>` suppression); `None` allows every token.
    pub unk: Option<u32>,
}

impl BeamSearch {
    /// Plain beam search of `beam_size` beams: no penalty, no blocking, no suppression.
    pub fn new(beam_size: usize, max_len: usize, sos: u32, eos: u32) -> Self {
        Self {
            beam_size,
            max_len,
            min_len: 0,
            length_penalty: LengthPenalty::None,
            alpha: 0.7,
            no_repeat_ngram_size: 0,
            sos,
            eos,
            unk: None,
        }
    }

    /// The best caption of each of the `n` images of `state`.
    pub fn run_best<B: Backend, D: StepDecoder<B>>(
        &self,
        decoder: &D,
        state: D::State,
        n: usize,
        device: &B::Device,
    ) -> Vec<Hypothesis> {
        self.run(decoder, state, n, device)
            .into_iter()
            .map(|mut hyps| {
                if hyps.is_empty() {
                    Hypothesis {
                        tokens: Vec::new(),
                        log_prob: f64::NEG_INFINITY,
                        ended: false,
                    }
                } else {
                    hyps.swap_remove(0)
                }
            })
            .collect()
    }

    /// Length-penalised ranking score.
    fn rank(&self, log_prob: f64, len: usize) -> f64 {
        self.length_penalty.score(log_prob, len, self.alpha)
    }

    /// Last step after `max_len` words: each live beam ends with `<eos>` if it is its best token, else as it is.
    fn finalise<B: Backend>(
        &self,
        logp: Tensor<B, 2>,
        history: &[Vec<u32>],
        total: &[f64],
        live: &[bool],
        finished: &mut [Vec<(f64, Hypothesis)>],
        k: usize,
    ) {
        let best: Vec<i64> = logp.clone().argmax(1).into_data().iter::<i64>().collect();
        let eos = self.eos as usize;
        let eos_logp: Vec<f64> = logp.narrow(1, eos, 1).into_data().iter::<f64>().collect();
        for r in 0..history.len() {
            if !live[r] {
                continue;
            }
            let words = history[r].clone();
            let ended = best[r] == self.eos as i64;
            let (sum, len) = if ended {
                (total[r] + eos_logp[r], words.len() + 1)
            } else {
                (total[r], words.len())
            };
            let hyp = Hypothesis {
                tokens: words,
                log_prob: sum,
                ended,
            };
            finished[r / k].push((self.rank(sum, len), hyp));
        }
    }

    /// Forbids `<unk>`, early `<eos>` and repeated n-grams; finished beams may only extend with a zero-cost `<eos>`.
    fn mask<B: Backend>(
        &self,
        logp: Tensor<B, 2>,
        step: usize,
        history: &[Vec<u32>],
        live: &[bool],
        device: &B::Device,
    ) -> Tensor<B, 2> {
        let [rows, v] = logp.dims();
        let mut logp = logp;
        let mut column = vec![false; v];
        if let Some(unk) = self.unk {
            if let Some(c) = column.get_mut(unk as usize) {
                *c = true;
            }
        }
        if step < self.min_len {
            if let Some(c) = column.get_mut(self.eos as usize) {
                *c = true;
            }
        }
        if column.iter().any(|c| *c) {
            let mask: Tensor<B, 2, Bool> =
                Tensor::from_data(TensorData::new(column, [1, v]), device);
            logp = logp.mask_fill(mask.expand([rows, v]), f32::NEG_INFINITY);
        }
        if self.no_repeat_ngram_size > 0 {
            let mut banned = vec![false; rows * v];
            let mut any = false;
            for (r, words) in history.iter().enumerate() {
                if !live[r] {
                    continue;
                }
                for tok in ngram_bans(words, self.no_repeat_ngram_size) {
                    if (tok as usize) < v {
                        banned[r * v + tok as usize] = true;
                        any = true;
                    }
                }
            }
            if any {
                let mask: Tensor<B, 2, Bool> =
                    Tensor::from_data(TensorData::new(banned, [rows, v]), device);
                logp = logp.mask_fill(mask, f32::NEG_INFINITY);
            }
        }
        if live.iter().any(|l| !l) {
            let done: Vec<bool> = live.iter().map(|l| !l).collect();
            let done: Tensor<B, 2, Bool> =
                Tensor::from_data(TensorData::new(done, [rows, 1]), device);
            let filler: Vec<f32> = (0..v)
                .map(|t| {
                    if t == self.eos as usize {
                        0.0
                    } else {
                        f32::NEG_INFINITY
                    }
                })
                .collect();
            let filler: Tensor<B, 2> = Tensor::from_data(TensorData::new(filler, [1, v]), device);
            logp = logp.mask_where(done.expand([rows, v]), filler.expand([rows, v]));
        }
        logp
    }
}

impl Search for BeamSearch {
    type Output = Vec<Vec<Hypothesis>>;

    /// Up to `beam_size` captions for each of the `n` images of `state`, best (length-penalised) first.
    ///
    /// An image whose every continuation is forbidden gets no caption at all.
    fn run<B: Backend, D: StepDecoder<B>>(
        &self,
        decoder: &D,
        state: D::State,
        n: usize,
        device: &B::Device,
    ) -> Vec<Vec<Hypothesis>> {
        let k = self.beam_size.max(1);
        let rows = n * k;
        let mut finished: Vec<Vec<(f64, Hypothesis)>> = vec![Vec::new(); n];
        if n == 0 {
            return Vec::new();
        }
        // Image i's K beams start as copies of its state; only beam 0 is live at first.
        let repeat: Vec<i64> = (0..rows).map(|r| (r / k) as i64).collect();
        let mut state = decoder.select(state, int_tensor::<B>(repeat, device));
        let mut inputs = int_tensor::<B>(vec![self.sos as i64; rows], device);
        let start: Vec<f32> = (0..rows)
            .map(|r| if r % k == 0 { 0.0 } else { f32::NEG_INFINITY })
            .collect();
        let mut scores: Tensor<B, 1> = Tensor::from_data(TensorData::new(start, [rows]), device);
        let mut history: Vec<Vec<u32>> = vec![Vec::new(); rows];
        let mut total: Vec<f64> = (0..rows)
            .map(|r| if r % k == 0 { 0.0 } else { f64::NEG_INFINITY })
            .collect();
        let mut live: Vec<bool> = (0..rows).map(|r| r % k == 0).collect();
        let offsets: Tensor<B, 2, Int> =
            Tensor::<B, 1, Int>::arange(0..n as i64, device).reshape([n, 1]) * (k as i64);

        for step in 0..=self.max_len {
            let (logp, next) = decoder.step(inputs, state);
            state = next;
            let [_, v] = logp.dims();
            let logp = self.mask(logp, step, &history, &live, device);

            if step == self.max_len {
                self.finalise(logp, &history, &total, &live, &mut finished, k);
                break;
            }

            let cand = (logp.clone() + scores.unsqueeze_dim::<2>(1)).reshape([n, k * v]);
            let (best, index) = top_k(cand, k, k <= ITERATIVE_TOPK_MAX);
            let token_logp = logp.reshape([n, k * v]).gather(1, index.clone());
            let origin = index.clone().div_scalar(v as i64) + offsets.clone();
            let token = index.remainder_scalar(v as i64);

            let host_best: Vec<f32> = best.clone().into_data().iter::<f32>().collect();
            let host_origin: Vec<i64> = origin.clone().into_data().iter::<i64>().collect();
            let host_token: Vec<i64> = token.clone().into_data().iter::<i64>().collect();
            let host_logp: Vec<f64> = token_logp.into_data().iter::<f64>().collect();

            let mut next_history = Vec::with_capacity(rows);
            let mut next_total = Vec::with_capacity(rows);
            let mut next_live = Vec::with_capacity(rows);
            for r in 0..rows {
                let o = host_origin[r] as usize;
                let tok = host_token[r] as u32;
                let mut words = history[o].clone();
                let mut sum = total[o];
                let mut alive = false;
                if !host_best[r].is_finite() {
                    // Fewer than K allowed candidates: a dead beam.
                    sum = f64::NEG_INFINITY;
                } else if live[o] && tok == self.eos {
                    sum += host_logp[r];
                    let len = words.len() + 1;
                    let hyp = Hypothesis {
                        tokens: words.clone(),
                        log_prob: sum,
                        ended: true,
                    };
                    finished[r / k].push((self.rank(sum, len), hyp));
                } else if live[o] {
                    sum += host_logp[r];
                    words.push(tok);
                    alive = true;
                }
                next_history.push(words);
                next_total.push(sum);
                next_live.push(alive);
            }
            history = next_history;
            total = next_total;
            live = next_live;
            scores = best.reshape([rows]);
            inputs = token.reshape([rows]);
            if !live.iter().any(|l| *l) {
                break;
            }
            state = decoder.select(state, origin.reshape([rows]));
        }

        finished
            .into_iter()
            .map(|mut hyps| {
                hyps.sort_by(|a, b| b.0.total_cmp(&a.0));
                hyps.truncate(k);
                hyps.into_iter().map(|(_, h)| h).collect()
            })
            .collect()
    }
}

/// Tokens that would complete an n-gram of size `size` already present in `words`.
pub fn ngram_bans(words: &[u32], size: usize) -> Vec<u32> {
    if size == 0 || words.len() + 1 < size {
        return Vec::new();
    }
    let prefix = &words[words.len() + 1 - size..];
    words
        .windows(size)
        .filter(|gram| &gram[..size - 1] == prefix)
        .map(|gram| gram[size - 1])
        .collect()
}

/// The `k` largest values of each row of `x` [N, M] and their column indices, best first.
fn top_k<B: Backend>(
    x: Tensor<B, 2>,
    k: usize,
    iterative: bool,
) -> (Tensor<B, 2>, Tensor<B, 2, Int>) {
    if !iterative {
        return x.topk_with_indices(k, 1);
    }
    let [n, _] = x.dims();
    // Adding −∞ at each row's arg-max takes it out of the next pass (a scatter touches one
    // element a row; comparing every column with the arg-max cost five times as much on Flex).
    let taken = Tensor::<B, 2>::full([n, 1], f32::NEG_INFINITY, &x.device());
    let mut x = x;
    let mut values = Vec::with_capacity(k);
    let mut indices = Vec::with_capacity(k);
    for i in 0..k {
        let (value, index) = x.clone().max_dim_with_indices(1);
        if i + 1 < k {
            x = x.scatter(1, index.clone(), taken.clone(), IndexingUpdateOp::Add);
        }
        values.push(value);
        indices.push(index);
    }
    (Tensor::cat(values, 1), Tensor::cat(indices, 1))
}

fn int_tensor<B: Backend>(values: Vec<i64>, device: &B::Device) -> Tensor<B, 1, Int> {
    let n = values.len();
    Tensor::from_data(TensorData::new(values, [n]), device)
}

#[cfg(test)]
mod tests {
    use crate::search::Search;
    use burn::backend::NdArray;
    use burn::tensor::{Distribution, Tensor};

    use super::super::toy::{normalise, Toy};
    use super::super::{GreedySearch, Hypothesis};
    use super::{ngram_bans, top_k, BeamSearch, LengthPenalty};
    use crate::DecoderSpec;

    type B = NdArray;
    const EOS: u32 = 2;
    const UNK: u32 = 3;
    const A: u32 = 4;
    const C: u32 = 5;

    /// Every caption the beam search can return, ranked as it ranks them (exhaustive search).
    fn exhaustive<F: Fn(u32, &[u32]) -> Vec<f64>>(
        toy: &Toy<F>,
        search: &BeamSearch,
        image: u32,
    ) -> Vec<Hypothesis> {
        fn walk<F: Fn(u32, &[u32]) -> Vec<f64>>(
            toy: &Toy<F>,
            search: &BeamSearch,
            image: u32,
            words: Vec<u32>,
            sum: f64,
            out: &mut Vec<(f64, Hypothesis)>,
        ) {
            let mut logp = toy.logp(image, &words);
            if let Some(unk) = search.unk {
                logp[unk as usize] = f64::NEG_INFINITY;
            }
            if words.len() < search.min_len {
                logp[EOS as usize] = f64::NEG_INFINITY;
            }
            for tok in ngram_bans(&words, search.no_repeat_ngram_size) {
                logp[tok as usize] = f64::NEG_INFINITY;
            }
            let mut push = |tokens: Vec<u32>, sum: f64, len: usize| {
                let rank = search.length_penalty.score(sum, len, search.alpha);
                out.push((
                    rank,
                    Hypothesis {
                        ended: len > tokens.len(),
                        tokens,
                        log_prob: sum,
                    },
                ));
            };
            if words.len() == search.max_len {
                let best = (0..logp.len()).fold(0, |b, t| if logp[t] > logp[b] { t } else { b });
                let len = words.len();
                if best == EOS as usize {
                    push(words, sum + logp[best], len + 1);
                } else {
                    push(words, sum, len);
                }
                return;
            }
            if logp[EOS as usize].is_finite() {
                push(words.clone(), sum + logp[EOS as usize], words.len() + 1);
            }
            for (tok, lp) in logp.iter().enumerate() {
                if tok != EOS as usize && lp.is_finite() {
                    let mut next = words.clone();
                    next.push(tok as u32);
                    walk(toy, search, image, next, sum + lp, out);
                }
            }
        }
        let mut out = Vec::new();
        walk(toy, search, image, Vec::new(), 0.0, &mut out);
        out.sort_by(|a, b| b.0.total_cmp(&a.0));
        out.truncate(search.beam_size);
        out.into_iter().map(|(_, h)| h).collect()
    }

    fn beam<F: Fn(u32, &[u32]) -> Vec<f64>>(
        toy: &Toy<F>,
        search: &BeamSearch,
        images: &[u32],
    ) -> Vec<Vec<Hypothesis>> {
        let device = Default::default();
        let state = toy.start::<B>(images, &device);
        search.run(toy, state, images.len(), &device)
    }

    fn search(beam_size: usize, max_len: usize) -> BeamSearch {
        BeamSearch::new(beam_size, max_len, 1, EOS)
    }

    /// Pseudo-random distributions over 5 tokens that depend on the image and every word so far.
    fn hashed(image: u32, words: &[u32]) -> Vec<f64> {
        let mut rng = super::super::SplitMix64::new(1 + image as u64);
        for w in words {
            rng = super::super::SplitMix64::new(rng.next_u64() ^ (*w as u64 + 17));
        }
        normalise(&(0..5).map(|_| 0.05 + rng.next_f64()).collect::<Vec<_>>())
    }

    fn same(got: &[Hypothesis], want: &[Hypothesis]) {
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert_eq!(g.tokens, w.tokens);
            assert!(
                (g.log_prob - w.log_prob).abs() < 1e-9,
                "{} vs {}",
                g.log_prob,
                w.log_prob
            );
        }
    }

    #[test]
    fn beam_of_one_equals_greedy_on_a_caption_decoder() {
        let device = Default::default();
        let decoder = DecoderSpec::default().init::<B>(12, 30, &device);
        let features = Tensor::<B, 2>::random([6, 12], Distribution::Normal(0.0, 1.0), &device);
        for max_len in [0, 3, 12] {
            let greedy = GreedySearch {
                max_len,
                sos: 1,
                eos: EOS,
            }
            .decode(&decoder, features.clone());
            let beam = search(1, max_len).decode(&decoder, features.clone());
            assert_eq!(beam.len(), greedy.len());
            for (b, g) in beam.iter().zip(&greedy) {
                assert_eq!(b.len(), 1);
                assert_eq!(b[0].tokens, g.tokens);
                assert!((b[0].log_prob - g.log_prob).abs() < 1e-9);
            }
        }
    }

    #[test]
    fn wide_beam_equals_exhaustive_search() {
        let toy = Toy {
            vocab: 5,
            probs: hashed,
        };
        let images = [0, 1, 2];
        let mut configs = vec![search(128, 3)];
        for penalty in [LengthPenalty::Average, LengthPenalty::Wu] {
            configs.push(BeamSearch {
                length_penalty: penalty,
                ..search(128, 3)
            });
        }
        configs.push(BeamSearch {
            min_len: 2,
            unk: Some(UNK),
            no_repeat_ngram_size: 1,
            length_penalty: LengthPenalty::Wu,
            alpha: 1.3,
            ..search(128, 3)
        });
        for config in &configs {
            let got = beam(&toy, config, &images);
            for (image, hyps) in images.iter().zip(&got) {
                let want = exhaustive(&toy, config, *image);
                assert!(want.len() > 10);
                same(hyps, &want);
            }
        }
        // Beams narrower than the search tree still return their best captions, ranked.
        let got = beam(&toy, &search(4, 3), &images);
        assert!(got.iter().all(|h| h.len() == 4));
        assert!(got
            .iter()
            .all(|h| h.windows(2).all(|w| w[0].log_prob >= w[1].log_prob)));
    }

    /// The top-K by arg-max passes and by sorting agree.
    #[test]
    fn iterative_and_sorted_top_k_agree() {
        let device = Default::default();
        let x = Tensor::<B, 2>::random([3, 40], Distribution::Normal(0.0, 1.0), &device);
        let (v1, i1) = top_k(x.clone(), 6, true);
        let (v2, i2) = top_k(x, 6, false);
        assert_eq!(i1.into_data(), i2.into_data());
        assert_eq!(v1.into_data(), v2.into_data());
    }

    #[test]
    fn beam_finds_what_greedy_misses() {
        // Greedy takes A (0.55) then <eos> (0.34); C (0.45) then <eos> (0.9) is twice as likely.
        let toy = Toy {
            vocab: 6,
            probs: |_: u32, words: &[u32]| match words {
                [] => normalise(&[0.001, 0.001, 0.002, 0.003, 0.55, 0.45]),
                [A] => normalise(&[0.05, 0.06, 0.34, 0.07, 0.3, 0.18]),
                [C] => normalise(&[0.01, 0.02, 0.9, 0.03, 0.02, 0.02]),
                _ => normalise(&[0.1, 0.1, 0.5, 0.1, 0.1, 0.1]),
            },
        };
        let greedy = beam(&toy, &search(1, 5), &[0]);
        let wide = beam(&toy, &search(2, 5), &[0]);
        assert_eq!(greedy[0][0].tokens, vec![A]);
        assert_eq!(wide[0][0].tokens, vec![C]);
        assert!(wide[0][0].log_prob > greedy[0][0].log_prob);
        same(&wide[0], &exhaustive(&toy, &search(2, 5), 0));
    }

    #[test]
    fn length_penalty_prefers_longer_captions() {
        // Empty caption: 0.32; [A]: 0.31 · 0.95 — longer, but less likely in total.
        let toy = Toy {
            vocab: 6,
            probs: |_: u32, words: &[u32]| match words {
                [] => vec![0.09, 0.091, 0.32, 0.094, 0.31, 0.095],
                [A] => vec![0.01, 0.01, 0.95, 0.01, 0.01, 0.01],
                [_] => normalise(&[0.16, 0.161, 0.2, 0.162, 0.163, 0.164]),
                _ => normalise(&[0.1, 0.101, 0.5, 0.102, 0.103, 0.104]),
            },
        };
        let none = beam(&toy, &search(3, 5), &[0]);
        assert_eq!(none[0][0].tokens, Vec::<u32>::new());
        for penalty in [LengthPenalty::Average, LengthPenalty::Wu] {
            let config = BeamSearch {
                length_penalty: penalty,
                ..search(3, 5)
            };
            let got = beam(&toy, &config, &[0]);
            assert_eq!(got[0][0].tokens, vec![A], "{penalty:?}");
            // Raw log-probs are reported, ranked by the penalised score.
            assert!(got[0][0].log_prob < none[0][0].log_prob);
        }
        assert!(
            (LengthPenalty::Wu.score(-2.0, 3, 0.7) - -2.0 / (8.0f64 / 6.0).powf(0.7)).abs() < 1e-12
        );
        assert_eq!(LengthPenalty::Average.score(-3.0, 3, 0.7), -1.0);
    }

    #[test]
    fn ngram_blocking_forbids_repeated_bigrams() {
        // After A comes C, after C comes A: unblocked, the best caption is A C A C.
        let toy = Toy {
            vocab: 6,
            probs: |_: u32, words: &[u32]| match words.last() {
                None => normalise(&[0.02, 0.02, 0.02, 0.02, 0.9, 0.02]),
                Some(&A) => normalise(&[0.03, 0.03, 0.05, 0.04, 0.05, 0.8]),
                Some(&C) => normalise(&[0.03, 0.03, 0.1, 0.09, 0.7, 0.05]),
                _ => normalise(&[0.1, 0.1, 0.5, 0.1, 0.1, 0.1]),
            },
        };
        let plain = beam(&toy, &search(3, 4), &[0]);
        assert_eq!(plain[0][0].tokens, vec![A, C, A, C]);
        let config = BeamSearch {
            no_repeat_ngram_size: 2,
            ..search(3, 4)
        };
        let blocked = beam(&toy, &config, &[0]);
        assert_ne!(blocked[0][0].tokens, plain[0][0].tokens);
        for hyp in &blocked[0] {
            let grams: Vec<&[u32]> = hyp.tokens.windows(2).collect();
            for (i, g) in grams.iter().enumerate() {
                assert!(
                    !grams[i + 1..].contains(g),
                    "{:?} repeats {g:?}",
                    hyp.tokens
                );
            }
        }
        same(&blocked[0], &exhaustive(&toy, &config, 0));
        assert_eq!(ngram_bans(&[4, 5, 4], 2), vec![5]);
        assert_eq!(ngram_bans(&[4, 5, 4], 1), vec![4, 5, 4]);
        assert!(ngram_bans(&[4, 5, 4], 3).is_empty());
    }

    #[test]
    fn endless_beams_keep_max_len_words() {
        let toy = Toy {
            vocab: 6,
            probs: |_: u32, words: &[u32]| {
                let favourite = if words.len().is_multiple_of(2) {
                    0.6
                } else {
                    0.3
                };
                normalise(&[0.1, 0.05, 0.001, 0.1, favourite, 0.2])
            },
        };
        let got = beam(&toy, &search(3, 6), &[0, 1]);
        for hyps in &got {
            assert_eq!(hyps.len(), 3);
            for hyp in hyps {
                assert_eq!(hyp.tokens.len(), 6);
                // The score is the words' log-probs only: no <eos> was emitted.
                let mut sum = 0.0;
                for t in 0..6 {
                    sum += toy.logp(0, &hyp.tokens[..t])[hyp.tokens[t] as usize];
                }
                assert!((hyp.log_prob - sum).abs() < 1e-9);
            }
        }
    }

    #[test]
    fn min_len_and_unk_suppression() {
        // <eos> first, then <unk>, are the most likely tokens at every step.
        let toy = Toy {
            vocab: 6,
            probs: |_: u32, _: &[u32]| normalise(&[0.05, 0.05, 0.4, 0.3, 0.12, 0.08]),
        };
        let plain = beam(&toy, &search(3, 5), &[0]);
        assert_eq!(plain[0][0].tokens, Vec::<u32>::new());
        assert!(plain[0].iter().any(|h| h.tokens.contains(&UNK)));
        let config = BeamSearch {
            min_len: 2,
            unk: Some(UNK),
            ..search(3, 5)
        };
        let got = beam(&toy, &config, &[0, 1]);
        for hyp in got.iter().flatten() {
            assert!(hyp.tokens.len() >= 2, "{:?}", hyp.tokens);
            assert!(!hyp.tokens.contains(&UNK), "{:?}", hyp.tokens);
        }
        assert_eq!(got[0][0].tokens, vec![A, A]);
    }
}
