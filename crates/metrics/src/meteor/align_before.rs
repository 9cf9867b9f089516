//! The beam search as it was before candidates were enumerated lazily (commit 0de181f): every
//! match at a position is visited for every parent. Kept to prove the lazy search equal to it.

use super::{compare, set_used, Match, Partial, Stage, BEAM};

/// Whether any word of `m` is used (`used`: reference words, then test words).
fn is_used(used: &[bool], n2: usize, m: &Match) -> bool {
    used[m.start()..m.start() + m.length()].iter().any(|&u| u)
        || used[n2 + m.match_start()..n2 + m.match_start() + m.match_length()]
            .iter()
            .any(|&u| u)
}

/// The partial alignments that survived one beam-search step (at most [`BEAM`]), in flat
/// buffers reused from step to step: slot `k` holds the chosen match at each reference position
/// (`matches[k * n2..]`) and the used words, reference then test (`used[k * (n2 + n1)..]`).
#[derive(Default)]
struct Paths {
    heads: Vec<Partial>,
    matches: Vec<Option<Match>>,
    used: Vec<bool>,
}

impl Paths {
    fn clear(&mut self) {
        self.heads.clear();
        self.matches.clear();
        self.used.clear();
    }

    /// Appends the path of `p` from `src` with `added` chosen, as state `p` with its new slot.
    fn push_copy(&mut self, src: &Paths, p: &Pending, n1: usize, n2: usize) {
        let parent = p.head.slot as usize;
        let (a, u) = (parent * n2, parent * (n1 + n2));
        let slot = self.heads.len();
        self.matches.extend_from_slice(&src.matches[a..a + n2]);
        self.used.extend_from_slice(&src.used[u..u + n1 + n2]);
        if let Some(m) = p.added {
            self.matches[slot * n2 + m.start()] = Some(m);
            set_used(&mut self.used[slot * (n1 + n2)..], n2, &m);
        }
        self.heads.push(Partial {
            slot: slot as u32,
            ..p.head
        });
    }

    fn used(&self, slot: usize, n1: usize, n2: usize) -> &[bool] {
        &self.used[slot * (n1 + n2)..(slot + 1) * (n1 + n2)]
    }
}

/// A partial alignment of the next step, not copied yet: its state (`head.slot` is its parent's
/// slot in the step's [`Paths`]) and the match it adds. The jar copies every one of them
/// (beam × the matches at a position, each as long as both lines); only the [`BEAM`] best are
/// ever extended, so only those are copied, after the sort that picks them.
#[derive(Clone, Copy)]
struct Pending {
    head: Partial,
    added: Option<Match>,
}

/// Whether any word of `m` is used (`used`: reference words, then test words).
/// Keeps the first [`BEAM`] of `pending` in the order of a stable sort by [`compare`], sorted:
/// a selection by (order, index), then a sort of those, instead of sorting them all.
fn keep_best(pending: &mut Vec<Pending>) {
    let by = |x: &(usize, Pending), y: &(usize, Pending)| {
        compare(&x.1.head, &y.1.head).then(x.0.cmp(&y.0))
    };
    let mut indexed: Vec<(usize, Pending)> = pending.drain(..).enumerate().collect();
    if indexed.len() > BEAM {
        indexed.select_nth_unstable_by(BEAM - 1, by);
        indexed.truncate(BEAM);
    }
    indexed.sort_unstable_by(by);
    pending.extend(indexed.into_iter().map(|(_, p)| p));
}

/// Reused buffers of [`align`] (one per thread).
#[derive(Default)]
pub(super) struct AlignScratchBefore {
    prev: Paths,
    cur: Paths,
    pending: Vec<Pending>,
    next: Vec<Pending>,
}

/// The jar's `Aligner.align` search: definite one-to-one matches, then a beam search over
/// reference positions. Writes the chosen match starting at each reference position to `out`.
///
/// Memory: the [`BEAM`] surviving paths (each as long as both lines) and one small
/// [`Pending`] per candidate of a step; the jar copies every candidate's path.
pub(super) fn align_before(
    s: &Stage,
    n1: usize,
    n2: usize,
    sc: &mut AlignScratchBefore,
    out: &mut Vec<Option<Match>>,
) {
    let AlignScratchBefore {
        prev,
        cur,
        pending,
        next,
    } = sc;
    let start = Partial {
        matches1: 0,
        matches2: 0,
        chunks: 0,
        idx: 0,
        last_match_end: -1,
        distance: 0,
        slot: 0,
    };
    cur.clear();
    cur.heads.push(start);
    cur.matches.resize(n2, None);
    cur.used.resize(n2 + n1, false);
    for i in 0..n2 {
        if s.count_at(i) != 1 {
            continue;
        }
        if let Some(m) = s.at(i).next() {
            let overlap = (0..m.length()).any(|k| s.cov2[i + k] != 1)
                || (0..m.match_length()).any(|k| s.cov1[m.match_start() + k] != 1);
            if !overlap {
                cur.matches[i] = Some(m);
                set_used(&mut cur.used, n2, &m);
            }
        }
    }
    next.clear();
    next.push(Pending {
        head: start,
        added: None,
    });
    for current in 0..=n2 {
        // The previous step's paths become the parents of its candidates.
        std::mem::swap(prev, cur);
        std::mem::swap(pending, next);
        next.clear();
        // Java's stable `Collections.sort`, of which the first `BEAM` are kept: the `BEAM`
        // smallest by (order, index), then sorted.
        keep_best(pending);
        cur.clear();
        for p in pending.iter() {
            cur.push_copy(prev, p, n1, n2);
        }
        let first = cur.heads.first().copied();
        // Children pushed per (weighted matches, chunks) class, of the parent being extended.
        let mut classes: Vec<((i32, i32), usize)> = Vec::new();
        let keep =
            |next: &mut Vec<Pending>, head: Partial| next.push(Pending { head, added: None });
        for p in &cur.heads {
            let mut path = *p;
            let slot = p.slot as usize;
            if current == n2 {
                if path.last_match_end != -1 {
                    path.chunks += 1;
                }
                keep(next, path);
                continue;
            }
            let used = cur.used(slot, n1, n2);
            if used[current] {
                if current < path.idx {
                    keep(next, path);
                } else if let Some(m) = cur.matches[slot * n2..(slot + 1) * n2]
                    .get(path.idx)
                    .copied()
                    .flatten()
                {
                    path.take(&m);
                    path.distance += (m.start() as i64 - m.match_start() as i64).abs();
                    keep(next, path);
                }
                continue;
            }
            // A child ranks after every earlier sibling with its (weighted matches, chunks): they
            // have no more distance (the parent's grows with each) and come first in the stable
            // sort. Past `BEAM` such siblings it can never be kept, so it is not pushed.
            classes.clear();
            for m in s.at(current) {
                let m = &m;
                if is_used(used, n2, m) {
                    continue;
                }
                let mut np = path;
                np.take(m);
                let class = (np.matches1 + np.matches2, np.chunks);
                let seen = match classes.iter_mut().find(|(c, _)| *c == class) {
                    Some((_, n)) => n,
                    None => {
                        classes.push((class, 0));
                        &mut classes.last_mut().expect("just pushed").1
                    }
                };
                *seen += 1;
                if *seen > BEAM {
                    path.distance += (m.start() as i64 - m.match_start() as i64).abs();
                    continue;
                }
                next.push(Pending {
                    head: np,
                    added: Some(*m),
                });
                // The jar adds the distance to the parent path, not to the new one.
                path.distance += (m.start() as i64 - m.match_start() as i64).abs();
            }
            if path.last_match_end != -1 {
                path.chunks += 1;
                path.last_match_end = -1;
            }
            path.idx += 1;
            keep(next, path);
        }
        if next.is_empty() {
            if let Some(p) = first {
                keep(next, p);
            }
        }
    }
    out.clear();
    keep_best(next);
    match next.first() {
        Some(p) => {
            prev.clear();
            prev.push_copy(cur, p, n1, n2);
            out.extend_from_slice(&prev.matches[..n2]);
        }
        None => out.resize(n2, None),
    }
}
