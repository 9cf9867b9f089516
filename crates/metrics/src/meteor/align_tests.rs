//! The lazy beam search ([`align`]) against the search before it ([`before::align_before`]),
//! which visited every match of every parent.

use super::before::{align_before, AlignScratchBefore};
use super::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A stage over test words `w1` and reference words `w2`, stems `word / 2`, with the listed
/// synonym and paraphrase matches `listed`.
fn stage(w1: &[u32], w2: &[u32], with_stem: bool, listed: &[Match]) -> Stage {
    let s1: Vec<u32> = w1.iter().map(|w| w / 2).collect();
    let s2: Vec<u32> = w2.iter().map(|w| w / 2).collect();
    let mut s = Stage::default();
    s.reset((w1, &s1), (w2, &s2), with_stem);
    for &m in listed {
        s.add(m);
    }
    s.finish();
    s
}

/// A search's chosen match at each reference position, and its statistics.
type Alignment = (Vec<Option<Match>>, (usize, usize, usize));

/// Both searches' chosen matches and statistics on `s`.
fn both(s: &Stage, n1: usize, n2: usize) -> [Alignment; 2] {
    let (mut a, mut b) = (Vec::new(), Vec::new());
    align(s, n1, n2, &mut AlignScratch::default(), &mut a);
    align_before(s, n1, n2, &mut AlignScratchBefore::default(), &mut b);
    let (ca, cb) = (count_and_chunks(&a), count_and_chunks(&b));
    [(a, ca), (b, cb)]
}

#[test]
fn lazy_beam_search_chooses_the_same_matches_as_visiting_every_match_on_random_segments() {
    let mut rng = ChaCha8Rng::seed_from_u64(0x5eed_a119);
    let cases = 4000;
    for case in 0..cases {
        let vocab = rng.random_range(1..=5u32);
        let n1 = rng.random_range(0..=60usize);
        let n2 = rng.random_range(0..=60usize);
        let w1: Vec<u32> = (0..n1).map(|_| rng.random_range(0..vocab)).collect();
        let w2: Vec<u32> = (0..n2).map(|_| rng.random_range(0..vocab)).collect();
        let with_stem = rng.random_bool(0.7);
        let mut listed = Vec::new();
        if n1 > 0 && n2 > 0 {
            // Synonyms of single words, then paraphrases of up to 3 words each side.
            for _ in 0..rng.random_range(0..=n2.min(20)) {
                let (j, i) = (rng.random_range(0..n2), rng.random_range(0..n1));
                listed.push(Match::one(2, j, i));
            }
            for _ in 0..rng.random_range(0..=6) {
                let len2 = rng.random_range(1..=3usize.min(n2));
                let len1 = rng.random_range(1..=3usize.min(n1));
                let j = rng.random_range(0..=n2 - len2);
                let i = rng.random_range(0..=n1 - len1);
                listed.push(Match::new(3, j, len2, i, len1));
            }
        }
        let s = stage(&w1, &w2, with_stem, &listed);
        let [new, old] = both(&s, n1, n2);
        assert_eq!(
            new, old,
            "case {case}: test {w1:?}, reference {w2:?}, stem {with_stem}, listed {listed:?}"
        );
    }
}

#[test]
fn lazy_beam_search_chooses_the_same_matches_as_visiting_every_match_on_long_repeated_lines() {
    for (n1, n2, vocab) in [(150usize, 170usize, 1u32), (170, 150, 1), (160, 160, 2)] {
        let w1: Vec<u32> = (0..n1 as u32).map(|i| (i / 7) % vocab).collect();
        let w2: Vec<u32> = (0..n2 as u32).map(|i| (i / 5) % vocab).collect();
        for with_stem in [false, true] {
            let s = stage(&w1, &w2, with_stem, &[]);
            let [new, old] = both(&s, n1, n2);
            assert_eq!(
                new, old,
                "{n1} x {n2}, vocabulary {vocab}, stem {with_stem}"
            );
        }
    }
}
