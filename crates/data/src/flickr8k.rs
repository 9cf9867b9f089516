//! Flickr8k / Flickr30k captions files and split lists: the Kaggle `captions.txt` (CSV with an
//! `image,caption` header), the Kaggle Flickr30k `results.csv` (`image_name| comment_number|
//! comment`), the original token files (`Flickr8k.token.txt`, `results_20130124.token`:
//! `name.jpg#N<TAB>caption`) and the original split lists (`Flickr_8k.trainImages.txt`, …).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::check::{Problems, Severity};
use crate::dataset::ImageRecord;
use crate::error::DataError;
use crate::fsutil::write_atomic;

/// One CSV row: the 1-based line it starts on, the image file name and the caption.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaptionRow {
    /// 1-based line number of the record in the CSV file (the header is line 1).
    pub line: u64,
    /// Image file name as written in the `image` column.
    pub image: String,
    /// Caption text, trimmed.
    pub caption: String,
}

/// Reads a Kaggle-style `captions.txt` into `(image, caption)` pairs in file order.
///
/// See [`parse_caption_rows`] for the format and its errors.
pub fn read_captions_csv(path: &Path) -> Result<Vec<(String, String)>, DataError> {
    Ok(read_caption_rows(path)?
        .into_iter()
        .map(|r| (r.image, r.caption))
        .collect())
}

/// Like [`read_captions_csv`] but keeps the line number of every row.
pub fn read_caption_rows(path: &Path) -> Result<Vec<CaptionRow>, DataError> {
    let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
    parse_caption_rows(path, &text)
}

/// Parses the text of the `captions.txt` at `path` (named in errors): the one reader of this
/// format, used by `caplab run` (datasets) and `caplab score` (references).
///
/// The file is RFC 4180 CSV (quoted commas, `""` escapes and CRLF work); the header must
/// contain `image` and `caption` columns (any order, case-insensitive). An unquoted comma in
/// a trailing `caption` column is tolerated by re-joining the extra fields. A quoted field that
/// is never closed is an error naming the line it opens on (the `csv` crate would silently
/// swallow the rest of the file into it), and a header without any caption rows is an error
/// naming the file.
///
/// The Kaggle Flickr30k `results.csv` (`image_name| comment_number| comment`) is read too:
/// see [`collect_caption_rows`]. One bad line is that error; several are
/// [`DataError::Problems`].
pub fn parse_caption_rows(path: &Path, text: &str) -> Result<Vec<CaptionRow>, DataError> {
    let mut problems = Problems::default();
    let rows = collect_caption_rows(path, text, &mut problems);
    problems.into_result(rows)
}

/// The reader behind [`parse_caption_rows`]: every bad line goes into `problems` and reading
/// goes on with the next one.
///
/// The delimiter is taken from the header line: `|` when it contains one (the Kaggle Flickr30k
/// `results.csv`: `image_name| comment_number| comment`, fields trimmed, no quoting), else `,`.
/// The image column is `image` or `image_name`, the caption column `caption` or `comment`.
/// In the `|` layout a bad row (a missing `comment`, an empty one) is a warning and the row is
/// skipped, since the published file has such rows; in the `,` layout it is an error.
pub fn collect_caption_rows(path: &Path, text: &str, problems: &mut Problems) -> Vec<CaptionRow> {
    let header_line = text.lines().next().unwrap_or("");
    let piped = header_line.contains('|');
    if !piped {
        if let Some(line) = unterminated_quote_line(text) {
            problems.error(DataError::record(
                path,
                format!("line {line}"),
                "unterminated quote: the quoted field opened on this line is never closed by `\"` followed by `,` or a line end",
            ));
            return Vec::new();
        }
    }
    let (delimiter, row_severity, skipped) = if piped {
        (b'|', Severity::Warning, "; row skipped")
    } else {
        (b',', Severity::Error, "")
    };
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .delimiter(delimiter)
        .quoting(!piped)
        .from_reader(text.as_bytes());
    let csv_err = |e: csv::Error| {
        let loc = e
            .position()
            .map(|p| format!("line {}", p.line()))
            .unwrap_or_else(|| "CSV".to_string());
        DataError::record(path, loc, format!("invalid CSV: {e}"))
    };
    let headers = match rdr.headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            problems.error(csv_err(e));
            return Vec::new();
        }
    };
    let find = |names: &[&str]| {
        headers.iter().position(|h| {
            let h = h.trim().trim_start_matches('\u{feff}');
            names.iter().any(|n| h.eq_ignore_ascii_case(n))
        })
    };
    let found = || headers.iter().collect::<Vec<_>>().join(",");
    let Some(image_col) = find(&["image", "image_name"]) else {
        problems.error(DataError::record(
            path,
            "line 1",
            format!(
                "missing column `image` (or `image_name`) in header (found: {})",
                found()
            ),
        ));
        return Vec::new();
    };
    let Some(caption_col) = find(&["caption", "comment"]) else {
        problems.error(DataError::record(
            path,
            "line 1",
            format!(
                "missing column `caption` (or `comment`) in header (found: {})",
                found()
            ),
        ));
        return Vec::new();
    };
    let caption_last = caption_col + 1 == headers.len();
    let joiner = if piped { "|" } else { "," };
    let mut rows = Vec::new();
    let mut any_row = false;
    for record in rdr.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                problems.error(csv_err(e));
                continue;
            }
        };
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        let loc = format!("line {line}");
        if record.iter().all(|f| f.trim().is_empty()) {
            continue; // blank line
        }
        any_row = true;
        let image = record.get(image_col).map(str::trim).unwrap_or("");
        if image.is_empty() {
            problems.push(
                row_severity,
                DataError::record(
                    path,
                    loc,
                    format!("empty or missing `image` field{skipped}"),
                ),
            );
            continue;
        }
        let caption = match record.get(caption_col) {
            Some(_) if caption_last && record.len() > headers.len() => record
                .iter()
                .skip(caption_col)
                .collect::<Vec<_>>()
                .join(joiner),
            Some(c) => c.to_string(),
            None => {
                problems.push(
                    row_severity,
                    DataError::record(
                        path,
                        loc,
                        format!("missing `caption` field for image {image}{skipped}"),
                    ),
                );
                continue;
            }
        };
        let caption = caption.trim();
        if caption.is_empty() {
            problems.push(
                row_severity,
                DataError::record(
                    path,
                    loc,
                    format!("empty caption for image {image}{skipped}"),
                ),
            );
            continue;
        }
        rows.push(CaptionRow {
            line,
            image: image.to_string(),
            caption: caption.to_string(),
        });
    }
    if !any_row {
        problems.error(DataError::parse(
            path,
            "no caption rows after the `image,caption` header",
        ));
    }
    rows
}

/// True for the original Flickr token layout (`Flickr8k.token.txt`, `results_20130124.token`):
/// a file name ending in `.token` or `.token.txt`.
pub fn is_token_file(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    name.ends_with(".token") || name.ends_with(".token.txt")
}

/// Parses the original Flickr8k / Flickr30k token file: one `name.jpg#N<TAB>caption` per line
/// (N = 0‥4). Every bad line goes into `problems` (no tab, no `#N` after the name, an empty
/// caption, the same `name#N` twice) and reading goes on; blank lines are skipped.
pub fn collect_token_rows(path: &Path, text: &str, problems: &mut Problems) -> Vec<CaptionRow> {
    let mut rows = Vec::new();
    let mut seen: HashMap<(&str, u32), u64> = HashMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i as u64 + 1;
        let loc = || format!("line {line}");
        let l = raw.trim_start_matches('\u{feff}').trim_end_matches('\r');
        if l.trim().is_empty() {
            continue;
        }
        let Some((key, caption)) = l.split_once('\t') else {
            problems.error(DataError::record(
                path,
                loc(),
                "expected `image#N<TAB>caption` (no tab on this line)",
            ));
            continue;
        };
        let key = key.trim();
        let parsed = key
            .rsplit_once('#')
            .and_then(|(image, n)| Some((image, n.parse::<u32>().ok()?)))
            .filter(|(image, _)| !image.is_empty());
        let Some((image, n)) = parsed else {
            problems.error(DataError::record(
                path,
                loc(),
                format!("expected `image#N` before the tab, got {key:?}"),
            ));
            continue;
        };
        let caption = caption.trim();
        if caption.is_empty() {
            problems.error(DataError::record(
                path,
                loc(),
                format!("empty caption for image {image}"),
            ));
            continue;
        }
        if let Some(first) = seen.insert((image, n), line) {
            problems.error(DataError::record(
                path,
                loc(),
                format!("duplicate caption {image}#{n} (first at line {first})"),
            ));
            continue;
        }
        rows.push(CaptionRow {
            line,
            image: image.to_string(),
            caption: caption.to_string(),
        });
    }
    if rows.is_empty() && problems.error_count() == 0 {
        problems.error(DataError::parse(path, "no `image#N<TAB>caption` lines"));
    }
    rows
}

/// Reads a captions file of either layout ([`is_token_file`] decides) into `problems`; `None`
/// when the file cannot be read at all.
pub fn read_rows_checked(path: &Path, problems: &mut Problems) -> Option<Vec<CaptionRow>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            problems.error(DataError::io(path, e));
            return None;
        }
    };
    Some(if is_token_file(path) {
        collect_token_rows(path, &text, problems)
    } else {
        collect_caption_rows(path, &text, problems)
    })
}

/// Reads a Flickr split list (`Flickr_8k.trainImages.txt`): one image file name per line,
/// with the line it is on. An image listed twice is an error naming both lines.
pub fn read_split_list(path: &Path, problems: &mut Problems) -> Vec<(String, u64)> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            problems.error(DataError::io(path, e));
            return Vec::new();
        }
    };
    let mut seen: HashMap<&str, u64> = HashMap::new();
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i as u64 + 1;
        let name = raw.trim_start_matches('\u{feff}').trim();
        if name.is_empty() {
            continue;
        }
        if let Some(first) = seen.insert(name, line) {
            problems.error(DataError::record(
                path,
                format!("line {line}"),
                format!("image {name} is listed twice (first at line {first})"),
            ));
            continue;
        }
        out.push((name.to_string(), line));
    }
    out
}

/// The 1-based line where a quoted CSV field opens that is never properly closed, if any.
///
/// A field is quoted when its first character is `"`; inside it `""` is an escaped quote and
/// line breaks are part of the field (RFC 4180). It is closed by a single `"` followed by `,`
/// or the end of the line; a quote still open at the end of the file, or followed by other
/// text (the quote of a later line taken as the closing one), leaves it unterminated.
/// Quotes inside unquoted fields are literal, as the `csv` crate reads them.
fn unterminated_quote_line(text: &str) -> Option<usize> {
    let mut line = 1;
    let mut opened_on = None;
    let mut field_start = true;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (opened_on, c) {
            (Some(open), '"') => {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    continue;
                }
                if !matches!(chars.peek(), None | Some(',' | '\r' | '\n')) {
                    return Some(open);
                }
                opened_on = None;
            }
            (None, '"') if field_start => opened_on = Some(line),
            (None, ',' | '\n') => {
                field_start = true;
                if c == '\n' {
                    line += 1;
                }
                continue;
            }
            (_, '\n') => line += 1,
            _ => {}
        }
        field_start = false;
    }
    opened_on
}

/// Writes `(image, caption)` pairs as a Kaggle-style CSV with an `image,caption` header (atomic).
pub fn write_captions_csv(path: &Path, rows: &[(String, String)]) -> Result<(), DataError> {
    let mut wtr = csv::Writer::from_writer(Vec::new());
    let err = |e: csv::Error| DataError::parse(path, format!("cannot write CSV: {e}"));
    wtr.write_record(["image", "caption"]).map_err(err)?;
    for (image, caption) in rows {
        wtr.write_record([image, caption]).map_err(err)?;
    }
    let bytes = wtr
        .into_inner()
        .map_err(|e| DataError::parse(path, format!("cannot write CSV: {e}")))?;
    write_atomic(path, &bytes)
}

/// Folders searched, in this order, for images when `images_dir` is not set: `images/`,
/// `Images/` (Kaggle Flickr8k), `Flicker8k_Dataset/` (the original Flickr8k zip, sic),
/// `Flickr8k_Dataset/`, `flickr30k_images/flickr30k_images/` (Kaggle Flickr30k) and
/// `flickr30k_images/`.
pub const IMAGE_DIR_CANDIDATES: [&str; 6] = [
    "images",
    "Images",
    "Flicker8k_Dataset",
    "Flickr8k_Dataset",
    "flickr30k_images/flickr30k_images",
    "flickr30k_images",
];

/// Resolves the images folder: `root/images_dir` if given, else the first of
/// [`IMAGE_DIR_CANDIDATES`] that is a folder, else `root/images`.
pub fn resolve_images_dir(root: &Path, images_dir: Option<&Path>) -> PathBuf {
    if let Some(dir) = images_dir {
        return root.join(dir);
    }
    for candidate in IMAGE_DIR_CANDIDATES {
        let dir = root.join(candidate);
        if dir.is_dir() {
            return dir;
        }
    }
    root.join("images")
}

/// Groups caption rows by image into records (split left as `Train`), checking that every image file exists.
///
/// Records are sorted by image file name; a missing file is an error naming the CSV file and
/// line (several: [`DataError::Problems`]).
pub fn group_rows(
    csv_path: &Path,
    rows: Vec<CaptionRow>,
    images_dir: &Path,
) -> Result<Vec<ImageRecord>, DataError> {
    let mut problems = Problems::default();
    let records = group_rows_checked(csv_path, rows, images_dir, &mut problems);
    problems.into_result(records)
}

/// [`group_rows`] collecting into `problems`: an image whose file is missing is reported once,
/// at its first line, and left out.
pub fn group_rows_checked(
    csv_path: &Path,
    rows: Vec<CaptionRow>,
    images_dir: &Path,
    problems: &mut Problems,
) -> Vec<ImageRecord> {
    let mut records = Vec::new();
    for (record, line) in group_caption_rows(rows, images_dir) {
        if record.path.is_file() {
            records.push(record);
        } else {
            problems.error(DataError::record(
                csv_path,
                format!("line {line}"),
                format!(
                    "image {} is listed but {} does not exist",
                    record.id,
                    record.path.display()
                ),
            ));
        }
    }
    records
}

/// Groups caption rows by image, in file-name order, each with the line of its first caption;
/// paths are `images_dir/<image>`, not checked here (split left as `Train`).
pub fn group_caption_rows(rows: Vec<CaptionRow>, images_dir: &Path) -> Vec<(ImageRecord, u64)> {
    let mut by_image: HashMap<String, usize> = HashMap::new();
    let mut records: Vec<(ImageRecord, u64)> = Vec::new();
    for row in rows {
        if let Some(&i) = by_image.get(&row.image) {
            records[i].0.captions.push(row.caption);
            continue;
        }
        by_image.insert(row.image.clone(), records.len());
        records.push((
            ImageRecord {
                path: images_dir.join(&row.image),
                id: row.image,
                captions: vec![row.caption],
                split: crate::dataset::Split::Train,
                coco_id: None,
            },
            row.line,
        ));
    }
    records.sort_by(|a, b| a.0.id.cmp(&b.0.id));
    records
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn quoted_commas_escaped_quotes_and_crlf() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "captions.txt",
            "image,caption\r\na.jpg,\"A dog, running.\"\r\nb.jpg,\"He said \"\"hi\"\" .\"\r\na.jpg,plain one\r\n",
        );
        let rows = read_captions_csv(&p).unwrap();
        assert_eq!(
            rows,
            vec![
                ("a.jpg".to_string(), "A dog, running.".to_string()),
                ("b.jpg".to_string(), "He said \"hi\" .".to_string()),
                ("a.jpg".to_string(), "plain one".to_string()),
            ]
        );
    }

    #[test]
    fn column_order_and_unquoted_trailing_comma() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "c.csv", "caption,image\nhello there,x.jpg\n");
        assert_eq!(read_captions_csv(&p).unwrap()[0].1, "hello there");
        let p = write(dir.path(), "d.csv", "image,caption\nx.jpg,a dog, a cat\n");
        assert_eq!(read_captions_csv(&p).unwrap()[0].1, "a dog, a cat");
    }

    #[test]
    fn missing_column_names_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "bad_header.txt", "image,text\na.jpg,hello\n");
        let err = read_captions_csv(&p).unwrap_err().to_string();
        assert!(err.contains("bad_header.txt"), "{err}");
        assert!(err.contains("caption"), "{err}");
        assert!(err.contains("line 1"), "{err}");
    }

    #[test]
    fn empty_caption_names_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "captions.txt",
            "image,caption\na.jpg,fine\n\"b.jpg\",\"a\nmultiline\"\nc.jpg,\"  \"\n",
        );
        let err = read_captions_csv(&p).unwrap_err().to_string();
        assert!(err.contains("captions.txt: line 5: empty caption"), "{err}");
        let p = write(dir.path(), "short.txt", "image,caption\na.jpg\n");
        let err = read_captions_csv(&p).unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains("missing"), "{err}");
    }

    #[test]
    fn unterminated_quote_is_an_error_naming_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "captions.txt",
            "image,caption\na.jpg,fine\nb.jpg,\"a dog runs\nc.jpg,a cat\n",
        );
        let err = read_captions_csv(&p).unwrap_err().to_string();
        assert!(
            err.contains("captions.txt: line 3: unterminated quote"),
            "{err}"
        );
        // A later quote does not close it silently either.
        let p = write(
            dir.path(),
            "later.txt",
            "image,caption\nb.jpg,\"a dog runs\nc.jpg,\"a cat\"\n",
        );
        let err = read_captions_csv(&p).unwrap_err().to_string();
        assert!(
            err.contains("later.txt: line 2: unterminated quote"),
            "{err}"
        );
        // Literal quotes inside unquoted captions stay accepted.
        let p = write(
            dir.path(),
            "ok.txt",
            "image,caption\na.jpg,a 6\" tall man\n",
        );
        assert_eq!(read_captions_csv(&p).unwrap()[0].1, "a 6\" tall man");
    }

    #[test]
    fn header_without_rows_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "only_header.txt", "image,caption\n");
        let err = read_captions_csv(&p).unwrap_err().to_string();
        assert!(
            err.contains("only_header.txt: no caption rows after the `image,caption` header"),
            "{err}"
        );
    }

    #[test]
    fn missing_image_file_is_an_error_with_line() {
        let dir = tempfile::tempdir().unwrap();
        let images = dir.path().join("Images");
        std::fs::create_dir(&images).unwrap();
        std::fs::write(images.join("a.jpg"), b"x").unwrap();
        let p = write(
            dir.path(),
            "captions.txt",
            "image,caption\na.jpg,one\na.jpg,two\nz.jpg,three\n",
        );
        assert_eq!(resolve_images_dir(dir.path(), None), images);
        let rows = read_caption_rows(&p).unwrap();
        let err = group_rows(&p, rows, &images).unwrap_err().to_string();
        assert!(
            err.contains("captions.txt: line 4") && err.contains("z.jpg"),
            "{err}"
        );
        let rows = read_caption_rows(&p).unwrap()[..2].to_vec();
        let recs = group_rows(&p, rows, &images).unwrap();
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].captions, vec!["one", "two"]);
    }

    #[test]
    fn write_then_read_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.txt");
        let rows = vec![
            ("a.jpg".to_string(), "x, \"y\" z".to_string()),
            ("b.jpg".to_string(), "plain".to_string()),
        ];
        write_captions_csv(&p, &rows).unwrap();
        assert_eq!(read_captions_csv(&p).unwrap(), rows);
    }
}
