//! Greedy decoding that keeps each step's attention map, for any step decoder whose state holds
//! the map of its last step (Show-Attend-Tell's soft attention, a transformer's cross-attention).

use std::cell::RefCell;

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};

use crate::search::{GreedySearch, Hypothesis, Search, StepDecoder};

/// A decoding state that holds the attention weights `[N, L]` of its last step.
pub trait AttentionMap<B: Backend> {
    /// Weights `[N, L]` over the grid locations of the last step (rows sum to 1, or less when
    /// some weight went to a token that is not a grid location).
    fn last_map(&self) -> Tensor<B, 2>;
}

/// Greedy captions of the `n` rows of `state` with, per row, one attention map `[L]` per emitted
/// word (`maps[row][word][l]`).
pub fn greedy_with_maps<B: Backend, D>(
    decoder: &D,
    search: &GreedySearch,
    state: D::State,
    n: usize,
    device: &B::Device,
) -> (Vec<Hypothesis>, Vec<Vec<Vec<f32>>>)
where
    D: StepDecoder<B>,
    D::State: AttentionMap<B>,
{
    let l = state.last_map().dims()[1];
    let recorder = Recorder {
        decoder,
        steps: RefCell::new(Vec::new()),
    };
    let hypotheses = search.run(&recorder, state, n, device);
    let steps = recorder.steps.into_inner();
    let maps = hypotheses
        .iter()
        .enumerate()
        .map(|(row, hyp)| {
            (0..hyp.tokens.len())
                .map(|word| steps[word][row * l..(row + 1) * l].to_vec())
                .collect()
        })
        .collect();
    (hypotheses, maps)
}

/// Step decoder that records every step's attention weights (`[N * L]`, row-major).
struct Recorder<'a, D> {
    decoder: &'a D,
    steps: RefCell<Vec<Vec<f32>>>,
}

impl<B: Backend, D> StepDecoder<B> for Recorder<'_, D>
where
    D: StepDecoder<B>,
    D::State: AttentionMap<B>,
{
    type State = D::State;

    fn step(&self, tokens: Tensor<B, 1, Int>, state: D::State) -> (Tensor<B, 2>, D::State) {
        let (logp, state) = self.decoder.step(tokens, state);
        let alpha: Vec<f32> = state.last_map().into_data().iter::<f32>().collect();
        self.steps.borrow_mut().push(alpha);
        (logp, state)
    }

    fn select(&self, state: D::State, indices: Tensor<B, 1, Int>) -> D::State {
        self.decoder.select(state, indices)
    }
}
