//! METEOR 1.5 (`-l en -norm`) statistics and scoring.
//!
//! Implemented: the jar's `-norm` normalisation, the exact, stem (Snowball English), synonym
//! (WordNet synsets with the jar's exception list and morphology) and paraphrase
//! (`data/paraphrase-en.gz`) matchers, the jar's beam-search alignment (beam 40, internal module
//! weights 1.0/0.5/0.5/0.5 truncated to integers as in `PartialAlignment`, including its quirk of
//! adding a match's distance to the parent path), function-word counting, reference selection
//! (first best) and the corpus aggregation (summed statistics, with the jar's exception for
//! perfectly matched single-chunk segments).
//!
//! Resources: the function-word list (`function/english.words`), the non-breaking prefixes
//! (`nonbreaking/english.prefixes`) and the synonym files (`synonym/english.*`) are read at run
//! time from `meteor-1.5.jar`, the paraphrase table from `data/paraphrase-en.gz` next to it;
//! nothing from the distribution is embedded in this crate. [`Meteor::full`] loads them once per
//! process and directory. [`Meteor::exact_stem`] looks for the jar in the directory named by
//! `CAPLAB_METEOR_DIR`; without it, it uses NO function words (every word counts as content, so
//! delta has no effect) and no non-breaking prefixes, which can differ from the jar.

pub mod cache;

mod align;
mod norm;
mod paraphrase;
mod score;
mod synonym;

use crate::error::MetricsError;
use crate::hash::FxHashMap;
use crate::tokenized::TokenizedIds;
use align::{align, count_and_chunks, AlignScratch, Match, Stage};
use cache::U32s;
use norm::{normalize, parse_nbp, Nbp};
use paraphrase::Paraphrases;
use rayon::prelude::*;
pub use score::{corpus_contribution, score_from_stats, MODULE_WEIGHTS, PARAMS, STATS};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use synonym::{intersects, Synonyms};

/// Metric key of the full METEOR 1.5 (exact, stem, synonym, paraphrase).
pub const METEOR_FULL: &str = "METEOR";
/// Metric key of METEOR computed with the exact and stem modules only.
pub const METEOR_EXACT_STEM: &str = "METEOR(exact+stem)";
/// File name of the Meteor jar inside a METEOR distribution directory.
pub const JAR: &str = "meteor-1.5.jar";
/// Path of the paraphrase table inside a METEOR distribution directory.
pub const PARAPHRASE_TABLE: &str = "data/paraphrase-en.gz";
/// The jar's synonym resources for English.
const SYNONYM_FILES: [&str; 2] = ["synonym/english.exceptions", "synonym/english.synsets"];

struct Resources {
    function_words: HashSet<String>,
    nbp: HashMap<String, Nbp>,
    stemmer: rust_stemmers::Stemmer,
    synonyms: Option<Synonyms>,
    paraphrases: Option<Paraphrases>,
    /// The synonym and paraphrase tables (full METEOR only).
    tables: Option<Arc<cache::Tables>>,
}

/// What the matchers need of one word, computed once per distinct word of a scoring call.
struct WordInfo {
    stem: u32,
    synsets: Box<[u32]>,
    /// One bit per synset id modulo 256: words whose masks share no bit share no synset.
    synset_mask: [u64; 4],
    para: Option<u32>,
    /// The paraphrase trie node of the word as a one-word phrase.
    para_node: Option<u32>,
    is_fn: bool,
}

/// The [`WordInfo`] of each distinct normalised word of a scoring call, by word id.
struct Lexicon {
    info: Vec<WordInfo>,
}

/// Word ids of the distinct normalised words of a scoring call (in order of appearance).
#[derive(Default)]
struct Interner {
    ids: FxHashMap<String, u32>,
    words: Vec<String>,
}

impl Interner {
    fn id(&mut self, w: &str) -> u32 {
        if let Some(&i) = self.ids.get(w) {
            return i;
        }
        let i = self.words.len() as u32;
        self.ids.insert(w.to_string(), i);
        self.words.push(w.to_string());
        i
    }

    fn line(&mut self, words: &[String]) -> Vec<u32> {
        words.iter().map(|w| self.id(w)).collect()
    }
}

/// A candidate and its references, as word ids.
type Segment = (Vec<u32>, Vec<Vec<u32>>);

/// One side of an alignment: word ids into a [`Lexicon`].
struct Side<'a> {
    words: Vec<u32>,
    para: Vec<Option<u32>>,
    /// Paraphrase-table entries whose reference phrase starts at each position (full METEOR):
    /// those of position `j` are `paths[path_off[j]..path_off[j + 1]]`.
    paths: Vec<(usize, u32)>,
    path_off: Vec<u32>,
    lex: &'a Lexicon,
}

impl Side<'_> {
    fn info(&self, i: usize) -> &WordInfo {
        &self.lex.info[self.words[i] as usize]
    }

    /// The paraphrase-table entries starting at position `j` (none without paraphrases).
    fn paths_at(&self, j: usize) -> &[(usize, u32)] {
        match (self.path_off.get(j), self.path_off.get(j + 1)) {
            (Some(&a), Some(&b)) => &self.paths[a as usize..b as usize],
            _ => &[],
        }
    }
}

/// Per-thread buffers of the aligner, reused from segment to segment.
#[derive(Default)]
struct Scratch {
    /// Edges of the paraphrase trie looked up so far (see [`Paraphrases::paths_into`]).
    edges: FxHashMap<(u32, u32), Option<u32>>,
    stage: Stage,
    align: AlignScratch,
    best: Vec<Option<Match>>,
}

/// A configured METEOR scorer.
#[derive(Clone)]
pub struct Meteor {
    name: &'static str,
    res: Arc<Resources>,
}

impl std::fmt::Debug for Meteor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Meteor")
            .field("name", &self.name)
            .field("function_words", &self.res.function_words.len())
            .finish()
    }
}

fn read_jar_entry(jar: &Path, name: &str) -> Result<String, MetricsError> {
    let err = |e: String| MetricsError::Meteor(format!("{}: {name}: {e}", jar.display()));
    let f = std::fs::File::open(jar).map_err(|e| err(e.to_string()))?;
    let mut z = zip::ZipArchive::new(f).map_err(|e| err(e.to_string()))?;
    let mut entry = z.by_name(name).map_err(|e| err(e.to_string()))?;
    let mut s = String::new();
    entry
        .read_to_string(&mut s)
        .map_err(|e| err(e.to_string()))?;
    Ok(s)
}

/// Parses the jar's synonym files and the paraphrase table into the resource tables, with the
/// SHA-256 of their bytes (the synonym entries' text, then the paraphrase file).
fn build_tables(jar: &Path, table: &Path) -> Result<(cache::Parts, [u8; 32]), MetricsError> {
    let exceptions = read_jar_entry(jar, SYNONYM_FILES[0])?;
    let synsets = read_jar_entry(jar, SYNONYM_FILES[1])?;
    let (synonyms, paraphrases) = std::thread::scope(|s| {
        let p = s.spawn(|| paraphrase::Parsed::load(table));
        let syn = synonym::Parsed::parse(&exceptions, &synsets)
            .map_err(|e| MetricsError::Meteor(format!("{}: {e}", jar.display())));
        let para = p
            .join()
            .unwrap_or_else(|_| Err(MetricsError::Meteor("paraphrase loader panicked".into())));
        (syn, para)
    });
    let (synsets_map, exceptions_map) = synonyms?.into_maps();
    let (para, para_hash) = paraphrases?;
    let (para_vocab, phrases, offsets, tokens, max_len) = para.into_parts();
    let mut sha = Sha256::new();
    for part in [SYNONYM_FILES[0], SYNONYM_FILES[1]] {
        sha.update(part.as_bytes());
    }
    sha.update(Sha256::digest(exceptions.as_bytes()));
    sha.update(Sha256::digest(synsets.as_bytes()));
    sha.update(para_hash);
    let parts = cache::Parts {
        synsets: synsets_map,
        exceptions: exceptions_map,
        para_vocab,
        phrases,
        offsets,
        tokens,
        max_len,
    };
    Ok((parts, sha.finalize().into()))
}

impl Meteor {
    /// METEOR with the exact and stem modules only, reported as `METEOR(exact+stem)`.
    ///
    /// Reads the function words and non-breaking prefixes from `$CAPLAB_METEOR_DIR/meteor-1.5.jar`
    /// when that variable is set; otherwise uses none (see the module documentation).
    pub fn exact_stem() -> Result<Self, MetricsError> {
        match std::env::var_os("CAPLAB_METEOR_DIR") {
            Some(d) => Self::exact_stem_with(Some(Path::new(&d))),
            None => Self::exact_stem_with(None),
        }
    }

    /// METEOR(exact+stem) with the resources of the jar in `dir` (or none when `dir` is `None`).
    pub fn exact_stem_with(dir: Option<&Path>) -> Result<Self, MetricsError> {
        let (function_words, nbp) = match dir {
            Some(dir) => {
                let jar = dir.join(JAR);
                if !jar.is_file() {
                    return Err(MetricsError::Meteor(format!(
                        "{} does not contain {JAR}",
                        dir.display()
                    )));
                }
                let fw = read_jar_entry(&jar, "function/english.words")?;
                let nbp = read_jar_entry(&jar, "nonbreaking/english.prefixes")?;
                (fw.lines().map(str::to_string).collect(), parse_nbp(&nbp))
            }
            None => (HashSet::new(), HashMap::new()),
        };
        Ok(Meteor {
            name: METEOR_EXACT_STEM,
            res: Arc::new(Resources {
                function_words,
                nbp,
                stemmer: rust_stemmers::Stemmer::create(rust_stemmers::Algorithm::English),
                synonyms: None,
                paraphrases: None,
                tables: None,
            }),
        })
    }

    /// Checks, without loading them, that `dir` holds the resources of full METEOR 1.5: the jar
    /// with its synonym files and the paraphrase table.
    pub fn full_available(dir: &Path) -> Result<(), MetricsError> {
        let jar = dir.join(JAR);
        let err = |m: String| MetricsError::Meteor(format!("{}: {m}", dir.display()));
        let f = std::fs::File::open(&jar).map_err(|e| err(format!("{JAR}: {e}")))?;
        let mut z = zip::ZipArchive::new(f).map_err(|e| err(format!("{JAR}: {e}")))?;
        for name in SYNONYM_FILES {
            z.by_name(name)
                .map_err(|e| err(format!("{JAR}: {name}: {e}")))?;
        }
        if !dir.join(PARAPHRASE_TABLE).is_file() {
            return Err(err(format!("{PARAPHRASE_TABLE} is missing")));
        }
        Ok(())
    }

    /// Full METEOR 1.5 (exact, stem, synonym and paraphrase modules) with the resources in
    /// `dir`, the directory holding `meteor-1.5.jar` and `data/paraphrase-en.gz`. The resources
    /// are loaded once per process for each directory.
    pub fn full(dir: &Path) -> Result<Self, MetricsError> {
        static CACHE: OnceLock<Mutex<HashMap<PathBuf, Arc<Resources>>>> = OnceLock::new();
        let key = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
        // Held while loading, so concurrent callers wait for one load instead of repeating it.
        let mut cache = CACHE
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(res) = cache.get(&key) {
            return Ok(Meteor {
                name: METEOR_FULL,
                res: Arc::clone(res),
            });
        }
        Self::full_available(dir)?;
        let base = Self::exact_stem_with(Some(dir))?;
        let jar = dir.join(JAR);
        let table = dir.join(PARAPHRASE_TABLE);
        let tables = Arc::new(cache::load_or_build(&[&jar, &table], || {
            build_tables(&jar, &table)
        })?);
        let base = Arc::try_unwrap(base.res).map_err(|_| {
            MetricsError::Meteor("internal: exact+stem resources are shared".into())
        })?;
        let res = Arc::new(Resources {
            synonyms: Some(Synonyms::new(Arc::clone(&tables))),
            paraphrases: Some(Paraphrases::new(Arc::clone(&tables))),
            tables: Some(tables),
            ..base
        });
        cache.insert(key, Arc::clone(&res));
        Ok(Meteor {
            name: METEOR_FULL,
            res,
        })
    }

    /// The metric key this scorer reports under.
    pub fn metric_name(&self) -> &'static str {
        self.name
    }

    /// SHA-256 (64 hex digits) of the synonym and paraphrase resources full METEOR was loaded
    /// from (the jar's `synonym/english.exceptions` and `synonym/english.synsets` entries and
    /// `data/paraphrase-en.gz`); `None` for METEOR(exact+stem).
    pub fn resources_hash(&self) -> Option<String> {
        self.res.tables.as_ref().map(|t| {
            t.content_hash()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect()
        })
    }

    /// Where full METEOR's resource tables are cached (`None`: not cached, e.g. an unwritable
    /// cache directory) and whether this process built them (a cold start) instead of mapping
    /// the cached file; `None` for METEOR(exact+stem). See [`cache`].
    pub fn resource_cache(&self) -> Option<(Option<&Path>, bool)> {
        self.res
            .tables
            .as_ref()
            .map(|t| (t.path.as_deref(), t.built))
    }

    /// The METEOR part of a [`crate::Signature`]: `full-1.5+<first 8 hex digits of
    /// resources_hash>`, `exact+stem-1.5`, or `exact+stem-1.5,no-function-words` when the jar's
    /// function words were not available.
    pub fn signature(&self) -> String {
        match self.resources_hash() {
            Some(h) => format!("full-1.5+{}", &h[..8]),
            None if self.res.function_words.is_empty() => {
                "exact+stem-1.5,no-function-words".to_string()
            }
            None => "exact+stem-1.5".to_string(),
        }
    }

    /// Statistics of one tokenised candidate against its tokenised references: those of the
    /// reference with the highest segment score (the first one on ties), as the jar.
    pub fn segment_stats(&self, cand: &str, refs: &[String]) -> Vec<f64> {
        self.corpus_segment_stats(&[(cand.to_string(), refs.to_vec())])
            .pop()
            .unwrap_or_else(|| vec![0.0; STATS])
    }

    /// [`Meteor::segment_stats`] of many (candidate, references) segments, in parallel; each
    /// distinct word's stem, synsets and paraphrase id are computed once.
    pub fn corpus_segment_stats(&self, segments: &[(String, Vec<String>)]) -> Vec<Vec<f64>> {
        // pycocoevalcap's wrapper: `|||` removed from the hypothesis, double spaces collapsed.
        let normed: Vec<(Vec<String>, Vec<Vec<String>>)> = segments
            .par_iter()
            .map(|(cand, refs)| {
                let cand = cand.replace("|||", "").replace("  ", " ");
                let refs = refs.iter().map(|r| normalize(r, &self.res.nbp)).collect();
                (normalize(&cand, &self.res.nbp), refs)
            })
            .collect();
        let mut words = Interner::default();
        let lines: Vec<Segment> = normed
            .iter()
            .map(|(c, rs)| (words.line(c), rs.iter().map(|r| words.line(r)).collect()))
            .collect();
        self.score_segments(&lines, &self.lexicon(&words.words))
    }

    /// [`Meteor::corpus_segment_stats`] of a tokenised set, image by image (the candidate
    /// against the image's references), taking the words from the token ids where it can.
    pub(crate) fn tokenized_stats(&self, tok: &TokenizedIds) -> Vec<Vec<f64>> {
        let c = &tok.corpus;
        let mut words = Interner::default();
        // A line whose tokens are all ASCII letters and digits, joined by single spaces, takes
        // `normalize`'s fast path (nothing to remove for the candidate either): its words are
        // its tokens in lower case, interned once per token id.
        let fast: Vec<Option<u32>> = c
            .vocab
            .iter()
            .map(|t| {
                (!t.is_empty() && t.bytes().all(|b| b.is_ascii_alphanumeric()))
                    .then(|| words.id(&t.to_ascii_lowercase()))
            })
            .collect();
        let line = |s: usize, cand: bool| -> Result<Vec<u32>, Vec<String>> {
            let toks = c.caption(s);
            toks.iter()
                .map(|&t| fast[t as usize])
                .collect::<Option<Vec<u32>>>()
                .ok_or_else(|| {
                    let text = c.text(s);
                    if cand {
                        // pycocoevalcap's wrapper, as in `corpus_segment_stats`.
                        normalize(&text.replace("|||", "").replace("  ", " "), &self.res.nbp)
                    } else {
                        normalize(&text, &self.res.nbp)
                    }
                })
        };
        type Raw = (
            Result<Vec<u32>, Vec<String>>,
            Vec<Result<Vec<u32>, Vec<String>>>,
        );
        let raw: Vec<Raw> = (0..tok.ids.len())
            .into_par_iter()
            .map(|i| {
                let refs = (tok.ref_start[i]..tok.ref_start[i + 1])
                    .map(|s| line(s as usize, false))
                    .collect();
                (line(tok.cand(i), true), refs)
            })
            .collect();
        let mut ids = |l: Result<Vec<u32>, Vec<String>>| match l {
            Ok(ids) => ids,
            Err(ws) => words.line(&ws),
        };
        let lines: Vec<Segment> = raw
            .into_iter()
            .map(|(c, rs)| (ids(c), rs.into_iter().map(&mut ids).collect()))
            .collect();
        self.score_segments(&lines, &self.lexicon(&words.words))
    }

    /// The [`WordInfo`] of each interned word.
    fn lexicon(&self, words: &[String]) -> Lexicon {
        // (stem, synsets, paraphrase id, one-word paraphrase node, function word) of each word.
        type Info = (String, Box<[u32]>, Option<u32>, Option<u32>, bool);
        let infos: Vec<Info> = words
            .par_iter()
            .map(|w| {
                let synsets = match &self.res.synonyms {
                    Some(syn) => syn.synsets_of(w).into_boxed_slice(),
                    None => Box::default(),
                };
                let pt = self.res.paraphrases.as_ref();
                let para = pt.and_then(|p| p.translate(w));
                let node = pt.zip(para).and_then(|(p, id)| p.node(id));
                let stem = self.res.stemmer.stem(w).into_owned();
                let is_fn = self.res.function_words.contains(w);
                (stem, synsets, para, node, is_fn)
            })
            .collect();
        let mut stems: FxHashMap<String, u32> = FxHashMap::default();
        let info = infos
            .into_iter()
            .map(|(stem, synsets, para, para_node, is_fn)| {
                let next = stems.len() as u32;
                WordInfo {
                    stem: *stems.entry(stem).or_insert(next),
                    synset_mask: synsets.iter().fold([0; 4], |mut m, &s| {
                        m[(s / 64 % 4) as usize] |= 1u64 << (s % 64);
                        m
                    }),
                    synsets,
                    para,
                    para_node,
                    is_fn,
                }
            })
            .collect();
        Lexicon { info }
    }

    /// The statistics of each segment (its candidate against its references, as word ids).
    fn score_segments(&self, lines: &[Segment], lex: &Lexicon) -> Vec<Vec<f64>> {
        // Each segment is scored on its own (the scratch buffers carry no state between
        // segments), so the statistics do not depend on the number of threads.
        lines
            .par_iter()
            .map_init(Scratch::default, |scratch, (c, rs)| {
                let tst = self.side(c, lex, &mut scratch.edges);
                let mut best: Option<(f64, [f64; STATS])> = None;
                for r in rs {
                    let rf = self.side(r, lex, &mut scratch.edges);
                    let st = self.align_stats(&tst, &rf, scratch);
                    let sc = score_from_stats(&st);
                    if best.as_ref().is_none_or(|(b, _)| sc > *b) {
                        best = Some((sc, st));
                    }
                }
                best.map_or_else(|| vec![0.0; STATS], |(_, s)| s.to_vec())
            })
            .collect()
    }

    /// One normalised line as word ids.
    fn side<'a>(
        &self,
        words: &[u32],
        lex: &'a Lexicon,
        edges: &mut FxHashMap<(u32, u32), Option<u32>>,
    ) -> Side<'a> {
        let words = words.to_vec();
        let para: Vec<Option<u32>> = words.iter().map(|&w| lex.info[w as usize].para).collect();
        let mut paths = Vec::new();
        let mut path_off = Vec::new();
        if let Some(pt) = &self.res.paraphrases {
            path_off.reserve(para.len() + 1);
            path_off.push(0);
            for (j, &w) in words.iter().enumerate() {
                let first = lex.info[w as usize].para_node;
                pt.paths_into(&para, j, first, edges, &mut paths);
                path_off.push(paths.len() as u32);
            }
        }
        Side {
            words,
            para,
            paths,
            path_off,
            lex,
        }
    }

    /// Aligns test words (`a`) with reference words (`b`) and returns the statistics.
    fn align_stats(&self, a: &Side, b: &Side, scratch: &mut Scratch) -> [f64; STATS] {
        let (w1, w2) = (&a.words, &b.words);
        let (n1, n2) = (w1.len(), w2.len());
        // Identical lines only need exact matches (the jar's guard against beam search errors).
        let identical = w1 == w2;
        let stage = &mut scratch.stage;
        let stems = |side: &Side| -> Vec<u32> {
            (0..side.words.len()).map(|i| side.info(i).stem).collect()
        };
        stage.reset(
            (w1.as_slice(), &stems(a)),
            (w2.as_slice(), &stems(b)),
            !identical,
        );
        if !identical {
            if self.res.synonyms.is_some() {
                for (j, y) in w2.iter().enumerate() {
                    for (i, x) in w1.iter().enumerate() {
                        let (ai, bj) = (a.info(i), b.info(j));
                        if x != y
                            && (0..4).any(|k| ai.synset_mask[k] & bj.synset_mask[k] != 0)
                            && intersects(&ai.synsets, &bj.synsets)
                        {
                            stage.add(Match::one(2, j, i));
                        }
                    }
                }
            }
            if let Some(pt) = &self.res.paraphrases {
                paraphrase_matches(pt, a, b, stage);
            }
        }
        stage.finish();
        let best = &mut scratch.best;
        align(stage, n1, n2, &mut scratch.align, best);
        let mut s = [0.0; STATS];
        s[0] = n1 as f64;
        s[1] = n2 as f64;
        s[2] = (0..n1).filter(|&i| a.info(i).is_fn).count() as f64;
        s[3] = (0..n2).filter(|&j| b.info(j).is_fn).count() as f64;
        for m in best.iter().flatten() {
            let base = 4 + 4 * usize::from(m.module);
            for k in 0..m.match_length() {
                s[base
                    + if a.info(m.match_start() + k).is_fn {
                        2
                    } else {
                        0
                    }] += 1.0;
            }
            for k in 0..m.length() {
                s[base + 1 + if b.info(m.start() + k).is_fn { 2 } else { 0 }] += 1.0;
            }
        }
        let (m1, m2, chunks) = count_and_chunks(best);
        s[20] = chunks as f64;
        s[21] = m1 as f64;
        s[22] = m2 as f64;
        s
    }
}

/// Whether `line[at..]` starts with `words` (an empty phrase matches anywhere, as in the jar).
fn starts_with(line: &[Option<u32>], at: usize, words: U32s<'_>) -> bool {
    words
        .iter()
        .enumerate()
        .all(|(k, w)| line.get(at + k) == Some(&Some(w)))
}

/// The positions of `line` where `words` starts, in order.
fn phrase_starts<'a>(line: &'a [Option<u32>], words: U32s<'a>) -> impl Iterator<Item = usize> + 'a {
    let first = words.iter().next();
    (0..line.len()).filter(move |&at| {
        // Most phrases fail on their first word: compare it before decoding the rest.
        first.is_none_or(|w| line[at] == Some(w)) && starts_with(line, at, words)
    })
}

/// `ParaphraseMatcher.match`: paraphrases in the test line of reference phrases, then
/// paraphrases in the reference line of test phrases.
fn paraphrase_matches(pt: &Paraphrases, a: &Side, b: &Side, s: &mut Stage) {
    let (line1, line2) = (&a.para, &b.para);
    for j in 0..line2.len() {
        for &(len, e) in b.paths_at(j) {
            let words = pt.paraphrase(e);
            for i in phrase_starts(line1, words) {
                s.add(Match::new(3, j, len, i, words.len()));
            }
        }
    }
    for i in 0..line1.len() {
        for &(len, e) in a.paths_at(i) {
            let words = pt.paraphrase(e);
            for j in phrase_starts(line2, words) {
                s.add(Match::new(3, j, words.len(), i, len));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_and_stem_alignment_without_resources() {
        let m = Meteor::exact_stem_with(None).expect("no resources needed");
        assert_eq!(m.metric_name(), METEOR_EXACT_STEM);
        let refs = vec!["a dog runs on the grass".to_string()];
        let same = m.segment_stats("a dog runs on the grass", &refs);
        assert!((score_from_stats(&same) - 1.0).abs() < 1e-12);
        assert_eq!(corpus_contribution(same)[20], 0.0);
        // "running" / "runs" match through the stem module (slot 8 = stem tstContent).
        let st = m.segment_stats("a dog running on the grass", &refs);
        assert_eq!(st[4], 5.0);
        assert_eq!(st[8], 1.0);
        assert_eq!(st[20], 1.0);
        let s = score_from_stats(&st);
        assert!(s > 0.5 && s < 1.0, "{s}");
        // Reordering creates chunks; no references gives zero statistics.
        let st = m.segment_stats("on the grass a dog runs", &refs);
        assert_eq!(st[20], 2.0);
        assert_eq!(m.segment_stats("a dog", &[]), vec![0.0; STATS]);
    }
}
