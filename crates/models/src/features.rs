//! Feature cache: pooled (and optionally spatial) features of a frozen encoder, one safetensors file per key.
//!
//! A cache entry is a safetensors file with an `F32` tensor `pooled` `[N, D]` and, when the key asks
//! for it, `spatial` `[N, C, H, W]` (rows in the order of the image list). Its `__metadata__` holds
//! the format version (`caplab.format`), the canonical JSON of the [`FeatureKey`]
//! (`caplab.key`), the image ids as a JSON array of strings (`caplab.names`) and the SHA-256 of the
//! whole tensor data section (`caplab.sha256`). [`FeatureStore::open`] checks all of them, so a
//! stale or corrupt file is an error and never silently used.
//!
//! Writing resumes: [`encode_images`] writes into `<name>.partial`, laid out exactly as the final
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

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use caplab_data::error::DataError;
use caplab_data::image::{load_images, ImageConfig};
use memmap2::Mmap;
use safetensors::tensor::{Dtype, Metadata, TensorInfo};
use safetensors::SafeTensors;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::encoder::{Arch, Encoder, EncoderConfig};

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
    /// An I/O operation on `path` failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
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
    move |source| FeatureError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Identity of a cache entry: what produced the features and from which images.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FeatureKey {
    /// Encoder architecture.
    pub arch: Arch,
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
    /// Builds the key of `encoder`'s features, hashing the weights file's content and the image
    /// list's metadata.
    pub fn new(
        encoder: &EncoderConfig,
        image: &ImageConfig,
        images: &[(String, PathBuf)],
        spatial: bool,
    ) -> Result<Self, FeatureError> {
        let weights_sha256 = encoder.weights.as_deref().map(sha256_file).transpose()?;
        Ok(FeatureKey {
            arch: encoder.arch,
            weights_sha256,
            image: image.clone(),
            images_sha256: images_sha256(images)?,
            spatial,
            transform_input: (encoder.arch == Arch::InceptionV3).then_some(encoder.transform_input),
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
        format!("{}-{}.safetensors", self.arch.name(), &digest[..16])
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
/// little-endian host (always the case for files [`encode_images`] writes: the header is padded
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

/// Writes `bytes` to `path` through a temporary sibling and a rename.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), FeatureError> {
    let tmp = with_suffix(path, ".tmp");
    fs::write(&tmp, bytes).map_err(io_err(&tmp))?;
    fs::rename(&tmp, path).map_err(io_err(path))
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
    write_atomic(sidecar, &bytes)
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

/// Encodes `images` (id, path) with `encoder` in batches on backend B (inference only), writing to a temp file next to `out` and renaming atomically at the end; progress via a callback `on_batch(done, total)`.
///
/// `cfg` and `spatial` must equal `key.image` and `key.spatial`, and the encoder's feature size
/// must match `key.arch`. Rows are written to `<out>.partial` and resumed from
/// `<out>.partial.json` after an interruption (see the module docs); `done` counts rows
/// written so far, including resumed ones.
#[allow(clippy::too_many_arguments)]
pub fn encode_images<B: Backend>(
    encoder: &Encoder<B>,
    images: &[(String, PathBuf)],
    cfg: &ImageConfig,
    batch_size: usize,
    spatial: bool,
    key: &FeatureKey,
    out: &Path,
    device: &B::Device,
    on_batch: &mut dyn FnMut(usize, usize),
) -> Result<(), FeatureError> {
    let invalid = |message: String| FeatureError::Invalid {
        path: out.to_path_buf(),
        message,
    };
    if images.is_empty() {
        return Err(invalid("no images to encode".into()));
    }
    if *cfg != key.image || spatial != key.spatial {
        return Err(invalid(
            "image configuration or spatial flag differs from the cache key".into(),
        ));
    }
    let size = cfg.size as usize;
    let batch_size = batch_size.max(1);

    // One zero image fixes the output sizes before anything is written.
    let probe = Tensor::<B, 4>::zeros([1, 3, size, size], device);
    let (pooled, grid) = encoder.forward_both(probe);
    let dim = pooled.dims()[1];
    if dim != key.arch.feature_dim() {
        return Err(invalid(format!(
            "encoder yields {dim}-dimensional features, but the key's architecture {} has {}",
            key.arch,
            key.arch.feature_dim()
        )));
    }
    let [_, c, h, w] = grid.dims();
    let layout = Layout {
        rows: images.len(),
        dim,
        spatial: spatial.then_some([c, h, w]),
    };
    let names: Vec<String> = images.iter().map(|(id, _)| id.clone()).collect();
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
    let (mut file, start) = open_partial(&partial, &sidecar, &progress, &header)?;
    let total = images.len();
    on_batch(start, total);

    let header_len = header.len() as u64;
    let spatial_base = header_len + layout.pooled_bytes();
    let per_spatial = layout.spatial_per();
    let mut row = start;
    while row < total {
        let end = (row + batch_size).min(total);
        let n = end - row;
        let paths: Vec<&Path> = images[row..end].iter().map(|(_, p)| p.as_path()).collect();
        let pixels = load_images(&paths, cfg)?;
        let input = Tensor::<B, 4>::from_data(TensorData::new(pixels, [n, 3, size, size]), device);
        let (pooled, grid) = if spatial {
            let (p, g) = encoder.forward_both(input);
            (p, Some(g))
        } else {
            (encoder.forward_pooled(input), None)
        };
        let pooled: Vec<f32> = pooled.into_data().iter::<f32>().collect();
        if pooled.len() != n * dim {
            return Err(invalid(format!(
                "encoder returned {} pooled values for {n} images",
                pooled.len()
            )));
        }
        file.seek(SeekFrom::Start(header_len + (row * dim * 4) as u64))
            .map_err(io_err(&partial))?;
        file.write_all(&f32_bytes(&pooled))
            .map_err(io_err(&partial))?;
        if let Some(grid) = grid {
            if grid.dims()[1..] != [c, h, w] {
                return Err(invalid(format!(
                    "encoder returned a spatial grid {:?}, expected [{c}, {h}, {w}]",
                    &grid.dims()[1..]
                )));
            }
            let grid: Vec<f32> = grid.into_data().iter::<f32>().collect();
            file.seek(SeekFrom::Start(
                spatial_base + (row * per_spatial * 4) as u64,
            ))
            .map_err(io_err(&partial))?;
            file.write_all(&f32_bytes(&grid))
                .map_err(io_err(&partial))?;
        }
        file.sync_data().map_err(io_err(&partial))?;
        write_progress(&sidecar, &progress, end)?;
        row = end;
        on_batch(row, total);
    }

    let sha = sha256_from(&mut file, &partial, header_len)?;
    let final_header = header_bytes(key, &names, &layout, &sha).map_err(invalid)?;
    if final_header.len() != header.len() {
        return Err(invalid("header length changed while finishing".into()));
    }
    file.seek(SeekFrom::Start(0)).map_err(io_err(&partial))?;
    file.write_all(&final_header).map_err(io_err(&partial))?;
    file.sync_all().map_err(io_err(&partial))?;
    drop(file);
    fs::rename(&partial, out).map_err(io_err(out))?;
    let _ = fs::remove_file(&sidecar);
    Ok(())
}

/// Opens the cache entry for `key` under `cache_dir`, building it (and logging that) when it is missing, stale or corrupt; returns the store and whether it was built now.
pub fn cached<B: Backend>(
    cache_dir: &Path,
    key: &FeatureKey,
    encoder: &Encoder<B>,
    images: &[(String, PathBuf)],
    batch_size: usize,
    device: &B::Device,
    on_batch: &mut dyn FnMut(usize, usize),
) -> Result<(FeatureStore, bool), FeatureError> {
    fs::create_dir_all(cache_dir).map_err(io_err(cache_dir))?;
    let path = cache_dir.join(key.file_name());
    match FeatureStore::open(&path, key) {
        Ok(store) => {
            tracing::info!(file = %path.display(), rows = store.len(), "using cached features");
            return Ok((store, false));
        }
        Err(FeatureError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            tracing::info!(file = %path.display(), images = images.len(), "building feature cache");
        }
        Err(e) => {
            tracing::warn!("{e}; rebuilding it");
            fs::remove_file(&path).map_err(io_err(&path))?;
        }
    }
    encode_images(
        encoder,
        images,
        &key.image,
        batch_size,
        key.spatial,
        key,
        &path,
        device,
        on_batch,
    )?;
    Ok((FeatureStore::open(&path, key)?, true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoder::EncoderConfig;
    use burn::backend::Flex;
    use caplab_data::synth::{generate, SynthConfig};

    type B = Flex;

    /// A fresh scratch directory, removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(tag: &str) -> Self {
            static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let dir = std::env::temp_dir()
                .join(format!("caplab-features-{tag}-{}-{n}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// `n` synthetic JPEGs (32 px) under `dir/data/images`, as (id, path) in file-name order.
    fn images(dir: &Path, n: usize) -> Vec<(String, PathBuf)> {
        let cfg = SynthConfig {
            images: n,
            size: 32,
            ..SynthConfig::default()
        };
        generate(&cfg, &dir.join("data")).unwrap();
        let mut out: Vec<(String, PathBuf)> = fs::read_dir(dir.join("data/images"))
            .unwrap()
            .map(|e| {
                let p = e.unwrap().path();
                (p.file_name().unwrap().to_string_lossy().into_owned(), p)
            })
            .collect();
        out.sort();
        out
    }

    fn setup(
        spatial: bool,
    ) -> (
        Encoder<B>,
        ImageConfig,
        FeatureKey,
        Vec<(String, PathBuf)>,
        Scratch,
    ) {
        let scratch = Scratch::new(if spatial { "s" } else { "p" });
        let imgs = images(&scratch.0, 5);
        let cfg = ImageConfig::imagenet(32);
        let key =
            FeatureKey::new(&EncoderConfig::new(Arch::ResnetTiny), &cfg, &imgs, spatial).unwrap();
        let encoder = EncoderConfig::new(Arch::ResnetTiny).init::<B>(&Default::default());
        (encoder, cfg, key, imgs, scratch)
    }

    #[test]
    fn encodes_rows_matching_a_direct_forward() {
        let (encoder, cfg, key, imgs, scratch) = setup(true);
        let out = scratch.0.join("feat.safetensors");
        let mut calls = Vec::new();
        let device = Default::default();
        encode_images(
            &encoder,
            &imgs,
            &cfg,
            2,
            true,
            &key,
            &out,
            &device,
            &mut |d, t| calls.push((d, t)),
        )
        .unwrap();
        assert_eq!(calls, vec![(0, 5), (2, 5), (4, 5), (5, 5)]);
        assert!(!with_suffix(&out, ".partial").exists());
        assert!(!with_suffix(&out, ".partial.json").exists());
        let store = FeatureStore::open(&out, &key).unwrap();
        assert_eq!(store.len(), 5);
        assert_eq!(store.dim(), 128);
        assert!(matches!(store.floats, Floats::Mapped));
        let names: Vec<&str> = imgs.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(store.names(), names);
        let [c, h, w] = store.spatial_shape().unwrap();
        assert_eq!(c, 128);
        // Row 3 equals encoding that image alone (inference-mode batch norm: batch-independent).
        let pixels = load_images(&[&imgs[3].1], &cfg).unwrap();
        let x = Tensor::<B, 4>::from_data(TensorData::new(pixels, [1, 3, 32, 32]), &device);
        let (p, g) = encoder.forward_both(x);
        let p: Vec<f32> = p.into_data().iter::<f32>().collect();
        let g: Vec<f32> = g.into_data().iter::<f32>().collect();
        let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-4);
        assert!(close(store.pooled(3), &p));
        assert_eq!(store.spatial(3).unwrap().len(), c * h * w);
        assert!(close(store.spatial(3).unwrap(), &g));
        assert!(!close(store.pooled(2), store.pooled(3)));
    }

    #[test]
    fn cache_reuses_and_rejects_stale_or_corrupt_files() {
        let (encoder, _cfg, key, imgs, scratch) = setup(false);
        let dir = scratch.0.join("cache");
        let device = Default::default();
        let (store, built) =
            cached(&dir, &key, &encoder, &imgs, 4, &device, &mut |_, _| {}).unwrap();
        assert!(built);
        assert!(store.spatial(0).is_none());
        let first = store.pooled(4).to_vec();
        drop(store);
        let (store, built) =
            cached(&dir, &key, &encoder, &imgs, 4, &device, &mut |_, _| {}).unwrap();
        assert!(!built);
        assert_eq!(store.pooled(4), first.as_slice());
        let path = store.path().to_path_buf();
        assert_eq!(path.file_name().unwrap().to_str().unwrap(), key.file_name());
        drop(store);

        // Another key (spatial, other size) is a different file and a stale one for this path.
        let other = FeatureKey {
            spatial: true,
            ..key.clone()
        };
        assert_ne!(other.file_name(), key.file_name());
        let err = FeatureStore::open(&path, &other).unwrap_err();
        assert!(matches!(err, FeatureError::Stale { .. }), "{err}");
        assert!(err.to_string().contains(&key.file_name()), "{err}");

        // Flip one byte of the data: detected by the checksum, then rebuilt by `cached`.
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x40;
        fs::write(&path, &bytes).unwrap();
        let err = FeatureStore::open(&path, &key).unwrap_err();
        assert!(matches!(err, FeatureError::Corrupt { .. }), "{err}");
        let (store, built) =
            cached(&dir, &key, &encoder, &imgs, 4, &device, &mut |_, _| {}).unwrap();
        assert!(built);
        assert_eq!(store.pooled(4), first.as_slice());

        // Garbage under the final name is a format error.
        fs::write(&path, b"not safetensors").unwrap();
        let err = FeatureStore::open(&path, &key).unwrap_err();
        assert!(matches!(err, FeatureError::Format { .. }), "{err}");
    }

    #[test]
    fn interrupted_encoding_resumes_from_the_sidecar() {
        let (encoder, cfg, key, imgs, scratch) = setup(false);
        let device = Default::default();
        let reference = scratch.0.join("ref.safetensors");
        encode_images(
            &encoder,
            &imgs,
            &cfg,
            2,
            false,
            &key,
            &reference,
            &device,
            &mut |_, _| {},
        )
        .unwrap();

        // Interrupt after the first batch: the callback panics, as a crash would stop the loop.
        let out = scratch.0.join("feat.safetensors");
        let crashed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            encode_images(
                &encoder,
                &imgs,
                &cfg,
                2,
                false,
                &key,
                &out,
                &device,
                &mut |d, _| {
                    assert!(d < 2, "simulated crash");
                },
            )
        }));
        assert!(crashed.is_err());
        assert!(!out.exists(), "a crash must not leave the final file");
        assert!(with_suffix(&out, ".partial").exists());

        let mut calls = Vec::new();
        encode_images(
            &encoder,
            &imgs,
            &cfg,
            2,
            false,
            &key,
            &out,
            &device,
            &mut |d, t| calls.push((d, t)),
        )
        .unwrap();
        assert_eq!(
            calls.first(),
            Some(&(2, 5)),
            "resumed after the completed batch"
        );
        assert!(!with_suffix(&out, ".partial.json").exists());
        let a = FeatureStore::open(&out, &key).unwrap();
        let b = FeatureStore::open(&reference, &key).unwrap();
        for i in 0..5 {
            assert_eq!(a.pooled(i), b.pooled(i));
        }

        // A partial for another key is discarded and encoding restarts at row 0.
        let partial = with_suffix(&out, ".partial");
        fs::write(&partial, b"junk").unwrap();
        fs::write(with_suffix(&out, ".partial.json"), b"{}").unwrap();
        let mut first = None;
        encode_images(
            &encoder,
            &imgs,
            &cfg,
            2,
            false,
            &key,
            &out,
            &device,
            &mut |d, _| {
                first.get_or_insert(d);
            },
        )
        .unwrap();
        assert_eq!(first, Some(0));
        assert_eq!(
            FeatureStore::open(&out, &key).unwrap().pooled(1),
            b.pooled(1)
        );
    }

    #[test]
    fn key_tracks_images_weights_and_rejects_bad_arguments() {
        let (encoder, cfg, key, imgs, scratch) = setup(false);
        // Touching the image list (reorder, drop one) changes the hash; the same list does not.
        let same =
            FeatureKey::new(&EncoderConfig::new(Arch::ResnetTiny), &cfg, &imgs, false).unwrap();
        assert_eq!(same, key);
        let mut reordered = imgs.clone();
        reordered.swap(0, 1);
        assert_ne!(images_sha256(&reordered).unwrap(), key.images_sha256);
        assert_ne!(images_sha256(&imgs[1..]).unwrap(), key.images_sha256);
        let weights = scratch.0.join("w.bin");
        fs::write(&weights, b"weights").unwrap();
        let with_w = FeatureKey::new(
            &EncoderConfig::new(Arch::ResnetTiny).with_weights(Some(weights.clone())),
            &cfg,
            &imgs,
            false,
        )
        .unwrap();
        // `printf weights | sha256sum`
        assert_eq!(
            with_w.weights_sha256.as_deref(),
            Some("9a129038d9a00aed0cf6a7ea059ca50a813449061ab87848cf1a13eafdf33b2c")
        );
        assert_ne!(with_w.file_name(), key.file_name());
        assert!(key.file_name().starts_with("resnet_tiny-"));
        // Inception's transform_input is part of the key; other architectures do not carry it.
        assert_eq!(key.transform_input, None);
        let inception = |transform| {
            let config = EncoderConfig::new(Arch::InceptionV3).with_transform_input(transform);
            FeatureKey::new(&config, &cfg, &imgs, false).unwrap()
        };
        assert_eq!(inception(true).transform_input, Some(true));
        assert_ne!(inception(true).file_name(), inception(false).file_name());
        let missing = scratch.0.join("gone.jpg");
        let err = images_sha256(&[("gone.jpg".into(), missing)]).unwrap_err();
        assert!(err.to_string().contains("gone.jpg"), "{err}");

        let device = Default::default();
        let out = scratch.0.join("x.safetensors");
        let mut noop = |_: usize, _: usize| {};
        let err = encode_images(
            &encoder,
            &imgs,
            &ImageConfig::imagenet(48),
            2,
            false,
            &key,
            &out,
            &device,
            &mut noop,
        )
        .unwrap_err();
        assert!(matches!(err, FeatureError::Invalid { .. }), "{err}");
        let wrong_arch = FeatureKey {
            arch: Arch::Resnet18,
            ..key.clone()
        };
        let err = encode_images(
            &encoder,
            &imgs,
            &cfg,
            2,
            false,
            &wrong_arch,
            &out,
            &device,
            &mut noop,
        )
        .unwrap_err();
        assert!(err.to_string().contains("x.safetensors"), "{err}");
        let mut broken = imgs.clone();
        fs::write(&broken[2].1, b"not a jpeg").unwrap();
        broken[2].0 = "broken".into();
        let err = encode_images(
            &encoder, &broken, &cfg, 2, false, &key, &out, &device, &mut noop,
        )
        .unwrap_err();
        assert!(err.to_string().contains(&imgs[2].0), "{err}");
        assert!(!out.exists());
    }
}
