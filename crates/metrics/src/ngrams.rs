//! Packed n-gram keys of the per-image BLEU and CIDEr functions.

/// Packs up to 4 token ids (each +1, 32 bits) into one key; the order is implicit.
pub fn ngram_keys(toks: &[u32], max_n: usize) -> impl Iterator<Item = u128> + '_ {
    (1..=max_n).flat_map(move |n| {
        toks.windows(n).map(|w| {
            w.iter()
                .fold(0u128, |acc, &t| (acc << 32) | u128::from(t + 1))
        })
    })
}

/// Raw n-gram counts (n = 1..`max_n`) as (packed key, count), sorted by key.
pub fn sorted_counts(toks: &[u32], max_n: usize) -> Vec<(u128, u32)> {
    let mut keys: Vec<u128> = ngram_keys(toks, max_n).collect();
    keys.sort_unstable();
    let mut out: Vec<(u128, u32)> = Vec::with_capacity(keys.len());
    for k in keys {
        match out.last_mut() {
            Some((last, c)) if *last == k => *c += 1,
            _ => out.push((k, 1)),
        }
    }
    out
}

/// Calls `on_match(i, j)` for every key that `a[i]` and `b[j]` share, in ascending key order:
/// the merge join of two count lists sorted by key (each key once per list).
#[inline]
pub fn matches<K: Ord, A, B>(a: &[(K, A)], b: &[(K, B)], mut on_match: impl FnMut(usize, usize)) {
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].0.cmp(&b[j].0) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                on_match(i, j);
                i += 1;
                j += 1;
            }
        }
    }
}

/// The order (1..=4) of a packed key.
pub fn order(key: u128) -> usize {
    (128 - key.leading_zeros() as usize).div_ceil(32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_visits_the_shared_keys_in_order() {
        let a = [(1u32, 'a'), (3, 'b'), (4, 'c'), (9, 'd')];
        let b = [(0u32, 10), (3, 11), (4, 12), (5, 13), (9, 14), (10, 15)];
        let mut seen = Vec::new();
        matches(&a, &b, |i, j| seen.push((a[i].1, b[j].1)));
        assert_eq!(seen, vec![('b', 11), ('c', 12), ('d', 14)]);
        matches(&a, &[] as &[(u32, u8)], |_, _| panic!("no shared key"));
    }

    #[test]
    fn orders_of_keys() {
        let keys: Vec<u128> = ngram_keys(&[0, 1, 2, 3], 4).collect();
        assert_eq!(keys.len(), 4 + 3 + 2 + 1);
        let orders: Vec<usize> = keys.iter().map(|&k| order(k)).collect();
        assert_eq!(orders, vec![1, 1, 1, 1, 2, 2, 2, 3, 3, 4]);
    }
}
