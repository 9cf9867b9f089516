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
    /// The rank of each test position in `by_word1`, and the prefix sums of the positions in
    /// `by_word1` order (`pre1[r]`: the first `r`).
    rank1: Vec<u32>,
    pre1: Vec<i64>,
    /// Listed matches in the order they were found (grouped by `start` in [`Stage::finish`]).
    found: Vec<Match>,
    /// Listed matches by reference start: those of position `j` are
    /// `matches[off[j]..off[j + 1]]`, in the order they were found.
    matches: Vec<Match>,
    off: Vec<u32>,
    cov1: Vec<u32>,
    cov2: Vec<u32>,
}

/// The range of `sorted` (positions sorted by `key`, then position) whose key is `k`.
fn key_range(sorted: &[u32], key: &[u32], k: u32) -> (usize, usize) {
    let lo = sorted.partition_point(|&i| key[i as usize] < k);
    let hi = lo + sorted[lo..].partition_point(|&i| key[i as usize] <= k);
    (lo, hi)
}

/// The positions in `sorted` (sorted by `key`, then position) whose key is `k`.
fn with_key<'a>(sorted: &'a [u32], key: &[u32], k: u32) -> &'a [u32] {
    let (lo, hi) = key_range(sorted, key, k);
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
        self.rank1.clear();
        self.rank1.resize(n1, 0);
        self.pre1.clear();
        self.pre1.push(0);
        for (r, &i) in self.by_word1.iter().enumerate() {
            self.rank1[i as usize] = r as u32;
            let last = *self.pre1.last().expect("starts with 0");
            self.pre1.push(last + i64::from(i));
        }
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

    /// The matches starting at reference position `j` after the exact ones (stem, then listed),
    /// in the order the jar finds them.
    fn after_exact(&self, j: usize) -> impl Iterator<Item = Match> + '_ {
        let (_, stem) = self.single(j);
        let word = self.words2[j];
        stem.iter()
            .filter(move |&&i| self.words1[i as usize] != word)
            .map(move |&i| Match::one(1, j, i as usize))
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
/// buffers reused from step to step. Slot `k` holds its last chosen match (`chain[k]`, a node of
/// [`AlignScratch::nodes`] linked to the one before) and its used test words as bits by rank in
/// [`Stage::by_word1`] order with the sum of their positions per 64 ranks (`bits[k * w..]`,
/// `bsum[k * w..]`, `w` words of 64 ranks): an exact match list is a range of ranks, so its
/// unused words and their distances are counted a word of 64 at a time. A path's matches and
/// used reference words at and after the position searched are the definite ones, the same for
/// all paths (a chosen match starts at the position of its step and the path's next position
/// is past its end), so they are not copied.
#[derive(Default)]
struct Paths {
    heads: Vec<Partial>,
    chain: Vec<u32>,
    bits: Vec<u64>,
    bsum: Vec<u64>,
}

/// No chosen match.
const NO_NODE: u32 = u32::MAX;

impl Paths {
    fn clear(&mut self) {
        self.heads.clear();
        self.chain.clear();
        self.bits.clear();
        self.bsum.clear();
    }

    /// Appends the path of `p` from `src` with `added` chosen, as state `p` with its new slot.
    fn push_copy(
        &mut self,
        src: &Paths,
        p: &Pending,
        s: &Stage,
        n1: usize,
        nodes: &mut Vec<(Match, u32)>,
    ) {
        let w = n1.div_ceil(64);
        let parent = p.head.slot as usize;
        let b = parent * w;
        let slot = self.heads.len();
        self.chain.push(src.chain[parent]);
        self.bits.extend_from_slice(&src.bits[b..b + w]);
        self.bsum.extend_from_slice(&src.bsum[b..b + w]);
        if let Some(m) = p.added {
            nodes.push((m, src.chain[parent]));
            self.chain[slot] = (nodes.len() - 1) as u32;
            mark_bits(
                &mut self.bits[slot * w..(slot + 1) * w],
                &mut self.bsum[slot * w..(slot + 1) * w],
                s,
                &m,
            );
        }
        self.heads.push(Partial {
            slot: slot as u32,
            ..p.head
        });
    }
}

/// Marks the test words of `m` used in a path's rank bits and position sums.
fn mark_bits(bits: &mut [u64], bsum: &mut [u64], s: &Stage, m: &Match) {
    for i in m.match_start()..m.match_start() + m.match_length() {
        let r = s.rank1[i] as usize;
        let bit = 1u64 << (r % 64);
        if bits[r / 64] & bit == 0 {
            bits[r / 64] |= bit;
            bsum[r / 64] += i as u64;
        }
    }
}

/// The bits of 64-bit word `wi` that hold ranks in `a..b` (which must overlap the word).
fn word_mask(wi: usize, a: usize, b: usize) -> u64 {
    let lo = a.max(wi * 64) - wi * 64;
    let hi = b.min(wi * 64 + 64) - wi * 64;
    if hi - lo == 64 {
        u64::MAX
    } else {
        ((1u64 << (hi - lo)) - 1) << lo
    }
}

/// The number and position sum of the used test words with ranks in `a..b`.
fn used_in(bits: &[u64], bsum: &[u64], by_word1: &[u32], a: usize, b: usize) -> (i64, i64) {
    let (mut cnt, mut sum) = (0i64, 0i64);
    if a >= b {
        return (0, 0);
    }
    for wi in a / 64..=(b - 1) / 64 {
        let mask = word_mask(wi, a, b);
        let mut set = bits[wi] & mask;
        if mask == u64::MAX {
            cnt += i64::from(set.count_ones());
            sum += bsum[wi] as i64;
            continue;
        }
        while set != 0 {
            let t = set.trailing_zeros() as usize;
            set &= set - 1;
            cnt += 1;
            sum += i64::from(by_word1[wi * 64 + t]);
        }
    }
    (cnt, sum)
}

/// Up to `k` unused ranks in `a..b`, in order, into `out`.
fn unused_ranks(bits: &[u64], a: usize, b: usize, k: usize, out: &mut Vec<u32>) {
    out.clear();
    if a >= b {
        return;
    }
    for (wi, &word) in bits.iter().enumerate().take((b - 1) / 64 + 1).skip(a / 64) {
        let mask = word_mask(wi, a, b);
        let mut free = !word & mask;
        while free != 0 {
            let t = free.trailing_zeros() as usize;
            free &= free - 1;
            out.push((wi * 64 + t) as u32);
            if out.len() == k {
                return;
            }
        }
    }
}

/// A partial alignment of the next step, not copied yet: its state (`head.slot` is its parent's
/// slot in the step's [`Paths`]), the match it adds, and its place in the order the jar pushes
/// candidates (parent, then sibling; the stable sort's tie-break). The jar copies every one of
/// them (beam × the matches at a position, each as long as both lines); only the [`BEAM`] best
/// are ever extended, so only those are copied, after the sort that picks them.
#[derive(Clone, Copy)]
struct Pending {
    head: Partial,
    added: Option<Match>,
    order: u64,
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

/// Keeps the first [`BEAM`] of `pending` in the order of a stable sort by [`compare`] of
/// candidates pushed in `order`, sorted: a selection, then a sort of those.
fn keep_best(pending: &mut Vec<Pending>) {
    let by = |x: &Pending, y: &Pending| compare(&x.head, &y.head).then(x.order.cmp(&y.order));
    if pending.len() > BEAM {
        pending.select_nth_unstable_by(BEAM - 1, by);
        pending.truncate(BEAM);
    }
    pending.sort_unstable_by(by);
}

/// Reused buffers of [`align`] (one per thread).
#[derive(Default)]
pub(super) struct AlignScratch {
    prev: Paths,
    cur: Paths,
    pending: Vec<Pending>,
    next: Vec<Pending>,
    ranks: Vec<u32>,
    classes: Vec<((i32, i32), usize)>,
    /// The chosen matches of all kept paths, each linked to the one its path chose before.
    nodes: Vec<(Match, u32)>,
    /// The definite matches by reference position and the words they use (reference, then
    /// test).
    def_matches: Vec<Option<Match>>,
    def_used: Vec<bool>,
}

/// The jar's `Aligner.align` search: definite one-to-one matches, then a beam search over
/// reference positions. Writes the chosen match starting at each reference position to `out`.
///
/// Memory: the [`BEAM`] surviving paths (each as long as both lines) and one small
/// [`Pending`] per candidate pushed; the jar copies every candidate's path.
///
/// Time: a parent's children by exact match are the unused test words of one range of ranks,
/// in order; their distances grow along it (each adds its earlier unused siblings' distances)
/// and all but the one continuing the parent's chunk share their weighted matches and chunks,
/// so only the first `BEAM + 1` unused ones and that one can be kept: only those are pushed,
/// found and their distances summed a word of 64 ranks at a time, and the parent's own
/// distance (the sum over all of them) likewise. Stem and listed matches are visited as before.
/// Every candidate that can be kept is pushed with the jar's score and order, so the kept ones
/// are the jar's.
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
        ranks,
        classes,
        nodes,
        def_matches,
        def_used,
    } = sc;
    let w = n1.div_ceil(64);
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
    cur.chain.push(NO_NODE);
    nodes.clear();
    def_matches.clear();
    def_matches.resize(n2, None);
    def_used.clear();
    def_used.resize(n2 + n1, false);
    cur.bits.resize(w, 0);
    cur.bsum.resize(w, 0);
    for (i, chosen) in def_matches.iter_mut().enumerate() {
        if s.count_at(i) != 1 {
            continue;
        }
        if let Some(m) = s.at(i).next() {
            let overlap = (0..m.length()).any(|k| s.cov2[i + k] != 1)
                || (0..m.match_length()).any(|k| s.cov1[m.match_start() + k] != 1);
            if !overlap {
                *chosen = Some(m);
                set_used(def_used, n2, &m);
                mark_bits(&mut cur.bits, &mut cur.bsum, s, &m);
            }
        }
    }
    next.clear();
    next.push(Pending {
        head: start,
        added: None,
        order: 0,
    });
    for current in 0..=n2 {
        // The previous step's paths become the parents of its candidates.
        std::mem::swap(prev, cur);
        std::mem::swap(pending, next);
        next.clear();
        // Java's stable `Collections.sort`, of which the first `BEAM` are kept.
        keep_best(pending);
        cur.clear();
        for p in pending.iter() {
            cur.push_copy(prev, p, s, n1, nodes);
        }
        let first = cur.heads.first().copied();
        let (lo, hi, split) = if current < n2 {
            let (lo, hi) = key_range(&s.by_word1, &s.words1, s.words2[current]);
            let split = lo + s.by_word1[lo..hi].partition_point(|&i| (i as usize) < current);
            (lo, hi, split)
        } else {
            (0, 0, 0)
        };
        for (pi, p) in cur.heads.iter().enumerate() {
            let order = (pi as u64) << 32;
            let keep = |next: &mut Vec<Pending>, head: Partial, seq: u64| {
                next.push(Pending {
                    head,
                    added: None,
                    order: order | seq,
                })
            };
            let mut path = *p;
            let slot = p.slot as usize;
            if current == n2 {
                if path.last_match_end != -1 {
                    path.chunks += 1;
                }
                keep(next, path, 0);
                continue;
            }
            // Positions before the path's next one are used by its last match; from it on, only
            // definite matches use reference words.
            if current < path.idx || def_used[current] {
                if current < path.idx {
                    keep(next, path, 0);
                } else if let Some(m) = def_matches.get(path.idx).copied().flatten() {
                    path.take(&m);
                    path.distance += (m.start() as i64 - m.match_start() as i64).abs();
                    keep(next, path, 0);
                }
                continue;
            }
            let bits = &cur.bits[slot * w..(slot + 1) * w];
            let bsum = &cur.bsum[slot * w..(slot + 1) * w];
            // The summed distance of the unused exact matches with ranks in `a..b`.
            let dist = |a: usize, b: usize| -> i64 {
                let j = current as i64;
                let side = |a: usize, b: usize| -> (i64, i64) {
                    if a >= b {
                        return (0, 0);
                    }
                    let (uc, us) = used_in(bits, bsum, &s.by_word1, a, b);
                    (b as i64 - a as i64 - uc, s.pre1[b] - s.pre1[a] - us)
                };
                let (lc, ls) = side(a, b.min(split));
                let (rc, rs) = side(a.max(split), b);
                (lc * j - ls) + (rs - rc * j)
            };
            let add = |next: &mut Vec<Pending>, mut np: Partial, m: Match, seq: u64| {
                np.take(&m);
                next.push(Pending {
                    head: np,
                    added: Some(m),
                    order: order | seq,
                });
            };
            // Exact matches: the first `BEAM + 1` unused (at most one of them continues the
            // chunk; the others' class keeps at most `BEAM`), and the one continuing the chunk.
            unused_ranks(bits, lo, hi, BEAM + 2, ranks);
            let all = ranks.len() <= BEAM + 1;
            ranks.truncate(BEAM + 1);
            let mut running = 0i64;
            for &r in ranks.iter() {
                let i = s.by_word1[r as usize] as usize;
                let mut np = path;
                np.distance += running;
                add(
                    next,
                    np,
                    Match::one(0, current, i),
                    u64::from(r) - lo as u64,
                );
                running += (current as i64 - i as i64).abs();
            }
            if !all {
                let last = *ranks.last().expect("BEAM + 1 ranks") as usize;
                if let Ok(lme) = usize::try_from(path.last_match_end) {
                    if lme < n1 && s.words1[lme] == s.words2[current] {
                        let r = s.rank1[lme] as usize;
                        if r > last && bits[r / 64] & (1 << (r % 64)) == 0 {
                            let mut np = path;
                            np.distance += dist(lo, r);
                            add(next, np, Match::one(0, current, lme), (r - lo) as u64);
                        }
                    }
                }
                running = dist(lo, hi);
            }
            debug_assert_eq!(running, dist(lo, hi));
            // The jar adds each match's distance to the parent path, not to the new one.
            path.distance += running;
            // Stem and listed matches, visited: a child ranks after every earlier sibling with
            // its (weighted matches, chunks), so past `BEAM` such siblings it is not pushed.
            classes.clear();
            for (k, m) in s.after_exact(current).enumerate() {
                let m = &m;
                if def_used[m.start()..m.start() + m.length()].contains(&true)
                    || (m.match_start()..m.match_start() + m.match_length()).any(|i| {
                        let r = s.rank1[i] as usize;
                        bits[r / 64] & (1 << (r % 64)) != 0
                    })
                {
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
                if *seen <= BEAM {
                    next.push(Pending {
                        head: np,
                        added: Some(*m),
                        order: order | (hi - lo + k) as u64,
                    });
                }
                path.distance += (m.start() as i64 - m.match_start() as i64).abs();
            }
            if path.last_match_end != -1 {
                path.chunks += 1;
                path.last_match_end = -1;
            }
            path.idx += 1;
            keep(next, path, u64::from(u32::MAX));
        }
        if next.is_empty() {
            if let Some(p) = first {
                next.push(Pending {
                    head: p,
                    added: None,
                    order: 0,
                });
            }
        }
    }
    out.clear();
    keep_best(next);
    match next.first() {
        Some(p) => {
            out.extend_from_slice(def_matches);
            let mut node = cur.chain[p.head.slot as usize];
            if let Some(m) = p.added {
                out[m.start()] = Some(m);
            }
            while node != NO_NODE {
                let (m, before) = nodes[node as usize];
                out[m.start()] = Some(m);
                node = before;
            }
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

#[cfg(test)]
#[path = "align_before.rs"]
mod before;

#[cfg(test)]
#[path = "align_tests.rs"]
mod tests;
