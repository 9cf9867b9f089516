//! Feature cache: pooled (and optionally spatial) features of a frozen encoder, one safetensors file per key.
//!
//! A cache entry is a safetensors file with an `F32` tensor `pooled` `[N, D]` and, when the key asks
//! for it, `spatial` `[N, C, H, W]` (rows in the order of the image list). `D` is 0 in a spatial
//! entry written by an encoder built without its pooled layers (a VGG without fc6/fc7). Its `__metadata__` holds
//! the format version (`caplab.format`), the canonical JSON of the [`FeatureKey`]
//! (`caplab.key`), the image ids as a JSON array of strings (`caplab.names`) and the SHA-256 of the
//! whole tensor data section (`caplab.sha256`). [`FeatureStore::open`] checks all of them, so a
//! stale or corrupt file is an error and never silently used.
//!
//! This module is the store only (no network code): the runner's encode loop feeds rows to a
//! [`FeatureWriter`] and reads them back through a [`FeatureStore`].
//!
//! Writing resumes: [`FeatureWriter`] writes into `<name>.partial`, laid out exactly as the final
//! file (header with a placeholder checksum, then rows at their final offsets), and after every
//! batch syncs it and records the completed row count in the sidecar `<name>.partial.json`. A
//! later call with the same key continues from that row; any mismatch (other key, other size,
//! unreadable sidecar) deletes both and restarts. The checksum is computed last, the header
//! patched, and the file renamed to `<name>` — a crash never leaves a file under the final name.
//! Two processes building the same entry at the same time are not coordinated.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use crate::error::DataError;
use crate::image::ImageConfig;
use memmap2::Mmap;
use safetensors::tensor::{Dtype, Metadata, TensorInfo};
use safetensors::SafeTensors;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Version of the cache file layout; bumping it invalidates every existing entry.
pub const FORMAT_VERSION: &str = "caplab-features-v1";
/// Name of the pooled feature tensor `[N, D]`.
pub const POOLED: &str = "pooled";
/// Name of the spatial feature tensor `[N, C, H, W]`.
pub const SPATIAL: &str = "spatial";
const META_FORMAT: &str = "caplab.format";
const META_KEY: &str = "caplab.key";
const META_NAMES: &str = "caplab.names";
const META_SHA: &str = "caplab.sha256";
const PLACEHOLDER_SHA: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Errors of the feature cache; every message names the file involved.
#[derive(Debug, thiserror::Error)]
pub enum FeatureError {
    /// An I/O operation on `path` failed (the OS error is in the message, not the source).
    #[error("{}: {error}", path.display())]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        error: std::io::Error,
    },
    /// An image could not be loaded (the message names the image file).
    #[error(transparent)]
    Image(#[from] DataError),
    /// The file is not a feature cache this version can read.
    #[error("{}: not a valid feature cache: {message}", path.display())]
    Format {
        /// The cache file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The file was built for another key (encoder, weights, preprocessing or image list).
    #[error("{}: stale feature cache: {message}", path.display())]
    Stale {
        /// The cache file.
        path: PathBuf,
        /// Which part of the key differs.
        message: String,
    },
    /// The tensor data does not match the stored checksum.
    #[error("{}: corrupt feature cache: data SHA-256 {actual} does not match the stored {expected}", path.display())]
    Corrupt {
        /// The cache file.
        path: PathBuf,
        /// Checksum recorded in the header.
        expected: String,
        /// Checksum of the data read back.
        actual: String,
    },
    /// The arguments of an encoding call are inconsistent (encoder, key, configuration).
    #[error("{}: {message}", path.display())]
    Invalid {
        /// The output file.
        path: PathBuf,
        /// What is inconsistent.
        message: String,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> FeatureError + '_ {
    move |error| FeatureError::Io {
        path: path.to_path_buf(),
        error,
    }
}

/// Identity of a cache entry: what produced the features and from which images.
///
/// Plain data: the encoder is named by its architecture string (torchvision's model name, e.g.
/// `resnet50`), so this crate needs no network types.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FeatureKey {
    /// Encoder architecture, by torchvision name.
    pub arch: String,
    /// SHA-256 (hex) of the weights file, `None` for random initialisation.
    pub weights_sha256: Option<String>,
    /// Preprocessing (size and normalisation).
    pub image: ImageConfig,
    /// SHA-256 (hex) over the ordered `(image id, file size, mtime in ns)` list; see [`images_sha256`].
    pub images_sha256: String,
    /// Whether the spatial grid is stored too.
    pub spatial: bool,
    /// Inception v3's `transform_input` (absent for other architectures).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transform_input: Option<bool>,
}

impl FeatureKey {
    /// Builds the key of the features of encoder `arch` with weights file `weights` (hashing its
    /// content) and `transform_input` (Inception only), over the image list (hashing its metadata).
    pub fn new(
        arch: &str,
        weights: Option<&Path>,
        transform_input: Option<bool>,
        image: &ImageConfig,
        images: &[(String, PathBuf)],
        spatial: bool,
    ) -> Result<Self, FeatureError> {
        Ok(FeatureKey {
            arch: arch.to_string(),
            weights_sha256: weights.map(sha256_file).transpose()?,
            image: image.clone(),
            images_sha256: images_sha256(images)?,
            spatial,
            transform_input,
        })
    }

    /// Canonical JSON of the key (fields in declaration order).
    pub fn canonical_json(&self) -> String {
        // Serialising plain fields, strings and floats cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Cache file name: `<arch>-<first 16 hex of SHA-256(canonical JSON)>.safetensors`.
    pub fn file_name(&self) -> String {
        let digest = hex(&Sha256::digest(self.canonical_json().as_bytes()));
        format!("{}-{}.safetensors", self.arch, &digest[..16])
    }
}

/// SHA-256 (hex) over the ordered image list: per image the id (length-prefixed), file size and mtime.
///
/// File metadata rather than content keeps this instant on large datasets: editing, replacing
/// or touching an image changes it (a rebuild), and so does copying the dataset without
/// preserving mtimes; moving the directory with mtimes preserved does not (paths are not hashed).
pub fn images_sha256(images: &[(String, PathBuf)]) -> Result<String, FeatureError> {
    let mut hasher = Sha256::new();
    hasher.update((images.len() as u64).to_le_bytes());
    for (id, path) in images {
        let meta = fs::metadata(path).map_err(io_err(path))?;
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        hasher.update((id.len() as u64).to_le_bytes());
        hasher.update(id.as_bytes());
        hasher.update(meta.len().to_le_bytes());
        hasher.update(mtime.to_le_bytes());
    }
    Ok(hex(&hasher.finalize()))
}

/// SHA-256 (hex) of a file's content.
pub fn sha256_file(path: &Path) -> Result<String, FeatureError> {
    let mut file = File::open(path).map_err(io_err(path))?;
    sha256_from(&mut file, path, 0)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Where the `f32` values of a store live.
#[derive(Debug)]
enum Floats {
    /// Read in place from the map (data section 4-byte aligned, little-endian host).
    Mapped,
    /// Copied out of the map (misaligned data section or big-endian host).
    Owned(Vec<f32>),
}

/// A read-only, memory-mapped feature cache entry.
///
/// Access is zero-copy from the map when the data section is 4-byte aligned on a
/// little-endian host (always the case for files [`FeatureWriter`] writes: the header is padded
/// to 8 bytes and the map is page-aligned); otherwise the values are copied once at open.
#[derive(Debug)]
pub struct FeatureStore {
    path: PathBuf,
    mmap: Mmap,
    data_start: usize,
    floats: Floats,
    names: Vec<String>,
    dim: usize,
    pooled_off: usize,
    spatial: Option<(usize, [usize; 3])>,
}

impl FeatureStore {
    /// Opens `path`, verifying the format, that it was built for `key`, and the data checksum.
    ///
    /// The checksum reads the whole data section once (about a second per GB).
    pub fn open(path: &Path, key: &FeatureKey) -> Result<FeatureStore, FeatureError> {
        let file = File::open(path).map_err(io_err(path))?;
        // SAFETY: cache files are only ever created by renaming a finished file into place and
        // are never modified afterwards, so the mapped bytes do not change under us.
        let mmap = unsafe { Mmap::map(&file) }.map_err(io_err(path))?;
        let format = |message: String| FeatureError::Format {
            path: path.to_path_buf(),
            message,
        };
        let (header_len, metadata) =
            SafeTensors::read_metadata(&mmap).map_err(|e| format(e.to_string()))?;
        let meta = metadata
            .metadata()
            .as_ref()
            .ok_or_else(|| format("no __metadata__".into()))?;
        let get = |name: &str| {
            meta.get(name)
                .ok_or_else(|| format(format!("metadata lacks {name}")))
        };
        let version = get(META_FORMAT)?;
        if version != FORMAT_VERSION {
            return Err(FeatureError::Stale {
                path: path.to_path_buf(),
                message: format!("format {version}, expected {FORMAT_VERSION}"),
            });
        }
        let stored: FeatureKey =
            serde_json::from_str(get(META_KEY)?).map_err(|e| format(format!("{META_KEY}: {e}")))?;
        if &stored != key {
            return Err(FeatureError::Stale {
                path: path.to_path_buf(),
                message: format!(
                    "built for {}, wanted {}",
                    stored.canonical_json(),
                    key.canonical_json()
                ),
            });
        }
        let names: Vec<String> = serde_json::from_str(get(META_NAMES)?)
            .map_err(|e| format(format!("{META_NAMES}: {e}")))?;
        let expected_sha = get(META_SHA)?.clone();

        let tensors = metadata.tensors();
        let info = |name: &str| -> Result<&TensorInfo, FeatureError> {
            let info = tensors
                .get(name)
                .copied()
                .ok_or_else(|| format(format!("no tensor '{name}'")))?;
            if info.dtype != Dtype::F32 {
                return Err(format(format!(
                    "tensor '{name}' is {:?}, not F32",
                    info.dtype
                )));
            }
            Ok(info)
        };
        let pooled = info(POOLED)?;
        let [n, dim] = pooled.shape[..] else {
            return Err(format(format!("'{POOLED}' has shape {:?}", pooled.shape)));
        };
        if n != names.len() {
            return Err(format(format!("{n} rows but {} names", names.len())));
        }
        let spatial = match (key.spatial, tensors.contains_key(SPATIAL)) {
            (false, false) => None,
            (true, true) => {
                let info = info(SPATIAL)?;
                let [sn, c, h, w] = info.shape[..] else {
                    return Err(format(format!("'{SPATIAL}' has shape {:?}", info.shape)));
                };
                if sn != n {
                    return Err(format(format!("'{SPATIAL}' has {sn} rows, '{POOLED}' {n}")));
                }
                Some((info.data_offsets.0, [c, h, w]))
            }
            (want, _) => {
                return Err(format(format!(
                    "spatial tensor {}",
                    if want { "missing" } else { "unexpected" }
                )))
            }
        };

        let data_start = 8 + header_len;
        let data = &mmap[data_start..];
        let actual = hex(&Sha256::digest(data));
        if actual != expected_sha {
            return Err(FeatureError::Corrupt {
                path: path.to_path_buf(),
                expected: expected_sha,
                actual,
            });
        }
        let offsets_ok = pooled.data_offsets.0 % 4 == 0
            && spatial.is_none_or(|(off, _)| off % 4 == 0)
            && data.len() % 4 == 0;
        if !offsets_ok {
            return Err(format("tensor offsets are not multiples of 4 bytes".into()));
        }
        // SAFETY: every bit pattern is a valid f32.
        let (prefix, _, _) = unsafe { data.align_to::<f32>() };
        let floats = if prefix.is_empty() && cfg!(target_endian = "little") {
            Floats::Mapped
        } else {
            Floats::Owned(
                data.chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect(),
            )
        };
        Ok(FeatureStore {
            path: path.to_path_buf(),
            mmap,
            data_start,
            floats,
            names,
            dim,
            pooled_off: pooled.data_offsets.0 / 4,
            spatial: spatial.map(|(off, shape)| (off / 4, shape)),
        })
    }

    fn values(&self) -> &[f32] {
        match &self.floats {
            Floats::Owned(values) => values,
            Floats::Mapped => {
                // SAFETY: every bit pattern is a valid f32; alignment was checked at open (empty prefix).
                let (_, values, _) = unsafe { self.mmap[self.data_start..].align_to::<f32>() };
                values
            }
        }
    }

    /// The cache file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of images (rows).
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether the store holds no rows.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Length of a pooled feature vector.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Image ids, in row order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Pooled features of row `index`; panics when `index >= len()`.
    pub fn pooled(&self, index: usize) -> &[f32] {
        assert!(index < self.len(), "feature row {index} out of range");
        let start = self.pooled_off + index * self.dim;
        &self.values()[start..start + self.dim]
    }

    /// Spatial grid `[C, H, W]` (flattened) of row `index`, if stored; panics when `index >= len()`.
    pub fn spatial(&self, index: usize) -> Option<&[f32]> {
        assert!(index < self.len(), "feature row {index} out of range");
        let (off, [c, h, w]) = self.spatial?;
        let per = c * h * w;
        let start = off + index * per;
        Some(&self.values()[start..start + per])
    }

    /// Shape `[C, H, W]` of one spatial grid, if stored.
    pub fn spatial_shape(&self) -> Option<[usize; 3]> {
        self.spatial.map(|(_, shape)| shape)
    }

    /// Whether rows are read in place from the memory map (no copy at open).
    pub fn zero_copy(&self) -> bool {
        matches!(self.floats, Floats::Mapped)
    }
}

/// Row sizes of the file being written.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
struct Layout {
    rows: usize,
    dim: usize,
    spatial: Option<[usize; 3]>,
}

impl Layout {
    fn spatial_per(&self) -> usize {
        self.spatial.map_or(0, |[c, h, w]| c * h * w)
    }

    fn pooled_bytes(&self) -> u64 {
        (self.rows * self.dim * 4) as u64
    }

    fn data_bytes(&self) -> u64 {
        self.pooled_bytes() + (self.rows * self.spatial_per() * 4) as u64
    }
}

/// Sidecar of a partial file: how many rows are durably written.
#[derive(Debug, Serialize, Deserialize)]
struct Progress {
    key: FeatureKey,
    layout: Layout,
    header_len: usize,
    rows_done: usize,
}

/// The full safetensors header (length prefix, JSON, space padding to 8 bytes).
fn header_bytes(
    key: &FeatureKey,
    names: &[String],
    layout: &Layout,
    sha256: &str,
) -> Result<Vec<u8>, String> {
    let meta = HashMap::from([
        (META_FORMAT.to_string(), FORMAT_VERSION.to_string()),
        (META_KEY.to_string(), key.canonical_json()),
        (
            META_NAMES.to_string(),
            serde_json::to_string(names).map_err(|e| e.to_string())?,
        ),
        (META_SHA.to_string(), sha256.to_string()),
    ]);
    let pooled_end = layout.pooled_bytes() as usize;
    let mut tensors = vec![(
        POOLED.to_string(),
        TensorInfo {
            dtype: Dtype::F32,
            shape: vec![layout.rows, layout.dim],
            data_offsets: (0, pooled_end),
        },
    )];
    if let Some([c, h, w]) = layout.spatial {
        tensors.push((
            SPATIAL.to_string(),
            TensorInfo {
                dtype: Dtype::F32,
                shape: vec![layout.rows, c, h, w],
                data_offsets: (pooled_end, layout.data_bytes() as usize),
            },
        ));
    }
    let metadata = Metadata::new(Some(meta), tensors).map_err(|e| e.to_string())?;
    let mut json = serde_json::to_string(&metadata)
        .map_err(|e| e.to_string())?
        .into_bytes();
    json.resize(json.len().next_multiple_of(8), b' ');
    let mut out = (json.len() as u64).to_le_bytes().to_vec();
    out.extend(json);
    Ok(out)
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

/// Opens the partial file for writing: resumed at the row its sidecar records when that matches, else fresh.
fn open_partial(
    partial: &Path,
    sidecar: &Path,
    progress: &Progress,
    header: &[u8],
) -> Result<(File, usize), FeatureError> {
    let total = header.len() as u64 + progress.layout.data_bytes();
    let resumable = fs::read(sidecar)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Progress>(&bytes).ok())
        .filter(|p| {
            p.key == progress.key
                && p.layout == progress.layout
                && p.header_len == header.len()
                && p.rows_done <= progress.layout.rows
        })
        .filter(|_| fs::metadata(partial).is_ok_and(|m| m.len() == total));
    if let Some(p) = resumable {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(partial)
            .map_err(io_err(partial))?;
        tracing::info!(
            file = %partial.display(),
            rows_done = p.rows_done,
            rows = progress.layout.rows,
            "resuming interrupted feature encoding"
        );
        return Ok((file, p.rows_done));
    }
    if partial.exists() || sidecar.exists() {
        tracing::info!(file = %partial.display(), "discarding unusable partial feature file");
    }
    let _ = fs::remove_file(sidecar);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(partial)
        .map_err(io_err(partial))?;
    file.write_all(header).map_err(io_err(partial))?;
    file.set_len(total).map_err(io_err(partial))?;
    file.sync_all().map_err(io_err(partial))?;
    write_progress(sidecar, progress, 0)?;
    Ok((file, 0))
}

fn write_progress(
    sidecar: &Path,
    progress: &Progress,
    rows_done: usize,
) -> Result<(), FeatureError> {
    let record = Progress {
        key: progress.key.clone(),
        layout: progress.layout,
        header_len: progress.header_len,
        rows_done,
    };
    let bytes = serde_json::to_vec(&record).map_err(|e| FeatureError::Format {
        path: sidecar.to_path_buf(),
        message: e.to_string(),
    })?;
    crate::fsutil::write_atomic(sidecar, &bytes).map_err(|e| match e {
        DataError::Io { path, error } => FeatureError::Io { path, error },
        other => FeatureError::Image(other),
    })
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// SHA-256 (hex) of `file` from byte `start` to its end.
fn sha256_from(file: &mut File, path: &Path, start: u64) -> Result<String, FeatureError> {
    file.seek(SeekFrom::Start(start)).map_err(io_err(path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(io_err(path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// Writes a cache entry row batch by row batch, resuming an interrupted write (see the module docs).
///
/// Rows go to `<out>.partial`, laid out as the final file; after every [`FeatureWriter::write_rows`]
/// the file is synced and `<out>.partial.json` records the completed row count.
/// [`FeatureWriter::finish`] computes the checksum, patches the header and renames the file to `<out>`.
#[derive(Debug)]
pub struct FeatureWriter {
    file: File,
    out: PathBuf,
    partial: PathBuf,
    sidecar: PathBuf,
    progress: Progress,
    names: Vec<String>,
    rows_done: usize,
}

impl FeatureWriter {
    /// Opens the writer for `out`: `names` are the image ids in row order, `dim` the pooled
    /// feature length and `spatial` the `[C, H, W]` grid shape when `key.spatial`.
    ///
    /// A matching partial file of an earlier call is resumed; anything else there is discarded.
    pub fn create(
        out: &Path,
        key: &FeatureKey,
        names: Vec<String>,
        dim: usize,
        spatial: Option<[usize; 3]>,
    ) -> Result<FeatureWriter, FeatureError> {
        let invalid = |message: String| FeatureError::Invalid {
            path: out.to_path_buf(),
            message,
        };
        if names.is_empty() {
            return Err(invalid("no images to encode".into()));
        }
        if dim == 0 && spatial.is_none() {
            return Err(invalid(
                "pooled features of size 0 and no spatial grid".into(),
            ));
        }
        if spatial.is_some() != key.spatial {
            return Err(invalid(format!(
                "spatial grid {}, but the cache key says spatial = {}",
                if spatial.is_some() {
                    "given"
                } else {
                    "missing"
                },
                key.spatial
            )));
        }
        let layout = Layout {
            rows: names.len(),
            dim,
            spatial,
        };
        let header = header_bytes(key, &names, &layout, PLACEHOLDER_SHA).map_err(invalid)?;
        let progress = Progress {
            key: key.clone(),
            layout,
            header_len: header.len(),
            rows_done: 0,
        };
        if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(io_err(dir))?;
        }
        let partial = with_suffix(out, ".partial");
        let sidecar = with_suffix(out, ".partial.json");
        let (file, rows_done) = open_partial(&partial, &sidecar, &progress, &header)?;
        Ok(FeatureWriter {
            file,
            out: out.to_path_buf(),
            partial,
            sidecar,
            progress,
            names,
            rows_done,
        })
    }

    /// Rows durably written so far (including resumed ones).
    pub fn rows_done(&self) -> usize {
        self.rows_done
    }

    /// Total rows of the entry.
    pub fn rows(&self) -> usize {
        self.progress.layout.rows
    }

    /// Appends the next rows: `pooled` `[n, dim]` and, for a spatial entry, `spatial` `[n, C, H, W]`
    /// (row-major), then syncs the file and records the progress.
    pub fn write_rows(
        &mut self,
        pooled: &[f32],
        spatial: Option<&[f32]>,
    ) -> Result<(), FeatureError> {
        let layout = self.progress.layout;
        let invalid = |message: String| FeatureError::Invalid {
            path: self.out.clone(),
            message,
        };
        let per_spatial = layout.spatial_per();
        let n = if layout.dim == 0 {
            // A grid-only entry: the rows are counted on the grid.
            match spatial {
                Some(grid) if pooled.is_empty() && per_spatial > 0 => grid.len() / per_spatial,
                _ => {
                    return Err(invalid(format!(
                        "{} pooled values for an entry without pooled features",
                        pooled.len()
                    )))
                }
            }
        } else if pooled.len().is_multiple_of(layout.dim) {
            pooled.len() / layout.dim
        } else {
            return Err(invalid(format!(
                "{} pooled values are not whole rows of {}",
                pooled.len(),
                layout.dim
            )));
        };
        if self.rows_done + n > layout.rows {
            return Err(invalid(format!(
                "{n} more rows after {} exceed the {} images",
                self.rows_done, layout.rows
            )));
        }
        match spatial {
            Some(grid) if layout.spatial.is_some() && grid.len() == n * per_spatial => {}
            None if layout.spatial.is_none() => {}
            Some(grid) => {
                return Err(invalid(format!(
                    "{} spatial values for {n} rows, expected {} per row{}",
                    grid.len(),
                    per_spatial,
                    if layout.spatial.is_none() {
                        " (the entry has no spatial grid)"
                    } else {
                        ""
                    }
                )))
            }
            None => return Err(invalid("spatial grid missing".into())),
        }
        let header_len = self.progress.header_len as u64;
        let partial = &self.partial;
        self.file
            .seek(SeekFrom::Start(
                header_len + (self.rows_done * layout.dim * 4) as u64,
            ))
            .map_err(io_err(partial))?;
        self.file
            .write_all(&f32_bytes(pooled))
            .map_err(io_err(partial))?;
        if let Some(grid) = spatial {
            let base = header_len + layout.pooled_bytes();
            self.file
                .seek(SeekFrom::Start(
                    base + (self.rows_done * per_spatial * 4) as u64,
                ))
                .map_err(io_err(partial))?;
            self.file
                .write_all(&f32_bytes(grid))
                .map_err(io_err(partial))?;
        }
        self.file.sync_data().map_err(io_err(partial))?;
        self.rows_done += n;
        write_progress(&self.sidecar, &self.progress, self.rows_done)
    }

    /// Checks that every row was written, writes the checksum and renames the file to `<out>`.
    pub fn finish(mut self) -> Result<(), FeatureError> {
        let invalid = |message: String| FeatureError::Invalid {
            path: self.out.clone(),
            message,
        };
        if self.rows_done != self.rows() {
            return Err(invalid(format!(
                "finished after {} of {} rows",
                self.rows_done,
                self.rows()
            )));
        }
        let header_len = self.progress.header_len;
        let sha = sha256_from(&mut self.file, &self.partial, header_len as u64)?;
        let header = header_bytes(&self.progress.key, &self.names, &self.progress.layout, &sha)
            .map_err(invalid)?;
        if header.len() != header_len {
            return Err(invalid("header length changed while finishing".into()));
        }
        self.file
            .seek(SeekFrom::Start(0))
            .map_err(io_err(&self.partial))?;
        self.file
            .write_all(&header)
            .map_err(io_err(&self.partial))?;
        self.file.sync_all().map_err(io_err(&self.partial))?;
        drop(self.file);
        fs::rename(&self.partial, &self.out).map_err(io_err(&self.out))?;
        crate::fsutil::sync_dir(&self.out).map_err(io_err(&self.out))?;
        let _ = fs::remove_file(&self.sidecar);
        Ok(())
    }
}

/// The cache entry path for `key` under `cache_dir`, and the store there when it is usable.
///
/// A missing file gives `None`; a stale or corrupt one is logged, deleted and gives `None`
/// (the caller rebuilds it); I/O errors other than a missing file are returned.
pub fn open_cached(
    cache_dir: &Path,
    key: &FeatureKey,
) -> Result<(PathBuf, Option<FeatureStore>), FeatureError> {
    fs::create_dir_all(cache_dir).map_err(io_err(cache_dir))?;
    let path = cache_dir.join(key.file_name());
    match FeatureStore::open(&path, key) {
        Ok(store) => {
            tracing::info!(file = %path.display(), rows = store.len(), "using cached features");
            Ok((path, Some(store)))
        }
        Err(FeatureError::Io { error, .. }) if error.kind() == std::io::ErrorKind::NotFound => {
            tracing::info!(file = %path.display(), "building feature cache");
            Ok((path, None))
        }
        Err(e) => {
            tracing::warn!("{e}; rebuilding it");
            fs::remove_file(&path).map_err(io_err(&path))?;
            Ok((path, None))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(dir: &Path, spatial: bool) -> FeatureKey {
        let img = dir.join("a.jpg");
        fs::write(&img, b"x").unwrap();
        FeatureKey::new(
            "resnet_tiny",
            None,
            None,
            &ImageConfig::imagenet(32),
            &[("a.jpg".into(), img.clone()), ("b.jpg".into(), img)],
            spatial,
        )
        .unwrap()
    }

    #[test]
    fn writer_round_trips_rows_through_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let key = key(dir.path(), true);
        let out = dir.path().join("cache/f.safetensors");
        let names = vec!["a.jpg".to_string(), "b.jpg".to_string()];
        let mut w = FeatureWriter::create(&out, &key, names.clone(), 2, Some([1, 1, 3])).unwrap();
        w.write_rows(&[1.0, 2.0], Some(&[3.0, 4.0, 5.0])).unwrap();
        w.write_rows(&[6.0, 7.0], Some(&[8.0, 9.0, 10.0])).unwrap();
        w.finish().unwrap();
        assert!(!with_suffix(&out, ".partial").exists());
        let store = FeatureStore::open(&out, &key).unwrap();
        assert!(store.zero_copy());
        assert_eq!(store.names(), names);
        assert_eq!(store.pooled(1), [6.0, 7.0]);
        assert_eq!(store.spatial(0).unwrap(), [3.0, 4.0, 5.0]);
        assert_eq!(store.spatial_shape(), Some([1, 1, 3]));
        // The key JSON is the one caplab-models wrote (architecture by name), so old caches stay valid.
        assert!(key
            .canonical_json()
            .starts_with(r#"{"arch":"resnet_tiny","#));
        assert!(key.file_name().starts_with("resnet_tiny-"));
    }

    #[test]
    fn jpeg_draft_changes_the_cache_key_only_when_on() {
        let dir = tempfile::tempdir().unwrap();
        let off = key(dir.path(), false);
        // Off, the key's image part is the JSON caches were keyed by before the setting existed.
        assert!(
            off.canonical_json().contains(
                r#""image":{"size":32,"mean":[0.485,0.456,0.406],"std":[0.229,0.224,0.225]},"#
            ),
            "{}",
            off.canonical_json()
        );
        let on = FeatureKey {
            image: ImageConfig {
                jpeg_draft: true,
                ..off.image.clone()
            },
            ..off.clone()
        };
        assert_ne!(on.file_name(), off.file_name());
        assert_ne!(on, off);
        let back: FeatureKey = serde_json::from_str(&on.canonical_json()).unwrap();
        assert_eq!(back, on);
    }

    #[test]
    fn writer_rejects_wrong_row_sizes_and_early_finish() {
        let dir = tempfile::tempdir().unwrap();
        let key = key(dir.path(), false);
        let out = dir.path().join("f.safetensors");
        let names = vec!["a.jpg".to_string(), "b.jpg".to_string()];
        let mut w = FeatureWriter::create(&out, &key, names.clone(), 2, None).unwrap();
        let err = w.write_rows(&[1.0, 2.0, 3.0], None).unwrap_err();
        assert!(err.to_string().contains("not whole rows of 2"), "{err}");
        let err = w.write_rows(&[1.0, 2.0], Some(&[1.0])).unwrap_err();
        assert!(err.to_string().contains("no spatial grid"), "{err}");
        w.write_rows(&[1.0, 2.0], None).unwrap();
        let err = w.finish().unwrap_err();
        assert!(err.to_string().contains("after 1 of 2 rows"), "{err}");
        assert!(!out.exists());
        let err = FeatureWriter::create(&out, &key, names, 2, Some([1, 1, 1])).unwrap_err();
        assert!(err.to_string().contains("spatial = false"), "{err}");
    }
}
