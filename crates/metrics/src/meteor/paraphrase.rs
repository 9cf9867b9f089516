//! Meteor 1.5's paraphrase table (`data/paraphrase-en.gz`, read as the jar's
//! `ParaphraseTransducer`): entries of three lines (probability, reference phrase, paraphrase),
//! interned into word ids. Reference phrases are looked up by exact id sequence; the matches of
//! one start position come out by phrase length, then in file order, as the jar's trie emits them.

use super::cache::{MapBuilder, Tables, U32s};
use crate::error::MetricsError;
use crate::hash::FxHashMap;
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;

/// The paraphrase table as parsed (the builder of the resource tables' paraphrase maps).
pub(crate) struct Parsed {
    vocab: FxHashMap<Box<[u8]>, u32>,
    /// Reference phrase -> index into `groups`.
    phrases: FxHashMap<Box<[u32]>, u32>,
    /// Entry indices of each reference phrase, in file order.
    groups: Vec<Vec<u32>>,
    /// Paraphrase words of entry `e`: `tokens[offsets[e]..offsets[e + 1]]`.
    offsets: Vec<u32>,
    tokens: Vec<u32>,
    max_len: usize,
}

/// A `Read` that hashes what it reads.
struct HashingReader<R> {
    inner: R,
    sha: Sha256,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sha.update(&buf[..n]);
        Ok(n)
    }
}

/// A `Read` over chunks decompressed on another thread.
struct ChunkReader {
    rx: Receiver<std::io::Result<Vec<u8>>>,
    cur: Vec<u8>,
    pos: usize,
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.cur.len() {
            match self.rx.recv() {
                Ok(chunk) => {
                    self.cur = chunk?;
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

fn tokens(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    line.split(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0C'))
        .filter(|t| !t.is_empty())
}

fn trim_eol(line: &mut Vec<u8>) {
    while matches!(line.last(), Some(b'\n' | b'\r')) {
        line.pop();
    }
}

impl Parsed {
    /// Reads a gzipped paraphrase table (decompressing on a second thread); also returns the
    /// SHA-256 of the file's bytes.
    pub(crate) fn load(path: &Path) -> Result<(Self, [u8; 32]), MetricsError> {
        let io_err = |source| MetricsError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io_err)?;
        let (tx, rx) = sync_channel::<std::io::Result<Vec<u8>>>(8);
        let worker = std::thread::spawn(move || {
            let hashing = HashingReader {
                inner: file,
                sha: Sha256::new(),
            };
            let mut gz =
                flate2::read::MultiGzDecoder::new(BufReader::with_capacity(1 << 20, hashing));
            loop {
                let mut chunk = vec![0u8; 1 << 20];
                let mut filled = 0;
                while filled < chunk.len() {
                    match gz.read(&mut chunk[filled..]) {
                        Ok(0) => break,
                        Ok(n) => filled += n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            return None;
                        }
                    }
                }
                if filled == 0 {
                    // Hash what follows the last gzip member too (normally nothing).
                    let mut rest = gz.into_inner().into_inner();
                    let _ = std::io::copy(&mut rest, &mut std::io::sink());
                    return Some(<[u8; 32]>::from(rest.sha.finalize()));
                }
                chunk.truncate(filled);
                if tx.send(Ok(chunk)).is_err() {
                    return None;
                }
            }
        });
        let reader = ChunkReader {
            rx,
            cur: Vec::new(),
            pos: 0,
        };
        let out = Self::parse(BufReader::with_capacity(1 << 16, reader)).map_err(io_err)?;
        match worker.join() {
            Ok(Some(hash)) => Ok((out, hash)),
            _ => Err(MetricsError::Meteor(format!(
                "{}: reading the paraphrase table failed",
                path.display()
            ))),
        }
    }

    /// Parses the decompressed table.
    fn parse(mut r: impl BufRead) -> std::io::Result<Self> {
        let mut t = Parsed {
            vocab: FxHashMap::default(),
            phrases: FxHashMap::default(),
            groups: Vec::new(),
            offsets: vec![0],
            tokens: Vec::new(),
            max_len: 0,
        };
        let (mut prob, mut refl, mut para) = (Vec::new(), Vec::new(), Vec::new());
        let mut prev_ref: Option<Vec<u8>> = None;
        let mut group: Option<u32> = None;
        let mut ids = Vec::new();
        loop {
            prob.clear();
            if r.read_until(b'\n', &mut prob)? == 0 {
                break;
            }
            refl.clear();
            para.clear();
            if r.read_until(b'\n', &mut refl)? == 0 || r.read_until(b'\n', &mut para)? == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "truncated paraphrase entry",
                ));
            }
            trim_eol(&mut refl);
            if prev_ref.as_deref() != Some(refl.as_slice()) {
                ids.clear();
                for tok in tokens(&refl) {
                    ids.push(t.intern(tok));
                }
                group = if ids.is_empty() {
                    // An empty reference phrase sits on the trie's root, which never emits.
                    None
                } else {
                    t.max_len = t.max_len.max(ids.len());
                    let next = t.groups.len() as u32;
                    let g = *t
                        .phrases
                        .entry(ids.clone().into_boxed_slice())
                        .or_insert(next);
                    if g == next {
                        t.groups.push(Vec::new());
                    }
                    Some(g)
                };
                prev_ref = Some(refl.clone());
            }
            let entry = (t.offsets.len() - 1) as u32;
            for tok in tokens(&para) {
                let id = t.intern(tok);
                t.tokens.push(id);
            }
            t.offsets.push(t.tokens.len() as u32);
            if let Some(g) = group {
                t.groups[g as usize].push(entry);
            }
        }
        Ok(t)
    }

    fn intern(&mut self, tok: &[u8]) -> u32 {
        if let Some(&i) = self.vocab.get(tok) {
            return i;
        }
        let i = self.vocab.len() as u32;
        self.vocab.insert(tok.into(), i);
        i
    }

    /// The resource-table parts: word -> id, reference phrase -> entries, entry words.
    pub(crate) fn into_parts(self) -> (MapBuilder, MapBuilder, Vec<u32>, Vec<u32>, u32) {
        let mut words: Vec<&[u8]> = vec![&[]; self.vocab.len()];
        for (w, &i) in &self.vocab {
            words[i as usize] = w;
        }
        let mut vocab = MapBuilder::new();
        for w in words {
            vocab.push(w, &[]);
        }
        let mut phrases = MapBuilder::new();
        let mut key = Vec::new();
        for (p, &g) in &self.phrases {
            key.clear();
            key.extend(p.iter().flat_map(|w| w.to_le_bytes()));
            phrases.push(&key, &self.groups[g as usize]);
        }
        // Every proper prefix of a phrase is a node of the jar's trie: stored without entries,
        // so that a lookup can stop at the first word that leaves the trie.
        let mut prefixes: crate::hash::FxHashSet<&[u32]> = Default::default();
        for p in self.phrases.keys() {
            for l in 1..p.len() {
                if !self.phrases.contains_key(&p[..l]) {
                    prefixes.insert(&p[..l]);
                }
            }
        }
        for p in prefixes {
            key.clear();
            key.extend(p.iter().flat_map(|w| w.to_le_bytes()));
            phrases.push(&key, &[]);
        }
        (
            vocab,
            phrases,
            self.offsets,
            self.tokens,
            self.max_len as u32,
        )
    }
}

/// The paraphrase table, looked up in the resource tables.
pub(crate) struct Paraphrases {
    tables: Arc<Tables>,
}

impl Paraphrases {
    pub(crate) fn new(tables: Arc<Tables>) -> Self {
        Paraphrases { tables }
    }

    /// The table's id of a word (`ParaphraseTransducer.translate`; `None` is the jar's -1).
    pub(crate) fn translate(&self, word: &str) -> Option<u32> {
        self.tables
            .para_vocab()
            .get(word.as_bytes())
            .map(|k| k as u32)
    }

    /// Entries whose reference phrase starts `line` at `start`, as (phrase length, entry),
    /// shortest phrases first (`getReferencePaths`).
    #[cfg(test)]
    pub(crate) fn paths(&self, line: &[Option<u32>], start: usize) -> Vec<(usize, u32)> {
        let mut out = Vec::new();
        let first = line[start].and_then(|w| self.node(w));
        self.paths_into(line, start, first, &mut Default::default(), &mut out);
        out
    }

    /// The trie node of the one-word phrase `word` (a table id), if any.
    pub(crate) fn node(&self, word: u32) -> Option<u32> {
        self.tables
            .phrases()
            .get(&word.to_le_bytes())
            .map(|k| k as u32)
    }

    /// [`Paraphrases::paths`], appended to `out`; `first` is [`Paraphrases::node`] of
    /// `line[start]` (looked up once per distinct word by the caller). `edges` remembers the
    /// trie's edges looked up so far: (node, next word) -> the node of the longer phrase.
    pub(crate) fn paths_into(
        &self,
        line: &[Option<u32>],
        start: usize,
        first: Option<u32>,
        edges: &mut FxHashMap<(u32, u32), Option<u32>>,
        out: &mut Vec<(usize, u32)>,
    ) {
        let phrases = self.tables.phrases();
        // Keys are at most max_len words: a stack buffer for the usual lengths.
        let mut key = [0u8; 64];
        let mut heap = Vec::new();
        let max = self.tables.max_len();
        let mut node: Option<u32> = None;
        for (n, w) in line[start..].iter().take(max).enumerate() {
            let Some(w) = *w else { break };
            let len = 4 * (n + 1);
            let k = if len <= key.len() {
                key[4 * n..len].copy_from_slice(&w.to_le_bytes());
                &key[..len]
            } else {
                if heap.is_empty() {
                    heap.extend_from_slice(&key);
                }
                heap.extend_from_slice(&w.to_le_bytes());
                &heap[..]
            };
            // Not a node of the trie: no longer phrase starts here either.
            node = match node {
                None => first,
                Some(parent) => *edges
                    .entry((parent, w))
                    .or_insert_with(|| phrases.get(k).map(|k| k as u32)),
            };
            let Some(k) = node else { break };
            out.extend(phrases.values(k as usize).iter().map(|e| (n + 1, e)));
        }
    }

    /// The paraphrase words of an entry.
    pub(crate) fn paraphrase(&self, entry: u32) -> U32s<'_> {
        let e = entry as usize;
        let o = self.tables.para_offsets();
        self.tables
            .para_tokens()
            .slice(o.get(e) as usize, o.get(e + 1) as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_come_out_by_length_then_file_order() {
        let text = "0.5\na dog\na puppy\n0.1\na\none\n0.2\na dog\nthe hound\n0.3\na\nan\n";
        let (para_vocab, phrases, offsets, tokens, max_len) =
            Parsed::parse(text.as_bytes()).expect("parse").into_parts();
        let t = Paraphrases::new(Arc::new(crate::meteor::cache::in_memory(
            crate::meteor::cache::Parts {
                synsets: MapBuilder::new(),
                exceptions: MapBuilder::new(),
                para_vocab,
                phrases,
                offsets,
                tokens,
                max_len,
            },
        )));
        let line: Vec<Option<u32>> = ["a", "dog", "zzz"].iter().map(|w| t.translate(w)).collect();
        assert_eq!(line[2], None);
        let p = t.paths(&line, 0);
        let lens: Vec<usize> = p.iter().map(|x| x.0).collect();
        assert_eq!(lens, vec![1, 1, 2, 2]);
        let words = |e: u32| -> Vec<u32> { t.paraphrase(e).to_vec() };
        assert_eq!(words(p[0].1), vec![t.translate("one").expect("one")]);
        assert_eq!(words(p[1].1), vec![t.translate("an").expect("an")]);
        assert_eq!(words(p[3].1).len(), 2);
        assert!(t.paths(&line, 1).is_empty());
        assert!(t.paths(&line, 2).is_empty());
        assert!(Parsed::parse("0.1\na\n".as_bytes()).is_err());
    }
}
