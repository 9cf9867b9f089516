//! The tokenised evaluation set as interned token ids: one arena of ids for all captions.

use crate::hash::FxHashMap;
use crate::ptb::{tokenize_line_into, Scratch};
use rayon::prelude::*;

/// Captions per parallel tokenisation chunk.
const CHUNK: usize = 1024;

/// Captions as slices of one arena of token ids, with the token texts.
#[derive(Clone, Debug, Default)]
pub struct Corpus {
    /// Text of each token id.
    pub vocab: Vec<String>,
    /// Token ids of all captions, concatenated.
    pub toks: Vec<u32>,
    /// Caption `s` is `toks[bounds[s]..bounds[s + 1]]`.
    pub bounds: Vec<u32>,
}

impl Corpus {
    /// Number of captions.
    pub fn len(&self) -> usize {
        self.bounds.len().saturating_sub(1)
    }

    /// Whether there are no captions.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Token ids of caption `s`.
    pub fn caption(&self, s: usize) -> &[u32] {
        &self.toks[self.bounds[s] as usize..self.bounds[s + 1] as usize]
    }

    /// Caption `s` as its tokens joined with single spaces.
    pub fn text(&self, s: usize) -> String {
        let mut out = String::new();
        for (k, &t) in self.caption(s).iter().enumerate() {
            if k > 0 {
                out.push(' ');
            }
            out.push_str(&self.vocab[t as usize]);
        }
        out
    }

    /// PTB-tokenises runs of captions, each run as one input of the Java tokenizer (captions
    /// joined by newlines, so a caption's last token may depend on the next caption).
    pub fn tokenize(runs: &[&[&str]]) -> Corpus {
        // (caption, the next caption of its run).
        let lines: Vec<(&str, Option<&str>)> = runs
            .iter()
            .flat_map(|run| {
                run.iter()
                    .enumerate()
                    .map(|(i, c)| (*c, run.get(i + 1).copied()))
            })
            .collect();
        let chunks: Vec<Local> = lines
            .par_chunks(CHUNK)
            .map(|chunk| {
                let mut local = Local::default();
                let mut scratch = Scratch::default();
                for &(c, next) in chunk {
                    tokenize_line_into::<true>(c, next, &mut scratch, &mut |t| local.push(t));
                    local.bounds.push(local.toks.len() as u32);
                }
                local
            })
            .collect();
        // Merge the chunk vocabularies into one.
        let mut map: FxHashMap<String, u32> = FxHashMap::default();
        let mut out = Corpus {
            vocab: Vec::new(),
            toks: Vec::with_capacity(chunks.iter().map(|c| c.toks.len()).sum()),
            bounds: Vec::with_capacity(lines.len() + 1),
        };
        out.bounds.push(0);
        for local in chunks {
            let remap: Vec<u32> = local
                .vocab
                .into_iter()
                .map(|w| match map.get(w.as_str()) {
                    Some(&id) => id,
                    None => {
                        let id = out.vocab.len() as u32;
                        map.insert(w.clone(), id);
                        out.vocab.push(w);
                        id
                    }
                })
                .collect();
            let base = out.toks.len() as u32;
            out.toks
                .extend(local.toks.iter().map(|&t| remap[t as usize]));
            out.bounds.extend(local.bounds.iter().map(|&b| base + b));
        }
        out
    }

    /// The captions re-split as pycocoevalcap's scorers split the joined tokens: each token is
    /// replaced by the pieces `split` cuts it into (interned in a new vocabulary of pieces);
    /// `empty` is the pieces of an empty caption.
    pub fn resplit<'a>(
        &'a self,
        split: impl Fn(&'a str) -> Vec<&'a str>,
        empty: &[&'a str],
    ) -> Corpus {
        let mut map: FxHashMap<&str, u32> = FxHashMap::default();
        let mut vocab: Vec<String> = Vec::new();
        let mut id = |w: &'a str| -> u32 {
            *map.entry(w).or_insert_with(|| {
                vocab.push(w.to_string());
                vocab.len() as u32 - 1
            })
        };
        let pieces: Vec<Vec<u32>> = self
            .vocab
            .iter()
            .map(|w| split(w).into_iter().map(&mut id).collect())
            .collect();
        let empty: Vec<u32> = empty.iter().map(|w| id(w)).collect();
        let mut toks = Vec::with_capacity(self.toks.len());
        let mut bounds = Vec::with_capacity(self.bounds.len());
        bounds.push(0);
        for s in 0..self.len() {
            let cap = self.caption(s);
            if cap.is_empty() {
                toks.extend_from_slice(&empty);
            }
            for &t in cap {
                match pieces[t as usize].as_slice() {
                    [one] => toks.push(*one),
                    many => toks.extend_from_slice(many),
                }
            }
            bounds.push(toks.len() as u32);
        }
        Corpus {
            vocab,
            toks,
            bounds,
        }
    }
}

/// Tokens of one chunk with a chunk-local vocabulary.
#[derive(Default)]
struct Local {
    map: FxHashMap<String, u32>,
    vocab: Vec<String>,
    toks: Vec<u32>,
    bounds: Vec<u32>,
}

impl Local {
    fn push(&mut self, t: &str) {
        let id = match self.map.get(t) {
            Some(&id) => id,
            None => {
                let id = self.vocab.len() as u32;
                self.map.insert(t.to_string(), id);
                self.vocab.push(t.to_string());
                id
            }
        };
        self.toks.push(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_share_one_vocabulary_and_resplit_keeps_empty_captions() {
        let c = Corpus::tokenize(&[&["A dog.", "", "a cat"], &["The dog!"]]);
        assert_eq!(c.len(), 4);
        assert_eq!(c.text(0), "a dog");
        assert_eq!(c.text(1), "");
        assert_eq!(c.text(3), "the dog");
        assert_eq!(c.caption(0)[1], c.caption(3)[1]);
        let sp = c.resplit(|w| w.split(' ').collect(), &[""]);
        assert_eq!(sp.caption(1).len(), 1);
        let ws = c.resplit(|w| w.split_whitespace().collect(), &[]);
        assert!(ws.caption(1).is_empty());
        assert_eq!(ws.caption(2).len(), 2);
    }
}
