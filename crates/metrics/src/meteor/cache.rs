//! METEOR 1.5's synonym and paraphrase resources in a compact binary form, cached on disk and
//! memory-mapped, so that only the first run of a process pays for parsing `paraphrase-en.gz`
//! (about 2 s) and later runs pay milliseconds.
//!
//! The cache file lives in [`cache_dir`] (`$CAPLAB_CACHE_DIR`, else `$XDG_CACHE_HOME/caplab`,
//! else `~/.cache/caplab`) and is named by a hash of the identity (canonical path, size and
//! modification time) of `meteor-1.5.jar` and `data/paraphrase-en.gz`: when either file changes
//! the name changes and the tables are rebuilt. The file also records the SHA-256 of the resource
//! bytes it was built from (the jar's synonym entries and the paraphrase table), which
//! [`crate::Signature`] reports. It is written to a temporary file in the same directory and
//! renamed into place, so a concurrent reader never sees a partial file; a file that fails the
//! header or size checks is rebuilt. When the directory cannot be written, the tables are
//! used from memory and nothing is cached.
//!
//! Layout (all integers little-endian `u32`, every section 4-byte aligned): a header
//! (`MAGIC`, version, the 32-byte content hash, the paraphrase table's longest phrase, then the
//! offset and length of each section), then the sections. A string map is stored as key
//! offsets, value offsets, an open-addressing slot table and the key bytes and values.

use crate::error::MetricsError;
use crate::hash::FxHasher;
use std::hash::Hasher;
use std::io::Write;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"CLMETEOR";
const VERSION: u32 = 2;
/// Sections: 4 string maps of 5 arrays each, then the paraphrase offsets and tokens.
const SECTIONS: usize = 4 * 5 + 2;
const HEADER: usize = 8 + 4 + 32 + 4 + SECTIONS * 8;

/// Environment variable naming the cache directory.
pub const CACHE_DIR_ENV: &str = "CAPLAB_CACHE_DIR";

/// The directory of caplab's caches: `$CAPLAB_CACHE_DIR`, else `$XDG_CACHE_HOME/caplab`, else
/// `$HOME/.cache/caplab`, else `<temp dir>/caplab-cache`.
pub fn cache_dir() -> PathBuf {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    env(CACHE_DIR_ENV)
        .or_else(|| env("XDG_CACHE_HOME").map(|d| d.join("caplab")))
        .or_else(|| env("HOME").map(|d| d.join(".cache").join("caplab")))
        .unwrap_or_else(|| std::env::temp_dir().join("caplab-cache"))
}

/// Little-endian `u32` array view over bytes.
#[derive(Clone, Copy)]
pub(crate) struct U32s<'a>(&'a [u8]);

impl<'a> U32s<'a> {
    pub(crate) fn len(&self) -> usize {
        self.0.len() / 4
    }

    pub(crate) fn get(&self, i: usize) -> u32 {
        let b = &self.0[4 * i..4 * i + 4];
        u32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }

    pub(crate) fn slice(&self, a: usize, b: usize) -> U32s<'a> {
        U32s(&self.0[4 * a..4 * b])
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = u32> + 'a {
        self.0
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn to_vec(self) -> Vec<u32> {
        self.iter().collect()
    }
}

fn key_hash(key: &[u8]) -> u64 {
    let mut h = FxHasher::default();
    h.write(key);
    h.write_usize(key.len());
    h.finish()
}

/// The bytes of the tables: a read-only mapping of the cache file, or built in memory.
enum Bytes {
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
}

/// The resource tables (see the module documentation).
pub(crate) struct Tables {
    bytes: Bytes,
    sections: [(usize, usize); SECTIONS],
    /// Where they came from: the cache file, or `None` when built in memory only.
    pub(crate) path: Option<PathBuf>,
    /// Whether this process built them (a cold start) rather than mapping a cached file.
    pub(crate) built: bool,
}

/// A string map of the tables: key -> index (its insertion order) and values.
#[derive(Clone, Copy)]
pub(crate) struct StrMap<'a> {
    key_off: U32s<'a>,
    val_off: U32s<'a>,
    slots: U32s<'a>,
    keys: &'a [u8],
    values: U32s<'a>,
}

impl<'a> StrMap<'a> {
    /// Index of `key`, if present.
    pub(crate) fn get(&self, key: &[u8]) -> Option<usize> {
        let m = self.slots.len();
        if m == 0 {
            return None;
        }
        let mut s = (key_hash(key) as usize) & (m - 1);
        loop {
            let v = self.slots.get(s);
            if v == 0 {
                return None;
            }
            let k = v as usize - 1;
            let (a, b) = (
                self.key_off.get(k) as usize,
                self.key_off.get(k + 1) as usize,
            );
            if &self.keys[a..b] == key {
                return Some(k);
            }
            s = (s + 1) & (m - 1);
        }
    }

    /// The values of entry `k`.
    pub(crate) fn values(&self, k: usize) -> U32s<'a> {
        self.values.slice(
            self.val_off.get(k) as usize,
            self.val_off.get(k + 1) as usize,
        )
    }
}

/// Builds the bytes of a string map from its entries in index order.
#[derive(Default)]
pub(crate) struct MapBuilder {
    key_off: Vec<u32>,
    val_off: Vec<u32>,
    keys: Vec<u8>,
    values: Vec<u32>,
    hashes: Vec<u64>,
}

impl MapBuilder {
    pub(crate) fn new() -> Self {
        MapBuilder {
            key_off: vec![0],
            val_off: vec![0],
            ..Default::default()
        }
    }

    /// Appends an entry (keys must be distinct); returns its index.
    pub(crate) fn push(&mut self, key: &[u8], values: &[u32]) -> u32 {
        let k = self.hashes.len() as u32;
        self.keys.extend_from_slice(key);
        self.key_off.push(self.keys.len() as u32);
        self.values.extend_from_slice(values);
        self.val_off.push(self.values.len() as u32);
        self.hashes.push(key_hash(key));
        k
    }

    fn finish(self) -> [Vec<u8>; 5] {
        let n = self.hashes.len();
        let m = (2 * n).next_power_of_two().max(2);
        let mut slots = vec![0u32; m];
        for (k, h) in self.hashes.iter().enumerate() {
            let mut s = (*h as usize) & (m - 1);
            while slots[s] != 0 {
                s = (s + 1) & (m - 1);
            }
            slots[s] = k as u32 + 1;
        }
        let le = |v: &[u32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        [
            le(&self.key_off),
            le(&self.val_off),
            le(&slots),
            self.keys,
            le(&self.values),
        ]
    }
}

/// Everything the tables are built from.
pub(crate) struct Parts {
    /// Word -> synset ids (sorted).
    pub(crate) synsets: MapBuilder,
    /// Irregular form -> the union of its base forms' synset ids (sorted).
    pub(crate) exceptions: MapBuilder,
    /// Paraphrase-table word -> id (its index), no values.
    pub(crate) para_vocab: MapBuilder,
    /// Reference phrase (its word ids as little-endian bytes) -> entries, in file order.
    pub(crate) phrases: MapBuilder,
    /// Paraphrase words of entry `e`: `tokens[offsets[e]..offsets[e + 1]]`.
    pub(crate) offsets: Vec<u32>,
    pub(crate) tokens: Vec<u32>,
    /// Longest reference phrase.
    pub(crate) max_len: u32,
}

impl Parts {
    fn serialize(self, content_hash: &[u8; 32]) -> Vec<u8> {
        let mut secs: Vec<Vec<u8>> = Vec::with_capacity(SECTIONS);
        for m in [self.synsets, self.exceptions, self.para_vocab, self.phrases] {
            secs.extend(m.finish());
        }
        let le = |v: &[u32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        secs.push(le(&self.offsets));
        secs.push(le(&self.tokens));
        let mut out = Vec::with_capacity(HEADER + secs.iter().map(|s| s.len() + 3).sum::<usize>());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(content_hash);
        out.extend_from_slice(&self.max_len.to_le_bytes());
        let mut pos = HEADER;
        let mut table = Vec::with_capacity(SECTIONS * 8);
        for s in &secs {
            table.extend_from_slice(&(pos as u32).to_le_bytes());
            table.extend_from_slice(&(s.len() as u32).to_le_bytes());
            pos += s.len().div_ceil(4) * 4;
        }
        out.extend_from_slice(&table);
        for s in secs {
            let pad = s.len().div_ceil(4) * 4 - s.len();
            out.extend_from_slice(&s);
            out.extend(std::iter::repeat_n(0u8, pad));
        }
        out
    }
}

fn read_u32(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4)
        .map(|x| u32::from_le_bytes([x[0], x[1], x[2], x[3]]))
}

impl Tables {
    fn bytes(&self) -> &[u8] {
        match &self.bytes {
            Bytes::Mapped(m) => m,
            Bytes::Owned(v) => v,
        }
    }

    /// Checks the header and section table of `bytes`.
    fn open(bytes: Bytes, path: Option<PathBuf>, built: bool) -> Option<Tables> {
        let b: &[u8] = match &bytes {
            Bytes::Mapped(m) => m,
            Bytes::Owned(v) => v,
        };
        if b.len() < HEADER || &b[..8] != MAGIC || read_u32(b, 8)? != VERSION {
            return None;
        }
        let mut sections = [(0, 0); SECTIONS];
        for (k, s) in sections.iter_mut().enumerate() {
            let at = 8 + 4 + 32 + 4 + 8 * k;
            let (off, len) = (read_u32(b, at)? as usize, read_u32(b, at + 4)? as usize);
            if off % 4 != 0 || off.checked_add(len)? > b.len() {
                return None;
            }
            *s = (off, len);
        }
        Some(Tables {
            bytes,
            sections,
            path,
            built,
        })
    }

    fn section(&self, k: usize) -> &[u8] {
        let (off, len) = self.sections[k];
        &self.bytes()[off..off + len]
    }

    fn map(&self, m: usize) -> StrMap<'_> {
        let s = |k: usize| U32s(self.section(5 * m + k));
        StrMap {
            key_off: s(0),
            val_off: s(1),
            slots: s(2),
            keys: self.section(5 * m + 3),
            values: s(4),
        }
    }

    pub(crate) fn synsets(&self) -> StrMap<'_> {
        self.map(0)
    }

    pub(crate) fn exceptions(&self) -> StrMap<'_> {
        self.map(1)
    }

    pub(crate) fn para_vocab(&self) -> StrMap<'_> {
        self.map(2)
    }

    pub(crate) fn phrases(&self) -> StrMap<'_> {
        self.map(3)
    }

    pub(crate) fn para_offsets(&self) -> U32s<'_> {
        U32s(self.section(20))
    }

    pub(crate) fn para_tokens(&self) -> U32s<'_> {
        U32s(self.section(21))
    }

    pub(crate) fn max_len(&self) -> usize {
        read_u32(self.bytes(), 8 + 4 + 32).unwrap_or(0) as usize
    }

    /// SHA-256 of the resource bytes the tables were built from.
    pub(crate) fn content_hash(&self) -> [u8; 32] {
        let mut h = [0u8; 32];
        h.copy_from_slice(&self.bytes()[12..44]);
        h
    }
}

/// The cache key of the resource files: a hash of their canonical paths, sizes and
/// modification times.
fn file_key(files: &[&Path]) -> Result<u64, MetricsError> {
    let mut h = FxHasher::default();
    h.write(MAGIC);
    h.write_u32(VERSION);
    for f in files {
        let io = |source| MetricsError::Io {
            path: f.to_path_buf(),
            source,
        };
        let meta = std::fs::metadata(f).map_err(io)?;
        let canon = f.canonicalize().map_err(io)?;
        h.write(canon.as_os_str().as_encoded_bytes());
        h.write_u64(meta.len());
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        h.write_u128(mtime);
    }
    Ok(h.finish())
}

/// The tables for the resource files `files`: mapped from the cache when a valid file for them
/// exists, else built with `build` (which returns the parts and the content hash), written to
/// the cache (atomically) and used.
pub(crate) fn load_or_build(
    files: &[&Path],
    build: impl FnOnce() -> Result<(Parts, [u8; 32]), MetricsError>,
) -> Result<Tables, MetricsError> {
    load_or_build_in(&cache_dir(), files, build)
}

/// [`load_or_build`] with the cache in `dir`.
pub(crate) fn load_or_build_in(
    dir: &Path,
    files: &[&Path],
    build: impl FnOnce() -> Result<(Parts, [u8; 32]), MetricsError>,
) -> Result<Tables, MetricsError> {
    let key = file_key(files)?;
    let path = dir.join(format!("meteor-1.5-{key:016x}.bin"));
    if let Ok(f) = std::fs::File::open(&path) {
        // SAFETY: the cache file is only ever replaced by rename, never written in place, so
        // the mapping's contents cannot change under us (unless another program truncates it,
        // which the header and size checks of `open` do not fully guard against).
        if let Ok(m) = unsafe { memmap2::Mmap::map(&f) } {
            if let Some(t) = Tables::open(Bytes::Mapped(m), Some(path.clone()), false) {
                return Ok(t);
            }
        }
    }
    let (parts, hash) = build()?;
    let bytes = parts.serialize(&hash);
    let written = write_atomically(dir, &path, &bytes).is_ok();
    Tables::open(Bytes::Owned(bytes), written.then_some(path), true)
        .ok_or_else(|| MetricsError::Meteor("internal: malformed resource tables".into()))
}

/// Writes `bytes` to `path` through a temporary file in `dir` and a rename.
fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let tmp = dir.join(format!(".tmp-{}-{nanos}", std::process::id()));
    let res = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

/// Tables built in memory (no cache file).
#[cfg(test)]
pub(crate) fn in_memory(parts: Parts) -> Tables {
    Tables::open(Bytes::Owned(parts.serialize(&[0; 32])), None, true).expect("valid tables")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_maps_round_trip_through_bytes() {
        let mut m = MapBuilder::new();
        for (k, w) in ["dog", "cat", "", "a longer key"].iter().enumerate() {
            assert_eq!(m.push(w.as_bytes(), &[k as u32, 7]), k as u32);
        }
        let parts = Parts {
            synsets: m,
            exceptions: MapBuilder::new(),
            para_vocab: MapBuilder::new(),
            phrases: MapBuilder::new(),
            offsets: vec![0, 2],
            tokens: vec![5, 6],
            max_len: 3,
        };
        let t = Tables::open(Bytes::Owned(parts.serialize(&[9; 32])), None, true).expect("open");
        let s = t.synsets();
        assert_eq!(s.get(b"cat"), Some(1));
        assert_eq!(s.values(1).to_vec(), vec![1, 7]);
        assert_eq!(s.get(b""), Some(2));
        assert_eq!(s.get(b"a longer key"), Some(3));
        assert_eq!(s.get(b"cow"), None);
        assert_eq!(t.exceptions().get(b"dog"), None);
        assert_eq!(t.para_tokens().to_vec(), vec![5, 6]);
        assert_eq!(t.max_len(), 3);
        assert_eq!(t.content_hash(), [9; 32]);
        assert!(Tables::open(Bytes::Owned(vec![0; HEADER]), None, true).is_none());
    }

    fn parts(n: u32) -> Parts {
        let mut m = MapBuilder::new();
        m.push(b"word", &[n]);
        Parts {
            synsets: m,
            exceptions: MapBuilder::new(),
            para_vocab: MapBuilder::new(),
            phrases: MapBuilder::new(),
            offsets: vec![0],
            tokens: Vec::new(),
            max_len: 1,
        }
    }

    #[test]
    fn cache_is_built_once_mapped_after_and_rebuilt_when_a_resource_changes() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let cache = tmp.path().join("cache");
        let res = tmp.path().join("resource.txt");
        std::fs::write(&res, "v1").expect("write");
        let mut builds = 0;
        let mut load = |n: u32| {
            load_or_build_in(&cache, &[&res], || {
                builds += 1;
                Ok((parts(n), [n as u8; 32]))
            })
            .expect("load")
        };
        let cold = load(1);
        assert!(cold.built && cold.path.as_ref().is_some_and(|p| p.is_file()));
        let warm = load(2);
        assert!(!warm.built, "the second load maps the cached file");
        assert_eq!(warm.content_hash(), [1; 32]);
        assert_eq!(warm.synsets().values(0).to_vec(), vec![1]);
        // A changed resource (size and mtime) gets a new cache file.
        std::fs::write(&res, "v2 changed").expect("write");
        let changed = load(3);
        assert!(changed.built);
        assert_eq!(changed.content_hash(), [3; 32]);
        // A corrupt cache file is rebuilt.
        let path = changed.path.clone().expect("cached");
        drop((cold, warm, changed));
        std::fs::write(&path, b"garbage").expect("write");
        let rebuilt = load(4);
        assert!(rebuilt.built);
        assert_eq!(rebuilt.content_hash(), [4; 32]);
        assert_eq!(builds, 3);
        // Only the cache files are left (no temporary files).
        let names: Vec<String> = std::fs::read_dir(&cache)
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            names.iter().all(|n| n.starts_with("meteor-1.5-")),
            "{names:?}"
        );
    }

    #[test]
    fn unwritable_cache_dir_still_gives_tables() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let res = tmp.path().join("resource.txt");
        std::fs::write(&res, "v1").expect("write");
        // A file where the directory should be: nothing can be written below it.
        let blocker = tmp.path().join("not-a-dir");
        std::fs::write(&blocker, "x").expect("write");
        let t = load_or_build_in(&blocker.join("cache"), &[&res], || Ok((parts(5), [5; 32])))
            .expect("tables");
        assert!(t.built && t.path.is_none());
        assert_eq!(t.synsets().values(0).to_vec(), vec![5]);
    }
}
