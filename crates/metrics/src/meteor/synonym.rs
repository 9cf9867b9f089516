//! Meteor 1.5's synonym module: WordNet synsets (`synonym/english.synsets`), the irregular-form
//! list (`synonym/english.exceptions`) and WordNet's suffix-stripping morphology, as the jar's
//! `SynonymDictionary` uses them.

use super::cache::{MapBuilder, Tables, U32s};
use crate::hash::FxHashMap;
use std::sync::Arc;

/// WordNet noun, verb and adjective suffixes tried in order by the morphology.
const SUFFIXES: [&str; 20] = [
    "s", "ses", "xes", "zes", "ches", "shes", "men", "ies", "s", "ies", "es", "es", "ed", "ed",
    "ing", "ing", "er", "est", "er", "est",
];
/// The ending that replaces each suffix.
const ENDINGS: [&str; 20] = [
    "", "s", "x", "z", "ch", "sh", "man", "y", "", "y", "e", "", "e", "", "e", "", "", "", "e", "e",
];

/// The synonym files parsed: word -> synsets, irregular form -> base forms.
pub(crate) struct Parsed {
    word_to_bases: FxHashMap<String, Vec<String>>,
    word_to_synsets: FxHashMap<String, Vec<u32>>,
}

impl Parsed {
    /// Parses the exceptions (base line, then a line of forms) and synsets (word line, then a
    /// line of synset ids) files.
    pub(crate) fn parse(exceptions: &str, synsets: &str) -> Result<Self, String> {
        let mut word_to_bases: FxHashMap<String, Vec<String>> = FxHashMap::default();
        let mut lines = exceptions.lines();
        while let Some(base) = lines.next() {
            let Some(forms) = lines.next() else { break };
            for form in java_tokens(forms) {
                word_to_bases
                    .entry(form.to_string())
                    .or_default()
                    .push(base.to_string());
            }
        }
        let mut word_to_synsets = FxHashMap::default();
        let mut lines = synsets.lines();
        while let Some(word) = lines.next() {
            let Some(ids) = lines.next() else { break };
            let mut set = ids
                .split_whitespace()
                .map(|t| {
                    t.parse::<u32>()
                        .map_err(|e| format!("synset id {t:?}: {e}"))
                })
                .collect::<Result<Vec<u32>, String>>()?;
            set.sort_unstable();
            set.dedup();
            word_to_synsets.insert(word.to_string(), set);
        }
        Ok(Parsed {
            word_to_bases,
            word_to_synsets,
        })
    }

    /// The two string maps of the resource tables: word -> synsets, and irregular form -> the
    /// union of its base forms' synsets (all the lookup needs of the bases).
    pub(crate) fn into_maps(self) -> (MapBuilder, MapBuilder) {
        let mut syn = MapBuilder::new();
        for (w, set) in &self.word_to_synsets {
            syn.push(w.as_bytes(), set);
        }
        let mut exc = MapBuilder::new();
        for (form, bases) in &self.word_to_bases {
            let mut set: Vec<u32> = bases
                .iter()
                .filter_map(|b| self.word_to_synsets.get(b))
                .flatten()
                .copied()
                .collect();
            set.sort_unstable();
            set.dedup();
            exc.push(form.as_bytes(), &set);
        }
        (syn, exc)
    }
}

/// The synonym dictionary of one language, looked up in the resource tables.
pub(crate) struct Synonyms {
    tables: Arc<Tables>,
}

impl Synonyms {
    pub(crate) fn new(tables: Arc<Tables>) -> Self {
        Synonyms { tables }
    }

    fn synsets(&self, word: &str) -> Option<U32s<'_>> {
        let m = self.tables.synsets();
        m.get(word.as_bytes()).map(|k| m.values(k))
    }

    /// `getSynSets(word) ∪ getStemSynSets(word)`, sorted.
    pub(crate) fn synsets_of(&self, word: &str) -> Vec<u32> {
        let mut out: Vec<u32> = self.synsets(word).map_or_else(Vec::new, U32s::to_vec);
        let exc = self.tables.exceptions();
        match exc.get(word.as_bytes()) {
            Some(k) => out.extend(exc.values(k).iter()),
            None => {
                if let Some(s) = self.synsets(&self.morph(word)) {
                    out.extend(s.iter());
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// WordNet's morphological base form (`SynonymDictionary.morph`): the first suffix
    /// replacement that gives a word with synsets, else the word itself for short words and
    /// words ending in "ss", else the empty string.
    fn morph(&self, word: &str) -> String {
        // The jar remembers a "ful" ending but no suffix ends in "l", so it is never appended.
        if word.ends_with("ss") || word.encode_utf16().count() <= 2 {
            return word.to_string();
        }
        let syn = self.tables.synsets();
        for (suf, end) in SUFFIXES.iter().zip(ENDINGS) {
            if let Some(stem) = word.strip_suffix(suf) {
                let cand = format!("{stem}{end}");
                if syn.get(cand.as_bytes()).is_some() {
                    return cand;
                }
            }
        }
        String::new()
    }
}

/// Whether two sorted synset lists share an element.
pub(crate) fn intersects(a: &[u32], b: &[u32]) -> bool {
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => return true,
        }
    }
    false
}

/// Java `StringTokenizer` default delimiters.
fn java_tokens(s: &str) -> impl Iterator<Item = &str> {
    s.split([' ', '\t', '\n', '\r', '\x0C'])
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn morphology_and_exceptions_reach_base_synsets() {
        let exc = "mouse\nmice\n";
        let syn = "dog\n1 2\ncanine\n2\nmouse\n7\nbox\n9\nrun\n4\n";
        let (synsets, exceptions) = Parsed::parse(exc, syn).expect("parse").into_maps();
        let s = Synonyms::new(Arc::new(crate::meteor::cache::in_memory(
            crate::meteor::cache::Parts {
                synsets,
                exceptions,
                para_vocab: MapBuilder::new(),
                phrases: MapBuilder::new(),
                offsets: vec![0],
                tokens: Vec::new(),
                max_len: 0,
            },
        )));
        assert_eq!(s.synsets_of("dog"), vec![1, 2]);
        assert_eq!(s.synsets_of("dogs"), vec![1, 2]);
        assert_eq!(s.synsets_of("mice"), vec![7]);
        assert_eq!(s.synsets_of("boxes"), vec![9]);
        assert_eq!(
            s.synsets_of("running"),
            Vec::<u32>::new(),
            "no doubling rule"
        );
        assert_eq!(s.synsets_of("runs"), vec![4]);
        assert!(intersects(&s.synsets_of("dogs"), &s.synsets_of("canine")));
        assert!(!intersects(&s.synsets_of("dog"), &s.synsets_of("box")));
        assert!(s.synsets_of("glass").is_empty());
    }
}
