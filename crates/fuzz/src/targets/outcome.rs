//! What a target reports about one input.

use crate::scratch;

/// The outcome description of a parser result: `ok`, or the error's first words with the
/// scratch directory and digits masked (so `line 3` and `line 4` count as one outcome).
pub(crate) fn outcome<T, E: std::fmt::Display>(result: &Result<T, E>) -> String {
    match result {
        Ok(_) => "ok".to_string(),
        Err(e) => {
            let text = e.to_string();
            let text = match scratch::thread_dir().to_str() {
                Some(dir) => text.replace(dir, ""),
                None => text,
            };
            text.chars()
                .map(|c| if c.is_ascii_digit() { '#' } else { c })
                .take(96)
                .collect()
        }
    }
}
