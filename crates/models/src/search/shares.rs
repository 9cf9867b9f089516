//! Decoding a batch in equal shares of rows side by side on rayon's threads ([`in_shares`]).

use rayon::prelude::*;

/// The fewest rows a share of [`in_shares`] gets: a one-row matmul takes a different kernel,
/// whose sums can differ from the batched kernel's in the last bit.
pub const MIN_SHARE_ROWS: usize = 8;

/// Decodes `n` rows in up to `threads` equal shares side by side on rayon's threads (each share
/// at least [`MIN_SHARE_ROWS`] rows; one share: on the calling thread): `decode(from, len)`
/// decodes the rows `from..from + len`. The results, concatenated in row order.
pub fn in_shares<T: Send>(
    n: usize,
    threads: usize,
    decode: impl Fn(usize, usize) -> Vec<T> + Sync,
) -> Vec<T> {
    let shares = threads.min(n / MIN_SHARE_ROWS).max(1);
    if shares == 1 {
        return decode(0, n);
    }
    let parts: Vec<Vec<T>> = (0..shares)
        .into_par_iter()
        .map(|i| {
            let from = i * n / shares;
            decode(from, (i + 1) * n / shares - from)
        })
        .collect();
    parts.into_iter().flatten().collect()
}
