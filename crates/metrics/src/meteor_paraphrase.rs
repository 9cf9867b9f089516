//! Meteor 1.5's paraphrase table (`data/paraphrase-en.gz`, read as the jar's
//! `ParaphraseTransducer`): entries of three lines (probability, reference phrase, paraphrase),
//! interned into word ids. Reference phrases are looked up by exact id sequence; the matches of
//! one start position come out by phrase length, then in file order, as the jar's trie emits them.

use crate::hash::FxHashMap;
use crate::MetricsError;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver};

/// The paraphrase table.
pub(crate) struct Paraphrases {
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

impl Paraphrases {
    /// Reads a gzipped paraphrase table (decompressing on a second thread).
    pub(crate) fn load(path: &Path) -> Result<Self, MetricsError> {
        let io_err = |source| MetricsError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io_err)?;
        let (tx, rx) = sync_channel::<std::io::Result<Vec<u8>>>(8);
        let worker = std::thread::spawn(move || {
            let mut gz = flate2::read::MultiGzDecoder::new(BufReader::with_capacity(1 << 20, file));
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
                            return;
                        }
                    }
                }
                if filled == 0 {
                    return;
                }
                chunk.truncate(filled);
                if tx.send(Ok(chunk)).is_err() {
                    return;
                }
            }
        });
        let reader = ChunkReader {
            rx,
            cur: Vec::new(),
            pos: 0,
        };
        let out = Self::parse(BufReader::with_capacity(1 << 16, reader)).map_err(io_err);
        let _ = worker.join();
        out
    }

    /// Parses the decompressed table.
    fn parse(mut r: impl BufRead) -> std::io::Result<Self> {
        let mut t = Paraphrases {
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

    /// The table's id of a word (`ParaphraseTransducer.translate`; `None` is the jar's -1).
    pub(crate) fn translate(&self, word: &str) -> Option<u32> {
        self.vocab.get(word.as_bytes()).copied()
    }

    /// Entries whose reference phrase starts `line` at `start`, as (phrase length, entry),
    /// shortest phrases first (`getReferencePaths`).
    pub(crate) fn paths(&self, line: &[Option<u32>], start: usize) -> Vec<(usize, u32)> {
        let mut out = Vec::new();
        let mut key = Vec::with_capacity(self.max_len);
        for w in line[start..].iter().take(self.max_len) {
            let Some(w) = w else { break };
            key.push(*w);
            if let Some(&g) = self.phrases.get(key.as_slice()) {
                out.extend(self.groups[g as usize].iter().map(|&e| (key.len(), e)));
            }
        }
        out
    }

    /// The paraphrase words of an entry.
    pub(crate) fn paraphrase(&self, entry: u32) -> &[u32] {
        let e = entry as usize;
        &self.tokens[self.offsets[e] as usize..self.offsets[e + 1] as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_come_out_by_length_then_file_order() {
        let text = "0.5\na dog\na puppy\n0.1\na\none\n0.2\na dog\nthe hound\n0.3\na\nan\n";
        let t = Paraphrases::parse(text.as_bytes()).expect("parse");
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
        assert!(Paraphrases::parse("0.1\na\n".as_bytes()).is_err());
    }
}
