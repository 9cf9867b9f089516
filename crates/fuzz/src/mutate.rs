//! A seeded, deterministic input mutator (AFL-style "havoc" steps plus structure-aware steps for
//! JSON and TOML): the same seed gives the same sequence of inputs on every machine.

use crate::targets::Structure;

/// Bytes that often matter to parsers.
const INTERESTING_BYTES: [u8; 22] = [
    0, 1, 0x7f, 0x80, 0xff, 0xfe, 0xc3, 0xe2, b'"', b'\\', b'\n', b'\r', b'\t', b',', b'#', b'|',
    b'{', b'}', b'[', b']', b':', b'.',
];

/// Integers that often matter to length fields, offsets and shapes.
const INTERESTING_INTS: [u64; 14] = [
    0,
    1,
    2,
    0x7f,
    0xff,
    0x7fff,
    0xffff,
    0x7fff_ffff,
    0xffff_ffff,
    0x1_0000_0000,
    0x7fff_ffff_ffff_ffff,
    0xffff_ffff_ffff_ffff,
    1 << 40,
    100_000_001,
];

/// Texts inserted anywhere: numbers at the edges of every integer and float type, and Unicode
/// that changes length when lower-cased, combines, reverses, or is not a character at all.
const INTERESTING_TEXT: [&str; 30] = [
    "-1",
    "0",
    "-0",
    "4294967296",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775809",
    "1e309",
    "-1e309",
    "NaN",
    "inf",
    "0.0000000000000000000000001",
    "99999999999999999999999999999",
    "\u{130}",
    "\u{1e9e}",
    "\u{fb03}",
    "\u{feff}",
    "\u{301}",
    "\u{202e}",
    "\u{1d518}",
    "\u{1f642}",
    "\u{2028}",
    "\u{2019}",
    "\u{2026}",
    "\u{df}",
    "\u{3a3}",
    "\u{fffd}",
    "\r\n",
    "\u{0}",
    "\\u0000",
];

/// A splitmix64 generator: small, seeded and identical everywhere.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`0` when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    /// True with probability 1/`n`.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    /// A random element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Mutates inputs of one target.
#[derive(Debug)]
pub struct Mutator {
    rng: Rng,
    /// The longest input produced, in bytes.
    pub max_len: usize,
    structure: Structure,
    dictionary: Vec<&'static str>,
}

impl Mutator {
    /// A mutator for inputs of `structure`, inserting `dictionary`'s tokens, seeded with `seed`.
    pub fn new(
        seed: u64,
        structure: Structure,
        dictionary: &[&'static str],
        max_len: usize,
    ) -> Mutator {
        Mutator {
            rng: Rng::new(seed),
            max_len,
            structure,
            dictionary: dictionary.to_vec(),
        }
    }

    /// The random generator (the harness picks parents with it).
    pub fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }

    /// A new input from `parent`: one structure-aware step (JSON, TOML) or 1 to 8 byte-level
    /// steps; `others` are inputs to splice from. The result is at most `max_len` bytes.
    pub fn mutate(&mut self, parent: &[u8], others: &[Vec<u8>]) -> Vec<u8> {
        let mut out = parent.to_vec();
        let structured = match self.structure {
            Structure::Json if self.rng.one_in(3) => self.json_step(&out),
            Structure::Toml if self.rng.one_in(3) => self.toml_step(&out),
            _ => None,
        };
        match structured {
            Some(bytes) => out = bytes,
            None => {
                let steps = 1 << self.rng.below(4);
                for _ in 0..steps {
                    self.byte_step(&mut out, others);
                }
            }
        }
        out.truncate(self.max_len);
        out
    }

    fn byte_step(&mut self, data: &mut Vec<u8>, others: &[Vec<u8>]) {
        let len = data.len();
        let pos = self.rng.below(len + 1);
        match self.rng.below(14) {
            0 if len > 0 => {
                let i = self.rng.below(len);
                data[i] ^= 1 << self.rng.below(8);
            }
            1 if len > 0 => {
                let i = self.rng.below(len);
                data[i] = *self.rng.pick(&INTERESTING_BYTES);
            }
            2 if len > 0 => {
                let i = self.rng.below(len);
                data[i] = self.rng.next_u64() as u8;
            }
            3 if len > 0 => {
                let start = self.rng.below(len);
                let n = 1 + self.rng.below((len - start).min(32));
                data.drain(start..start + n);
            }
            4 => {
                let n = 1 + self.rng.below(8);
                let bytes: Vec<u8> = (0..n).map(|_| self.rng.next_u64() as u8).collect();
                data.splice(pos..pos, bytes);
            }
            5 | 6 if !self.dictionary.is_empty() => {
                let token = *self.rng.pick(&self.dictionary);
                data.splice(pos..pos, token.bytes());
            }
            7 => {
                let text = *self.rng.pick(&INTERESTING_TEXT);
                data.splice(pos..pos, text.bytes());
            }
            8 if len > 0 => {
                // Copy a chunk elsewhere.
                let start = self.rng.below(len);
                let n = 1 + self.rng.below((len - start).min(64));
                let chunk = data[start..start + n].to_vec();
                data.splice(pos..pos, chunk);
            }
            9 if len > 0 => {
                // Repeat a chunk many times: long lines, deep nesting, many entries.
                let start = self.rng.below(len);
                let n = 1 + self.rng.below((len - start).min(16));
                let times = 1 + self.rng.below(256);
                let chunk = data[start..start + n].repeat(times);
                data.splice(start..start, chunk);
            }
            10 if !others.is_empty() => {
                // Splice: our head, another input's tail.
                let other = self.rng.pick(others);
                let from = self.rng.below(other.len() + 1);
                data.truncate(pos);
                data.extend_from_slice(&other[from..]);
            }
            11 | 12 if len > 0 => {
                // An extreme integer over 1, 2, 4 or 8 bytes, little- or big-endian.
                let width = 1 << self.rng.below(4);
                let at = self.rng.below(len);
                let value = *self.rng.pick(&INTERESTING_INTS);
                let bytes = if self.rng.one_in(2) {
                    value.to_le_bytes()
                } else {
                    value.to_be_bytes()
                };
                let bytes = if self.rng.one_in(2) {
                    &bytes[..width]
                } else {
                    &bytes[8 - width..]
                };
                let end = (at + width).min(len);
                data[at..end].copy_from_slice(&bytes[..end - at]);
            }
            _ if len > 0 => {
                // An integer written as text, replacing a run of digits when there is one.
                let text = match self.rng.below(3) {
                    0 => self.rng.pick(&INTERESTING_INTS).to_string(),
                    1 => format!("-{}", self.rng.pick(&INTERESTING_INTS)),
                    _ => (self.rng.next_u64() % 10_000).to_string(),
                };
                let start = self.rng.below(len);
                let end = data[start..]
                    .iter()
                    .position(|b| !b.is_ascii_digit())
                    .map_or(len, |n| start + n);
                data.splice(start..end, text.bytes());
            }
            _ => data.push(*self.rng.pick(&INTERESTING_BYTES)),
        }
    }

    /// One structure-aware step on a JSON input; `None` when it does not parse.
    fn json_step(&mut self, data: &[u8]) -> Option<Vec<u8>> {
        let mut value: serde_json::Value = serde_json::from_slice(data).ok()?;
        let count = json_nodes(&value);
        let target = self.rng.below(count);
        let mut seen = 0;
        self.json_mutate_nth(&mut value, target, &mut seen);
        serde_json::to_vec(&value).ok()
    }

    fn json_mutate_nth(&mut self, v: &mut serde_json::Value, target: usize, seen: &mut usize) {
        if *seen == target {
            self.json_replace(v);
            *seen += 1;
            return;
        }
        *seen += 1;
        match v {
            serde_json::Value::Array(a) => {
                for x in a {
                    self.json_mutate_nth(x, target, seen);
                }
            }
            serde_json::Value::Object(o) => {
                for (_, x) in o.iter_mut() {
                    self.json_mutate_nth(x, target, seen);
                }
            }
            _ => {}
        }
    }

    fn json_replace(&mut self, v: &mut serde_json::Value) {
        use serde_json::Value;
        match self.rng.below(9) {
            0 => *v = Value::Null,
            1 => *v = Value::from(*self.rng.pick(&INTERESTING_INTS)),
            2 => *v = Value::from(-(self.rng.below(1 << 20) as i64) - 1),
            3 => *v = Value::from(*self.rng.pick(&[0.5, -1.5, 1e300, -0.0, f64::MIN_POSITIVE])),
            4 => *v = Value::from(*self.rng.pick(&INTERESTING_TEXT)),
            5 => {
                let token = self
                    .rng
                    .pick(&self.dictionary)
                    .trim_matches('"')
                    .to_string();
                *v = Value::from(token);
            }
            6 => {
                // Nest: the value inside 1..200 arrays.
                for _ in 0..1 + self.rng.below(200) {
                    *v = Value::Array(vec![std::mem::take(v)]);
                }
            }
            7 => match v {
                Value::Array(a) if !a.is_empty() => {
                    let i = self.rng.below(a.len());
                    let copy = a[i].clone();
                    let times = 1 + self.rng.below(64);
                    a.extend(std::iter::repeat_n(copy, times));
                }
                Value::Array(a) => a.clear(),
                Value::Object(o) if !o.is_empty() => {
                    let key = o.keys().nth(self.rng.below(o.len())).cloned();
                    if let Some(k) = key {
                        o.remove(&k);
                    }
                }
                _ => *v = Value::Array(Vec::new()),
            },
            _ => *v = Value::Object(Default::default()),
        }
    }

    /// One structure-aware step on a spec: a value of the parsed TOML tree changed, or a
    /// `--set` item for one of its keys appended (after a NUL byte, the spec target's format).
    fn toml_step(&mut self, data: &[u8]) -> Option<Vec<u8>> {
        let split = data.iter().position(|&b| b == 0).unwrap_or(data.len());
        let (file, sets) = data.split_at(split);
        let mut table: toml::Table = std::str::from_utf8(file).ok()?.parse().ok()?;
        let mut keys = Vec::new();
        toml_keys(&table, "", &mut keys);
        if keys.is_empty() {
            return None;
        }
        let key = self.rng.pick(&keys).clone();
        let value = self.toml_value();
        let mut out;
        if self.rng.one_in(2) {
            set_toml(&mut table, &key, value);
            out = toml::to_string(&table).ok()?.into_bytes();
            out.extend_from_slice(sets);
        } else {
            out = data.to_vec();
            out.push(0);
            out.extend_from_slice(format!("{key}={value}").as_bytes());
        }
        Some(out)
    }

    fn toml_value(&mut self) -> toml::Value {
        use toml::Value;
        match self.rng.below(8) {
            0 => Value::Integer(*self.rng.pick(&[0, -1, i64::MAX, i64::MIN, 1 << 40])),
            1 => Value::Float(*self.rng.pick(&[0.0, -1.0, f64::NAN, f64::INFINITY, 1e300])),
            2 => Value::Boolean(self.rng.one_in(2)),
            3 => Value::String(self.rng.pick(&INTERESTING_TEXT).to_string()),
            4 => Value::Array(vec![Value::Integer(1); self.rng.below(64)]),
            5 => Value::Table(toml::Table::new()),
            6 => Value::String(
                ["lstm", "gru", "beam", "greedy", "cpu", "synth", "words"][self.rng.below(7)]
                    .to_string(),
            ),
            _ => Value::Integer(self.rng.below(100_000) as i64),
        }
    }
}

/// Number of nodes of a JSON tree.
fn json_nodes(v: &serde_json::Value) -> usize {
    1 + match v {
        serde_json::Value::Array(a) => a.iter().map(json_nodes).sum(),
        serde_json::Value::Object(o) => o.values().map(json_nodes).sum(),
        _ => 0,
    }
}

/// Dotted keys of every value of a TOML table (tables included).
fn toml_keys(table: &toml::Table, prefix: &str, out: &mut Vec<String>) {
    for (k, v) in table {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        if let toml::Value::Table(t) = v {
            toml_keys(t, &key, out);
        }
        out.push(key);
    }
}

/// Sets the value at a dotted key that [`toml_keys`] listed.
fn set_toml(table: &mut toml::Table, key: &str, value: toml::Value) {
    match key.split_once('.') {
        Some((head, rest)) => {
            if let Some(toml::Value::Table(t)) = table.get_mut(head) {
                set_toml(t, rest, value);
            }
        }
        None => {
            table.insert(key.to_string(), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_inputs_and_lengths_stay_bounded() {
        let seed_input = br#"{"images": [{"filename": "a.jpg", "split": "train"}]}"#.to_vec();
        let others = vec![b"image,caption\na.jpg,a dog\n".to_vec()];
        let run = |seed| {
            let mut m = Mutator::new(seed, Structure::Json, &["\"images\""], 512);
            let mut input = seed_input.clone();
            let mut all = Vec::new();
            for _ in 0..500 {
                input = m.mutate(&input, &others);
                assert!(input.len() <= 512);
                all.push(input.clone());
            }
            all
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    #[test]
    fn toml_steps_change_a_value_or_append_a_set_item() {
        let spec = b"[train]\nepochs = 2\n".to_vec();
        let mut m = Mutator::new(1, Structure::Toml, &[], 4096);
        let outs: Vec<Vec<u8>> = (0..200).filter_map(|_| m.toml_step(&spec)).collect();
        assert!(outs.iter().any(|o| o.contains(&0)), "a --set item appended");
        assert!(
            outs.iter().any(|o| !o.contains(&0) && o != &spec),
            "a value changed in the file"
        );
    }
}
