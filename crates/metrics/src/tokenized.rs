//! The evaluated set tokenised as pycocoevalcap does: references and candidates checked to
//! cover the same images, PTB-tokenised ([`tokenize_ids`], [`tokenize_set`]) or taken as
//! already tokenised ([`TokenizedIds::from_tokenized`]).

use std::collections::BTreeMap;

use crate::corpus::Corpus;
use crate::error::MetricsError;

/// Checks that candidates and references cover the same images.
fn check_ids(
    refs: &BTreeMap<String, Vec<String>>,
    cands: &BTreeMap<String, String>,
) -> Result<(), MetricsError> {
    if let Some(id) = cands
        .keys()
        .find(|id| refs.get(*id).is_none_or(|r| r.is_empty()))
    {
        return Err(MetricsError::UnknownImage(id.clone()));
    }
    if let Some(id) = refs.keys().find(|id| !cands.contains_key(*id)) {
        return Err(MetricsError::MissingCandidate(id.clone()));
    }
    if cands.is_empty() {
        return Err(MetricsError::Empty);
    }
    Ok(())
}

/// Tokenised captions of the evaluated set, in image order.
pub struct Tokenized {
    /// Image ids.
    pub ids: Vec<String>,
    /// Tokenised candidate of each image (tokens joined with single spaces).
    pub cands: Vec<String>,
    /// Tokenised references of each image.
    pub refs: Vec<Vec<String>>,
}

/// The tokenised evaluation set as interned token ids.
pub struct TokenizedIds {
    /// Image ids, sorted.
    pub ids: Vec<String>,
    /// All references in image order, then one candidate per image.
    pub corpus: Corpus,
    /// Image i's references are captions `ref_start[i]..ref_start[i + 1]` of `corpus`.
    pub ref_start: Vec<u32>,
}

impl TokenizedIds {
    /// Already tokenised captions (tokens joined with spaces, e.g. pycocoevalcap tokenizer
    /// output), each caption as one "token": the scorers' own splits cut it into its words.
    pub fn from_tokenized(tok: &Tokenized) -> TokenizedIds {
        let mut vocab = Vec::new();
        let mut ref_start = vec![0u32];
        for rs in &tok.refs {
            vocab.extend(rs.iter().cloned());
            ref_start.push(vocab.len() as u32);
        }
        vocab.extend(tok.cands.iter().cloned());
        let n = vocab.len() as u32;
        TokenizedIds {
            ids: tok.ids.clone(),
            corpus: Corpus {
                vocab,
                toks: (0..n).collect(),
                bounds: (0..=n).collect(),
            },
            ref_start,
        }
    }

    /// Candidate caption index of image `i` in `corpus`.
    pub fn cand(&self, i: usize) -> usize {
        self.ref_start[self.ids.len()] as usize + i
    }
}

/// PTB-tokenises references and candidates into token ids as pycocoevalcap does (two runs of
/// the Java tokenizer: all references joined in image order, then all candidates).
pub fn tokenize_ids(
    refs: &BTreeMap<String, Vec<String>>,
    cands: &BTreeMap<String, String>,
) -> Result<TokenizedIds, MetricsError> {
    check_ids(refs, cands)?;
    let ids: Vec<String> = cands.keys().cloned().collect();
    let mut ref_start = Vec::with_capacity(ids.len() + 1);
    ref_start.push(0u32);
    let mut flat_refs: Vec<&str> = Vec::new();
    for id in &ids {
        flat_refs.extend(refs[id].iter().map(String::as_str));
        ref_start.push(flat_refs.len() as u32);
    }
    let flat_cands: Vec<&str> = cands.values().map(String::as_str).collect();
    let corpus = Corpus::tokenize(&[&flat_refs, &flat_cands]);
    Ok(TokenizedIds {
        ids,
        corpus,
        ref_start,
    })
}

/// PTB-tokenises references and candidates as pycocoevalcap does, as token strings.
pub fn tokenize_set(
    refs: &BTreeMap<String, Vec<String>>,
    cands: &BTreeMap<String, String>,
) -> Result<Tokenized, MetricsError> {
    let t = tokenize_ids(refs, cands)?;
    let c = &t.corpus;
    let cands = (0..t.ids.len()).map(|i| c.text(t.cand(i))).collect();
    let refs = t
        .ref_start
        .windows(2)
        .map(|w| (w[0] as usize..w[1] as usize).map(|s| c.text(s)).collect())
        .collect();
    Ok(Tokenized {
        ids: t.ids,
        cands,
        refs,
    })
}
