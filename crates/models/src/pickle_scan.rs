//! A pre-scan of `torch.save` files before burn-store reads them.
//!
//! burn-store 0.21 allocates from length fields before checking the file holds that many
//! bytes: a pickle string's 4-byte length (`vec![0; len]`, then `read_exact`), a zip entry's
//! declared size (`Vec::with_capacity`), a legacy storage's element count (`vec![0; size]` when
//! its data is read) and a tensor's shape (zeros of that many elements when its storage is
//! short). A file of a few hundred bytes could ask for gigabytes. This module reads the file
//! the way burn-store picks its format (zip, then tar, then the legacy magic, then a plain
//! pickle), walks every pickle burn-store parses opcode by opcode (protocols 0–5), and refuses
//! any length argument larger than the bytes left, any unknown opcode, and zip entries whose
//! declared size their compressed bytes cannot hold; errors give the byte offset. It returns the
//! most tensor bytes the file can hold, which [`check_tensor_sizes`] holds every tensor to.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Cursor, Read, Seek, SeekFrom};
use std::path::Path;

use burn_store::pytorch::pickle_reader::storage_type_to_element_size;
use burn_store::TensorSnapshot;

/// The first pickle of PyTorch's legacy format (0.1.10 – 1.5): `PROTO 2`, the magic number
/// `0x1950a86a20f9469cfc6c` as `LONG1`, `STOP`; burn-store detects the format by it.
const LEGACY_MAGIC: [u8; 15] = [
    0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e,
];

/// The pickles at the start of a legacy file: magic number, protocol version, system info,
/// the object (the state_dict), the storage keys; the storages' raw bytes follow.
const LEGACY_PICKLES: usize = 5;

/// The most a deflate stream expands (its maximal ratio is 1032:1), with room for a header.
fn deflate_bound(compressed: u64) -> u64 {
    compressed.saturating_mul(1032).saturating_add(1024)
}

/// Checks `path` before burn-store reads it; returns the most tensor bytes it can hold.
/// The error says where (a byte offset, in a zip or tar entry where it is one) and what.
pub(crate) fn scan_torch_file(path: &Path) -> Result<u64, String> {
    let io_error = |e: io::Error| e.to_string();
    let file = File::open(path).map_err(io_error)?;
    let len = file.metadata().map_err(io_error)?.len();
    // burn-store tries zip first, with the same crate and version.
    if let Ok(archive) = zip::ZipArchive::new(BufReader::new(file)) {
        return scan_zip(archive, len);
    }
    let mut reader = BufReader::new(File::open(path).map_err(io_error)?);
    let mut head = Vec::with_capacity(263);
    (&mut reader)
        .take(263)
        .read_to_end(&mut head)
        .map_err(io_error)?;
    reader.seek(SeekFrom::Start(0)).map_err(io_error)?;
    if head.len() == 263 && &head[257..262] == b"ustar" {
        return scan_tar(reader);
    }
    let mut stream = Stream::new(reader, len);
    if head.starts_with(&LEGACY_MAGIC) {
        for _ in 0..LEGACY_PICKLES {
            walk_pickle(&mut stream, None).map_err(|e| e.to_string())?;
        }
        let data = len - stream.pos;
        // Again, the state_dict with its integers bounded: a storage's element count, a shape
        // or an offset larger than the storages' bytes cannot describe data in the file, and
        // burn-store allocates a storage's bytes from its count before reading them.
        let mut stream = Stream::new(stream.reader, len);
        stream.seek_to(0).map_err(io_error)?;
        for index in 0..LEGACY_PICKLES - 1 {
            let bound = (index == LEGACY_PICKLES - 2).then_some(data);
            walk_pickle(&mut stream, bound).map_err(|e| e.to_string())?;
        }
        return Ok(data);
    }
    // A plain pickle: no storages, so no tensor data (burn-store refuses tensors in it).
    walk_pickle(&mut stream, None).map_err(|e| e.to_string())?;
    Ok(0)
}

/// Holds every tensor to `payload` bytes (from [`scan_torch_file`]): burn-store makes a tensor
/// of its shape's size even where its storage is shorter.
pub(crate) fn check_tensor_sizes(snapshots: &[TensorSnapshot], payload: u64) -> Result<(), String> {
    for snapshot in snapshots {
        let bytes = snapshot
            .shape
            .iter()
            .try_fold(snapshot.dtype.size() as u64, |n, &d| {
                n.checked_mul(d as u64)
            });
        if bytes.is_none_or(|b| b > payload) {
            return Err(format!(
                "tensor `{}` has shape {:?} of {:?}, more than the {payload} bytes of tensor data \
                 the file holds",
                snapshot.full_path(),
                snapshot.shape.as_slice(),
                snapshot.dtype
            ));
        }
    }
    Ok(())
}

/// A zip checkpoint (PyTorch ≥ 1.6): every entry's declared size must fit its compressed
/// bytes, and the `data.pkl` burn-store reads must walk.
fn scan_zip<R: Read + Seek>(mut archive: zip::ZipArchive<R>, len: u64) -> Result<u64, String> {
    let mut payload = 0u64;
    let mut names = Vec::with_capacity(archive.len().min(1 << 16));
    for index in 0..archive.len() {
        let entry = archive
            .by_index_raw(index)
            .map_err(|e| format!("zip entry {index}: {e}"))?;
        let (name, size, packed) = (
            entry.name().to_string(),
            entry.size(),
            entry.compressed_size(),
        );
        let fits = match entry.compression() {
            zip::CompressionMethod::Stored => size <= packed,
            zip::CompressionMethod::Deflated => size <= deflate_bound(packed),
            other => {
                return Err(format!(
                    "zip entry `{name}` is compressed with {other:?}; torch.save stores entries \
                     uncompressed (or deflated)"
                ))
            }
        };
        if packed > len || !fits {
            return Err(format!(
                "zip entry `{name}` declares {size} bytes from {packed} compressed bytes, more \
                 than it can hold (the file has {len} bytes)"
            ));
        }
        payload = payload.saturating_add(size);
        names.push(name);
    }
    // The pickle burn-store picks: `data.pkl`, `archive/data.pkl`, else the first `*data.pkl`.
    let pickle = ["data.pkl", "archive/data.pkl"]
        .into_iter()
        .find(|n| names.iter().any(|name| name == n))
        .map(str::to_string)
        .or_else(|| names.iter().find(|n| n.ends_with("data.pkl")).cloned());
    let Some(pickle) = pickle else {
        // burn-store says that no data.pkl was found.
        return Ok(payload);
    };
    let mut data = Vec::new();
    archive
        .by_name(&pickle)
        .and_then(|mut entry| entry.read_to_end(&mut data).map_err(Into::into))
        .map_err(|e| format!("zip entry `{pickle}`: {e}"))?;
    let len = data.len() as u64;
    walk_pickle(&mut Stream::new(Cursor::new(data), len), None)
        .map_err(|e| format!("zip entry `{pickle}`, {e}"))?;
    Ok(payload)
}

/// A tar checkpoint (PyTorch < 0.1.10): the `sys_info` and `pickle` entries must walk, and the
/// `storages` entry too: a count pickle, then per storage a pickle naming its type, an 8-byte
/// element count and that many elements, which must fit the entry.
fn scan_tar<R: Read>(reader: R) -> Result<u64, String> {
    let mut archive = tar::Archive::new(reader);
    let mut payload = 0;
    let entries = archive.entries().map_err(|e| format!("tar: {e}"))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("tar: {e}"))?;
        let name = entry
            .path()
            .map_err(|e| format!("tar: {e}"))?
            .to_string_lossy()
            .into_owned();
        let name = name.trim_start_matches("./").to_string();
        if !matches!(name.as_str(), "sys_info" | "pickle" | "storages") {
            continue;
        }
        let mut data = Vec::new();
        entry
            .read_to_end(&mut data)
            .map_err(|e| format!("tar entry `{name}`: {e}"))?;
        let len = data.len() as u64;
        let mut stream = Stream::new(Cursor::new(data), len);
        let in_entry = |e: ScanError| format!("tar entry `{name}`, {e}");
        walk_pickle(&mut stream, None).map_err(in_entry)?;
        if name == "storages" {
            payload = len;
            while stream.left() > 0 {
                let at = stream.pos;
                let storage = walk_pickle(&mut stream, None).map_err(in_entry)?;
                let size = storage
                    .as_deref()
                    .map(storage_type_to_element_size)
                    .unwrap_or_else(|| Err(String::from("no storage type")))
                    .map_err(|e| in_entry(ScanError::new(at, e)))?;
                let at = stream.pos;
                let count = u64::from_le_bytes(stream.array().map_err(in_entry)?);
                let bytes = count.checked_mul(size as u64);
                if bytes.is_none_or(|b| b > stream.left()) {
                    return Err(in_entry(ScanError::new(
                        at,
                        format!(
                            "a storage of {count} elements of {size} bytes, more than the {} \
                             bytes left",
                            stream.left()
                        ),
                    )));
                }
                stream.skip(bytes.unwrap_or(0)).map_err(in_entry)?;
            }
        }
    }
    Ok(payload)
}

/// Where in a pickle the scan stopped, and why.
#[derive(Debug)]
pub(crate) struct ScanError {
    /// Byte offset in the file (or in the zip or tar entry).
    offset: u64,
    message: String,
}

impl ScanError {
    fn new(offset: u64, message: impl Into<String>) -> Self {
        Self {
            offset,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for ScanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "byte {}: {}", self.offset, self.message)
    }
}

/// A reader that knows its position and how many bytes are left.
struct Stream<R> {
    reader: R,
    pos: u64,
    len: u64,
}

impl<R: BufRead> Stream<R> {
    fn new(reader: R, len: u64) -> Self {
        Self {
            reader,
            pos: 0,
            len,
        }
    }

    fn left(&self) -> u64 {
        self.len.saturating_sub(self.pos)
    }

    fn eof(&self) -> ScanError {
        ScanError::new(self.pos, "the file ends inside a pickle (no STOP opcode)")
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], ScanError> {
        let mut bytes = [0u8; N];
        self.reader.read_exact(&mut bytes).map_err(|_| self.eof())?;
        self.pos += N as u64;
        Ok(bytes)
    }

    fn byte(&mut self) -> Result<u8, ScanError> {
        self.array::<1>().map(|[b]| b)
    }

    /// Skips `n` bytes, which the caller checked are there.
    fn skip(&mut self, n: u64) -> Result<(), ScanError> {
        let skipped = io::copy(&mut (&mut self.reader).take(n), &mut io::sink())
            .map_err(|e| ScanError::new(self.pos, e.to_string()))?;
        self.pos += skipped;
        if skipped < n {
            return Err(self.eof());
        }
        Ok(())
    }

    /// A newline-terminated argument, without the newline.
    fn line(&mut self) -> Result<Vec<u8>, ScanError> {
        let mut line = Vec::new();
        let read = self
            .reader
            .read_until(b'\n', &mut line)
            .map_err(|e| ScanError::new(self.pos, e.to_string()))?;
        self.pos += read as u64;
        if line.pop() != Some(b'\n') {
            return Err(self.eof());
        }
        Ok(line)
    }
}

impl<R: BufRead + Seek> Stream<R> {
    fn seek_to(&mut self, pos: u64) -> io::Result<()> {
        self.reader.seek(SeekFrom::Start(pos))?;
        self.pos = pos;
        Ok(())
    }
}

/// How an opcode's argument is encoded (pickletools' `ArgumentDescriptor`s).
enum Arg {
    None,
    /// Fixed width, in bytes.
    Fixed(u64),
    /// Newline-terminated text, `n` lines.
    Lines(usize),
    /// A little-endian length of this many bytes, then that many bytes; `signed` for the
    /// 4-byte lengths pickle reads as signed (BINSTRING, LONG4).
    Counted {
        width: usize,
        signed: bool,
    },
    /// FRAME: an 8-byte length of the opcodes that follow (not skipped).
    Frame,
}

/// The argument of opcode `op` (protocols 0–5), its name, and whether it is an integer;
/// `None` for an unknown opcode.
fn argument(op: u8) -> Option<(&'static str, Arg, bool)> {
    let counted = |width, signed| Arg::Counted { width, signed };
    Some(match op {
        b'(' => ("MARK", Arg::None, false),
        b'.' => ("STOP", Arg::None, false),
        b'0' => ("POP", Arg::None, false),
        b'1' => ("POP_MARK", Arg::None, false),
        b'2' => ("DUP", Arg::None, false),
        b'F' => ("FLOAT", Arg::Lines(1), false),
        b'I' => ("INT", Arg::Lines(1), true),
        b'J' => ("BININT", Arg::Fixed(4), true),
        b'K' => ("BININT1", Arg::Fixed(1), true),
        b'L' => ("LONG", Arg::Lines(1), true),
        b'M' => ("BININT2", Arg::Fixed(2), true),
        b'N' => ("NONE", Arg::None, false),
        b'P' => ("PERSID", Arg::Lines(1), false),
        b'Q' => ("BINPERSID", Arg::None, false),
        b'R' => ("REDUCE", Arg::None, false),
        b'S' => ("STRING", Arg::Lines(1), false),
        b'T' => ("BINSTRING", counted(4, true), false),
        b'U' => ("SHORT_BINSTRING", counted(1, false), false),
        b'V' => ("UNICODE", Arg::Lines(1), false),
        b'X' => ("BINUNICODE", counted(4, false), false),
        b'a' => ("APPEND", Arg::None, false),
        b'b' => ("BUILD", Arg::None, false),
        b'c' => ("GLOBAL", Arg::Lines(2), false),
        b'd' => ("DICT", Arg::None, false),
        b'}' => ("EMPTY_DICT", Arg::None, false),
        b'e' => ("APPENDS", Arg::None, false),
        b'g' => ("GET", Arg::Lines(1), false),
        b'h' => ("BINGET", Arg::Fixed(1), false),
        b'i' => ("INST", Arg::Lines(2), false),
        b'j' => ("LONG_BINGET", Arg::Fixed(4), false),
        b'l' => ("LIST", Arg::None, false),
        b']' => ("EMPTY_LIST", Arg::None, false),
        b'o' => ("OBJ", Arg::None, false),
        b'p' => ("PUT", Arg::Lines(1), false),
        b'q' => ("BINPUT", Arg::Fixed(1), false),
        b'r' => ("LONG_BINPUT", Arg::Fixed(4), false),
        b's' => ("SETITEM", Arg::None, false),
        b't' => ("TUPLE", Arg::None, false),
        b')' => ("EMPTY_TUPLE", Arg::None, false),
        b'u' => ("SETITEMS", Arg::None, false),
        b'G' => ("BINFLOAT", Arg::Fixed(8), false),
        // Protocol 2.
        0x80 => ("PROTO", Arg::Fixed(1), false),
        0x81 => ("NEWOBJ", Arg::None, false),
        0x82 => ("EXT1", Arg::Fixed(1), false),
        0x83 => ("EXT2", Arg::Fixed(2), false),
        0x84 => ("EXT4", Arg::Fixed(4), false),
        0x85 => ("TUPLE1", Arg::None, false),
        0x86 => ("TUPLE2", Arg::None, false),
        0x87 => ("TUPLE3", Arg::None, false),
        0x88 => ("NEWTRUE", Arg::None, false),
        0x89 => ("NEWFALSE", Arg::None, false),
        0x8a => ("LONG1", counted(1, false), true),
        0x8b => ("LONG4", counted(4, true), true),
        // Protocol 3.
        b'B' => ("BINBYTES", counted(4, false), false),
        b'C' => ("SHORT_BINBYTES", counted(1, false), false),
        // Protocol 4.
        0x8c => ("SHORT_BINUNICODE", counted(1, false), false),
        0x8d => ("BINUNICODE8", counted(8, false), false),
        0x8e => ("BINBYTES8", counted(8, false), false),
        0x8f => ("EMPTY_SET", Arg::None, false),
        0x90 => ("ADDITEMS", Arg::None, false),
        0x91 => ("FROZENSET", Arg::None, false),
        0x92 => ("NEWOBJ_EX", Arg::None, false),
        0x93 => ("STACK_GLOBAL", Arg::None, false),
        0x94 => ("MEMOIZE", Arg::None, false),
        0x95 => ("FRAME", Arg::Frame, false),
        // Protocol 5.
        0x96 => ("BYTEARRAY8", counted(8, false), false),
        0x97 => ("NEXT_BUFFER", Arg::None, false),
        0x98 => ("READONLY_BUFFER", Arg::None, false),
        _ => return None,
    })
}

/// Walks one pickle from the stream's position through its STOP opcode. With `int_bound`,
/// an integer argument above it is refused. Returns the name of the last GLOBAL (a tar
/// storage's type).
fn walk_pickle<R: BufRead>(
    stream: &mut Stream<R>,
    int_bound: Option<u64>,
) -> Result<Option<String>, ScanError> {
    let mut global = None;
    loop {
        let at = stream.pos;
        let op = stream.byte()?;
        let Some((name, arg, is_int)) = argument(op) else {
            return Err(ScanError::new(
                at,
                format!("unknown pickle opcode 0x{op:02x}"),
            ));
        };
        // The integer's magnitude where it matters (`int_bound`), else 0.
        let mut value: u64 = 0;
        match arg {
            Arg::None if op == b'.' => return Ok(global),
            Arg::None => {}
            Arg::Fixed(width) => {
                if op == 0x80 {
                    let protocol = stream.byte()?;
                    if protocol > 5 {
                        return Err(ScanError::new(
                            at,
                            format!("pickle protocol {protocol} (0 to 5 are known)"),
                        ));
                    }
                } else if is_int && int_bound.is_some() {
                    value = match width {
                        1 => u64::from(stream.byte()?),
                        2 => u64::from(u16::from_le_bytes(stream.array()?)),
                        _ => i32::from_le_bytes(stream.array()?).unsigned_abs().into(),
                    };
                } else {
                    stream.skip(width)?;
                }
            }
            Arg::Lines(count) => {
                for line in 0..count {
                    let text = stream.line()?;
                    if op == b'c' && line == 1 {
                        global = Some(String::from_utf8_lossy(&text).into_owned());
                    }
                    if is_int && int_bound.is_some() {
                        let text = String::from_utf8_lossy(&text);
                        let digits = text.trim().trim_end_matches('L');
                        value = digits
                            .parse::<i128>()
                            .map_or(0, |v| u64::try_from(v.unsigned_abs()).unwrap_or(u64::MAX));
                    }
                }
            }
            Arg::Counted { width, signed } => {
                let length = match width {
                    1 => i64::from(stream.byte()?),
                    4 if signed => i64::from(i32::from_le_bytes(stream.array()?)),
                    4 => i64::from(u32::from_le_bytes(stream.array()?)),
                    _ => i64::try_from(u64::from_le_bytes(stream.array()?)).unwrap_or(i64::MAX),
                };
                let left = stream.left();
                if length < 0 || length as u64 > left {
                    return Err(ScanError::new(
                        at,
                        format!("{name} length {length} exceeds the {left} bytes left"),
                    ));
                }
                if is_int && int_bound.is_some() && length > 16 {
                    value = u64::MAX;
                    stream.skip(length as u64)?;
                } else if is_int && int_bound.is_some() {
                    let mut bytes = vec![0u8; length as usize];
                    stream
                        .reader
                        .read_exact(&mut bytes)
                        .map_err(|_| stream.eof())?;
                    stream.pos += length as u64;
                    value = long_magnitude(&bytes);
                } else {
                    stream.skip(length as u64)?;
                }
            }
            Arg::Frame => {
                let length = u64::from_le_bytes(stream.array()?);
                let left = stream.left();
                if length > left {
                    return Err(ScanError::new(
                        at,
                        format!("{name} length {length} exceeds the {left} bytes left"),
                    ));
                }
            }
        }
        if let Some(bound) = int_bound.filter(|&b| is_int && value > b) {
            return Err(ScanError::new(
                at,
                format!(
                    "{name} {value} exceeds the {bound} bytes of storages the file holds (no \
                     element count, shape or offset can be larger)"
                ),
            ));
        }
    }
}

/// The magnitude of a LONG1/LONG4 argument (little-endian two's complement), saturated.
fn long_magnitude(bytes: &[u8]) -> u64 {
    let negative = bytes.last().is_some_and(|b| b & 0x80 != 0);
    let significant = bytes
        .iter()
        .rposition(|&b| b != if negative { 0xff } else { 0 })
        .map_or(0, |i| i + 1);
    if significant > 8 {
        return u64::MAX;
    }
    let mut value = 0u64;
    for (i, &b) in bytes.iter().take(8).enumerate() {
        value |= u64::from(b) << (8 * i);
    }
    if negative {
        if bytes.len() < 8 {
            value |= u64::MAX << (8 * bytes.len());
        }
        (value as i64).unsigned_abs()
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::import::read_snapshots;

    fn repo(path: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(path)
    }

    fn walk(bytes: &[u8], int_bound: Option<u64>) -> Result<Option<String>, ScanError> {
        walk_pickle(&mut Stream::new(bytes, bytes.len() as u64), int_bound)
    }

    #[test]
    fn a_string_length_past_the_end_of_the_file_is_an_error_naming_the_file_and_offset() {
        // 720 bytes whose BINUNICODE at byte 62 declares 1 819 239 175 bytes: burn-store 0.21
        // allocated them before reading (fuzz/regressions/pth/).
        let path = repo("fuzz/regressions/pth/binunicode_length_1_8_gb.pkl");
        let message = read_snapshots(&path, None).unwrap_err().to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(
            message.contains("byte 62: BINUNICODE length 1819239175 exceeds the 653 bytes left"),
            "{message}"
        );
    }

    #[test]
    fn every_length_argument_past_the_end_and_unknown_opcodes_are_refused_at_their_offset() {
        // Each length-prefixed opcode with a length one more than the bytes left, after
        // `PROTO 5`; the opcode is at byte 2.
        for (op, width, name) in [
            (b'T', 4, "BINSTRING"),
            (b'U', 1, "SHORT_BINSTRING"),
            (b'X', 4, "BINUNICODE"),
            (b'B', 4, "BINBYTES"),
            (b'C', 1, "SHORT_BINBYTES"),
            (0x8a, 1, "LONG1"),
            (0x8b, 4, "LONG4"),
            (0x8c, 1, "SHORT_BINUNICODE"),
            (0x8d, 8, "BINUNICODE8"),
            (0x8e, 8, "BINBYTES8"),
            (0x96, 8, "BYTEARRAY8"),
            (0x95, 8, "FRAME"),
        ] {
            let mut bytes = vec![0x80, 5, op];
            bytes.extend_from_slice(&4u64.to_le_bytes()[..width]);
            bytes.extend_from_slice(b"abc");
            let error = walk(&bytes, None).unwrap_err().to_string();
            assert_eq!(
                error,
                format!("byte 2: {name} length 4 exceeds the 3 bytes left"),
                "{name}"
            );
            // With the length the bytes hold, the pickle walks (FRAME's bytes are opcodes).
            if op != 0x95 {
                bytes[3] = 3;
                bytes.push(b'.');
                assert!(walk(&bytes, None).is_ok(), "{name}");
            }
        }
        let negative = [0x80, 2, b'T', 0xff, 0xff, 0xff, 0xff, b'.'];
        assert!(walk(&negative, None)
            .unwrap_err()
            .to_string()
            .contains("length -1"));
        let unknown = [0x80, 2, b'N', 0xff, b'.'];
        assert_eq!(
            walk(&unknown, None).unwrap_err().to_string(),
            "byte 3: unknown pickle opcode 0xff"
        );
        assert!(walk(b"\x80\x06.", None)
            .unwrap_err()
            .to_string()
            .contains("protocol 6"));
        assert!(walk(b"\x80\x02N", None)
            .unwrap_err()
            .to_string()
            .contains("no STOP"));
    }

    #[test]
    fn integers_above_the_bound_are_refused_in_every_encoding() {
        for (pickle, value) in [
            (&b"J\x00\x00\x00\x40."[..], 1u64 << 30),
            (&b"\x8a\x05\x00\x00\x00\x00\x01."[..], 1 << 32),
            (&b"\x8b\x02\x00\x00\x00\x00\x80."[..], 1 << 15),
            (&b"I1000000\n."[..], 1_000_000),
            (&b"L-99999999L\n."[..], 99_999_999),
        ] {
            let error = walk(pickle, Some(1000)).unwrap_err().to_string();
            assert!(
                error.contains(&format!(" {value} exceeds the 1000 bytes")),
                "{error}"
            );
            assert!(walk(pickle, None).is_ok());
        }
        assert!(walk(b"K\xffM\xe8\x03I01\n\x8a\x01\xff.", Some(1000)).is_ok());
    }

    #[test]
    fn every_torch_fixture_passes_the_pre_scan_and_loads() {
        let mut checked = 0;
        for dir in ["crates/models/tests/fixtures", "fuzz/corpus/pth"] {
            let mut stack = vec![repo(dir)];
            while let Some(dir) = stack.pop() {
                for entry in std::fs::read_dir(&dir).unwrap() {
                    let path = entry.unwrap().path();
                    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
                    if path.is_dir() {
                        stack.push(path);
                    } else if ext == "pt" || ext == "pth" {
                        let payload = scan_torch_file(&path).unwrap();
                        let snapshots = read_snapshots(&path, None).unwrap();
                        assert!(!snapshots.is_empty() && payload > 0, "{}", path.display());
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked >= 9, "{checked} fixtures");
    }

    #[test]
    fn a_legacy_state_dict_with_an_element_count_past_its_storages_is_refused() {
        // The legacy layout: magic, protocol version, system info, the state_dict (here a
        // BININT element count of 2^30 standing for the storage's), the storage keys, then
        // 16 bytes of storages.
        let mut file = LEGACY_MAGIC.to_vec();
        file.extend_from_slice(b"\x80\x02M\xe9\x03.");
        file.extend_from_slice(b"\x80\x02}q\x00.");
        file.extend_from_slice(b"\x80\x02}q\x00(X\x01\x00\x00\x00wJ\x00\x00\x00\x40u.");
        file.extend_from_slice(b"\x80\x02]q\x00X\x01\x00\x00\x000a.");
        let main = LEGACY_MAGIC.len() + 6 + 6;
        file.extend_from_slice(&[0; 16]);
        let dir = tempfile_dir();
        let path = dir.join("legacy.pth");
        std::fs::write(&path, &file).unwrap();
        let error = scan_torch_file(&path).unwrap_err();
        assert_eq!(
            error,
            format!(
                "byte {}: BININT 1073741824 exceeds the 16 bytes of storages the file holds (no \
                 element count, shape or offset can be larger)",
                main + 12
            )
        );
        // An element count the storages can hold passes.
        file[main + 13..main + 17].copy_from_slice(&4u32.to_le_bytes());
        std::fs::write(&path, &file).unwrap();
        assert_eq!(scan_torch_file(&path), Ok(16));
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("caplab-pickle-scan-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
