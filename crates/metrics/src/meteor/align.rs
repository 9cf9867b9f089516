//! The jar's aligner (`Aligner`): the candidate matches of a line pair ([`Stage`]), then its
//! beam search for the alignment with the most weighted matches, the fewest chunks and the least
//! distance ([`align`]), and the matched-word and chunk counts of the result
//! ([`count_and_chunks`]).

/// Weights the jar's aligner uses to rank partial alignments (exact, stem, synonym, paraphrase).
const ALIGN_WEIGHTS: [f64; 4] = [1.0, 0.5, 0.5, 0.5];
/// Beam size of the alignment search.
const BEAM: usize = 40;

/// A match of `length` reference words from `start` with `match_length` test words from
/// `match_start`, found by module `module`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Match {
    /// The module that found it: 0 exact, 1 stem, 2 synonym, 3 paraphrase.
    pub(super) module: u8,
    length: u16,
    match_length: u16,
    start: u32,
    match_start: u32,
}

impl Match {
    /// A match (compact: it is copied with every path of the beam search). Lines are far
    /// shorter than 2^32 words and phrases than 2^16.
    pub(super) fn new(
        module: u8,
        start: usize,
        length: usize,
        match_start: usize,
        match_length: usize,
    ) -> Self {
        Match {
            module,
            start: start as u32,
            length: length as u16,
            match_start: match_start as u32,
            match_length: match_length as u16,
        }
    }

    pub(super) fn one(module: u8, start: usize, match_start: usize) -> Self {
        Match::new(module, start, 1, match_start, 1)
    }

    pub(super) fn start(&self) -> usize {
        self.start as usize
    }

    pub(super) fn length(&self) -> usize {
        usize::from(self.length)
    }

    pub(super) fn match_start(&self) -> usize {
        self.match_start as usize
    }

    pub(super) fn match_length(&self) -> usize {
        usize::from(self.match_length)
    }
}

/// The candidate matches of one line pair, by reference start position. The exact and stem
/// matches of single words, which between repeated words number the product of the lines'
/// lengths, are not stored: they are the positions of the reference word's id (or stem) among
/// the test line's, sorted by id; only the synonym and paraphrase matches are listed.
#[derive(Default)]
pub(super) struct Stage {
    /// Word ids and stems of the test line (1) and the reference line (2).
    words1: Vec<u32>,
    words2: Vec<u32>,
    stems1: Vec<u32>,
    stems2: Vec<u32>,
    /// Whether stem matches count (not for identical lines).
    with_stem: bool,
    /// Positions of each line sorted by (word id, position) and by (stem, position).
    by_word1: Vec<u32>,
    by_stem1: Vec<u32>,
    by_word2: Vec<u32>,
    by_stem2: Vec<u32>,
    /// Listed matches in the order they were found (grouped by `start` in [`Stage::finish`]).
    found: Vec<Match>,
    /// Listed matches by reference start: those of position `j` are
    /// `matches[off[j]..off[j + 1]]`, in the order they were found.
    matches: Vec<Match>,
    off: Vec<u32>,
    cov1: Vec<u32>,
    cov2: Vec<u32>,
}

/// The positions in `sorted` (sorted by `key`, then position) whose key is `k`.
fn with_key<'a>(sorted: &'a [u32], key: &[u32], k: u32) -> &'a [u32] {
    let lo = sorted.partition_point(|&i| key[i as usize] < k);
    let hi = lo + sorted[lo..].partition_point(|&i| key[i as usize] <= k);
    &sorted[lo..hi]
}

/// Positions `0..key.len()` sorted by key, then position, into `out`.
fn sort_by_key_into(out: &mut Vec<u32>, key: &[u32]) {
    out.clear();
    out.extend(0..key.len() as u32);
    out.sort_by_key(|&i| key[i as usize]);
}

impl Stage {
    /// Starts a line pair: test words `words1`, reference words `words2` (ids) and their stems;
    /// exact matches between equal ids, and stem matches between equal stems of different ids
    /// when `with_stem`.
    pub(super) fn reset(
        &mut self,
        (words1, stems1): (&[u32], &[u32]),
        (words2, stems2): (&[u32], &[u32]),
        with_stem: bool,
    ) {
        let (n1, n2) = (words1.len(), words2.len());
        for (v, from) in [
            (&mut self.words1, words1),
            (&mut self.words2, words2),
            (&mut self.stems1, stems1),
            (&mut self.stems2, stems2),
        ] {
            v.clear();
            v.extend_from_slice(from);
        }
        self.with_stem = with_stem;
        sort_by_key_into(&mut self.by_word1, words1);
        sort_by_key_into(&mut self.by_stem1, stems1);
        sort_by_key_into(&mut self.by_word2, words2);
        sort_by_key_into(&mut self.by_stem2, stems2);
        self.found.clear();
        // Coverage of the exact and stem matches: a word is covered once by each equal word
        // of the other line, and once by each other word of its stem.
        self.cov1.clear();
        self.cov1.extend((0..n1).map(|i| {
            let exact = with_key(&self.by_word2, words2, words1[i]).len();
            let stem = with_key(&self.by_stem2, stems2, stems1[i]).len();
            (if with_stem { stem } else { exact }) as u32
        }));
        self.cov2.clear();
        self.cov2.extend((0..n2).map(|j| {
            let exact = with_key(&self.by_word1, words1, words2[j]).len();
            let stem = with_key(&self.by_stem1, stems1, stems2[j]).len();
            (if with_stem { stem } else { exact }) as u32
        }));
    }

    /// Lists a match (synonym or paraphrase).
    pub(super) fn add(&mut self, m: Match) {
        for k in 0..m.match_length() {
            self.cov1[m.match_start() + k] += 1;
        }
        for k in 0..m.length() {
            self.cov2[m.start() + k] += 1;
        }
        self.found.push(m);
    }

    /// Groups the listed matches by reference start, keeping their order within a position.
    pub(super) fn finish(&mut self) {
        let n2 = self.cov2.len();
        self.off.clear();
        self.off.resize(n2 + 1, 0);
        for m in &self.found {
            self.off[m.start() + 1] += 1;
        }
        for j in 0..n2 {
            self.off[j + 1] += self.off[j];
        }
        self.matches.clear();
        self.matches.resize(self.found.len(), Match::one(0, 0, 0));
        let mut fill: Vec<u32> = self.off[..n2].to_vec();
        for m in &self.found {
            let f = &mut fill[m.start()];
            self.matches[*f as usize] = *m;
            *f += 1;
        }
    }

    /// The test positions exactly matching reference position `j`, and those stem-matching it.
    fn single(&self, j: usize) -> (&[u32], &[u32]) {
        let exact = with_key(&self.by_word1, &self.words1, self.words2[j]);
        let stem = if self.with_stem {
            with_key(&self.by_stem1, &self.stems1, self.stems2[j])
        } else {
            &[]
        };
        (exact, stem)
    }

    /// The matches starting at reference position `j`, in the order the jar finds them:
    /// exact, stem, then the listed ones.
    fn at(&self, j: usize) -> impl Iterator<Item = Match> + '_ {
        let (exact, stem) = self.single(j);
        let word = self.words2[j];
        exact
            .iter()
            .map(move |&i| Match::one(0, j, i as usize))
            .chain(
                stem.iter()
                    .filter(move |&&i| self.words1[i as usize] != word)
                    .map(move |&i| Match::one(1, j, i as usize)),
            )
            .chain(
                self.matches[self.off[j] as usize..self.off[j + 1] as usize]
                    .iter()
                    .copied(),
            )
    }

    /// How many matches start at reference position `j`.
    fn count_at(&self, j: usize) -> usize {
        let (exact, stem) = self.single(j);
        let stem = if self.with_stem {
            stem.len()
        } else {
            exact.len()
        };
        stem + (self.off[j + 1] - self.off[j]) as usize
    }
}

/// The scalar state of a partial alignment; its chosen matches and used words live in a
/// [`Paths`] slot.
#[derive(Clone, Copy)]
struct Partial {
    matches1: i32,
    matches2: i32,
    chunks: i32,
    idx: usize,
    last_match_end: i64,
    distance: i64,
    /// Index of the path's slot in its [`Paths`].
    slot: u32,
}

impl Partial {
    /// Adds a match's statistics (Java `int += double` truncates).
    fn take(&mut self, m: &Match) {
        let w = ALIGN_WEIGHTS[usize::from(m.module)];
        self.matches1 = (self.matches1 as f64 + m.match_length() as f64 * w) as i32;
        self.matches2 = (self.matches2 as f64 + m.length() as f64 * w) as i32;
        if self.last_match_end != -1 && m.match_start() as i64 != self.last_match_end {
            self.chunks += 1;
        }
        self.idx = m.start() + m.length();
        self.last_match_end = (m.match_start() + m.match_length()) as i64;
    }
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
fn is_used(used: &[bool], n2: usize, m: &Match) -> bool {
    used[m.start()..m.start() + m.length()].iter().any(|&u| u)
        || used[n2 + m.match_start()..n2 + m.match_start() + m.match_length()]
            .iter()
            .any(|&u| u)
}

fn set_used(used: &mut [bool], n2: usize, m: &Match) {
    used[m.start()..m.start() + m.length()].fill(true);
    used[n2 + m.match_start()..n2 + m.match_start() + m.match_length()].fill(true);
}

/// `Constants.PARTIAL_COMPARE_TOTAL`: more weighted matches, then fewer chunks, then less distance.
fn compare(x: &Partial, y: &Partial) -> std::cmp::Ordering {
    let diff = (y.matches1 + y.matches2) - (x.matches1 + x.matches2);
    diff.cmp(&0)
        .then(x.chunks.cmp(&y.chunks))
        .then(x.distance.cmp(&y.distance))
}

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
pub(super) struct AlignScratch {
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
pub(super) fn align(
    s: &Stage,
    n1: usize,
    n2: usize,
    sc: &mut AlignScratch,
    out: &mut Vec<Option<Match>>,
) {
    let AlignScratch {
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

/// `Aligner.getCountAndChunks`: (test words matched, reference words matched, chunks).
pub(super) fn count_and_chunks(matches: &[Option<Match>]) -> (usize, usize, usize) {
    let (mut m1, mut m2, mut chunks) = (0, 0, 0);
    let mut idx = 0;
    let mut last_end: i64 = -1;
    while idx < matches.len() {
        match matches[idx] {
            None => {
                if last_end != -1 {
                    chunks += 1;
                    last_end = -1;
                }
                idx += 1;
            }
            Some(m) => {
                m1 += m.match_length();
                m2 += m.length();
                if last_end != -1 && m.match_start() as i64 != last_end {
                    chunks += 1;
                }
                idx = m.start() + m.length();
                last_end = (m.match_start() + m.match_length()) as i64;
            }
        }
    }
    if last_end != -1 {
        chunks += 1;
    }
    (m1, m2, chunks)
}
