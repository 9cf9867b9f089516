//! Word vectors in GloVe's text format (`word v1 v2 … vd` per line) to initialise embeddings.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use burn::module::Param;
use burn::nn::Embedding;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

/// Errors reading a word-vector file; each names the file (and line).
#[derive(Debug, thiserror::Error)]
pub enum GloveError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A line is not `word` followed by `dim` numbers.
    #[error("{path}:{line}: {message}")]
    Line {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// Vectors of the words of `vocab` found in `path` (rows of a [V, dim] matrix, `None` if absent).
///
/// Words are matched exactly (GloVe files are lower-case, as caplab's tokenizer is). Lines of
/// other words are skipped without parsing their numbers, so large files load quickly.
pub fn read_vectors(
    path: &Path,
    vocab: &[&str],
    dim: usize,
) -> Result<Vec<Option<Vec<f32>>>, GloveError> {
    let index: std::collections::HashMap<&str, usize> =
        vocab.iter().enumerate().map(|(i, w)| (*w, i)).collect();
    let file = File::open(path).map_err(|source| GloveError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut rows = vec![None; vocab.len()];
    for (n, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|source| GloveError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let mut parts = line.split(' ');
        let Some(word) = parts.next() else { continue };
        let Some(&row) = index.get(word) else {
            continue;
        };
        let values: Result<Vec<f32>, _> = parts.filter(|p| !p.is_empty()).map(str::parse).collect();
        let values = values.map_err(|e| GloveError::Line {
            path: path.to_path_buf(),
            line: n + 1,
            message: format!("vector of {word:?} is not numeric: {e}"),
        })?;
        if values.len() != dim {
            return Err(GloveError::Line {
                path: path.to_path_buf(),
                line: n + 1,
                message: format!(
                    "vector of {word:?} has {} values, the embedding has {dim} (model embed_dim)",
                    values.len()
                ),
            });
        }
        rows[row] = Some(values);
    }
    Ok(rows)
}

/// Replaces the rows of `embedding` that have a vector; returns the embedding and how many did.
pub fn apply<B: Backend>(
    embedding: Embedding<B>,
    rows: &[Option<Vec<f32>>],
) -> (Embedding<B>, usize) {
    let weight = embedding.weight.val();
    let [v, d] = weight.dims();
    let device = weight.device();
    let mut values: Vec<f32> = weight.into_data().iter::<f32>().collect();
    let mut found = 0;
    for (i, row) in rows.iter().enumerate().take(v) {
        if let Some(vec) = row {
            values[i * d..(i + 1) * d].copy_from_slice(vec);
            found += 1;
        }
    }
    let weight = Tensor::<B, 2>::from_data(TensorData::new(values, [v, d]), &device);
    (
        Embedding {
            weight: Param::from_tensor(weight),
        },
        found,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;
    use burn::nn::EmbeddingConfig;

    fn scratch(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("caplab-glove-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        let path = dir.join("vectors.txt");
        std::fs::write(&path, text).expect("write vectors");
        path
    }

    #[test]
    fn known_words_get_their_vectors_and_others_keep_their_init() {
        let path = scratch("ok", "red 1 2 3\nzebra 9 9 9\nsquare 4 5 6\n");
        let rows = read_vectors(&path, &["<pad>", "red", "square", "circle"], 3).expect("read");
        assert_eq!(rows[1], Some(vec![1.0, 2.0, 3.0]));
        assert_eq!(rows[2], Some(vec![4.0, 5.0, 6.0]));
        assert!(rows[0].is_none() && rows[3].is_none());
        let emb = EmbeddingConfig::new(4, 3).init::<NdArray>(&Default::default());
        let before: Vec<f32> = emb.weight.val().into_data().iter::<f32>().collect();
        let (emb, found) = apply(emb, &rows);
        let after: Vec<f32> = emb.weight.val().into_data().iter::<f32>().collect();
        assert_eq!(found, 2);
        assert_eq!(&after[3..9], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!(&after[9..12], &before[9..12]);
    }

    #[test]
    fn a_wrong_dimension_names_the_file_and_line() {
        let path = scratch("bad", "blue 1 2 3\nred 1 2\n");
        let err = read_vectors(&path, &["red"], 3).expect_err("2 values for dim 3");
        let msg = err.to_string();
        assert!(
            msg.contains("vectors.txt:2") && msg.contains("embed_dim"),
            "{msg}"
        );
        let missing = read_vectors(Path::new("/no/such/glove.txt"), &["red"], 3);
        assert!(missing
            .expect_err("missing")
            .to_string()
            .contains("/no/such/glove.txt"));
    }
}
