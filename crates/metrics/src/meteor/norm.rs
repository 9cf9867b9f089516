//! Meteor 1.5's `-norm` text normalisation (its Moses-style `Normalizer` with punctuation kept,
//! followed by lower-casing), re-implemented from the behaviour of the jar.

use regex::Regex;
use std::collections::HashMap;
use std::sync::OnceLock;

const ALPHA: &str = "A-Za-zŠŽšžŸÀ-ÖØ-öø-žЀ-ӿԀ-ԧꙀ-ꙮ꙾-ꚗᴀ-ᵿ";

/// Kind of a non-breaking prefix (`nonbreaking/english.prefixes` of the jar).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Nbp {
    /// Never split the dot.
    Any,
    /// Keep the dot only before a number.
    NumericOnly,
}

/// Parses a Moses non-breaking prefix list.
pub(crate) fn parse_nbp(text: &str) -> HashMap<String, Nbp> {
    let mut out = HashMap::new();
    for line in text.lines() {
        let mut it = line.split_whitespace();
        let Some(pre) = it.next() else { continue };
        if pre.starts_with('#') {
            continue;
        }
        let kind = if it.next() == Some("#NUMERIC_ONLY#") {
            Nbp::NumericOnly
        } else {
            Nbp::Any
        };
        out.insert(pre.to_string(), kind);
    }
    out
}

struct Res {
    sep_other: Regex,
    multi_dot: Regex,
    multi_dot2: Regex,
    comma: Regex,
    comma2: Regex,
    comma3: Regex,
    quote: Regex,
    quote2: Regex,
    rm_dash: Regex,
    cont: [Regex; 4],
    cont5: Regex,
    alpha: Regex,
    white: Regex,
}

fn res() -> &'static Res {
    static R: OnceLock<Res> = OnceLock::new();
    R.get_or_init(|| {
        let alnum = format!("0-9{ALPHA}");
        let re = |s: &str| Regex::new(s).expect("static regex");
        Res {
            // Java's \s is ASCII whitespace only.
            sep_other: re(&format!("([^{alnum}\\t\\n\\x0B\\x0C\\r \\.'`,\\-‘’])")),
            multi_dot: re(r"\.([\.]+)"),
            multi_dot2: re(r"DOTMULTI\.([^\.])"),
            comma: re(r"([^0-9]),([^0-9])"),
            comma2: re(r"([0-9]),([^0-9])"),
            comma3: re(r"([^0-9]),([0-9])"),
            quote: re("[`‘’]"),
            quote2: re("([“”]|'')"),
            rm_dash: re(&format!("([{alnum}\\.])\\-([{alnum}])")),
            cont: [
                re(&format!("([^{ALPHA}])'([^{ALPHA}])")),
                re(&format!("([^{ALPHA}0-9])'([{ALPHA}])")),
                re(&format!("([{ALPHA}])'([^{ALPHA}])")),
                re(&format!("([{ALPHA}])'([{ALPHA}])")),
            ],
            cont5: re(r"([0-9])'(s)"),
            alpha: re(&format!("[{ALPHA}]")),
            white: re("[ \u{00A0}\u{1680}\u{2000}-\u{200A}\u{202F}\u{205F}\u{3000}]+"),
        }
    })
}

fn java_tokens(s: &str) -> impl Iterator<Item = &str> {
    s.split([' ', '\t', '\n', '\r', '\x0C'])
        .filter(|t| !t.is_empty())
}

/// `Normalizer.normalizeLine(line, en, keepPunctuation=true)` then `toLowerCase`, split into
/// words as `Alignment` does (Java `StringTokenizer`).
pub(crate) fn normalize(line: &str, nbp: &HashMap<String, Nbp>) -> Vec<String> {
    // ASCII letters, digits and spaces only (most tokenised captions): no rule below applies
    // but the split and the lowercasing.
    if line.bytes().all(|b| b.is_ascii_alphanumeric() || b == b' ') {
        return line
            .split(' ')
            .filter(|t| !t.is_empty())
            .map(str::to_ascii_lowercase)
            .collect();
    }
    let r = res();
    let mut w = format!(" {line} ");
    w = r.sep_other.replace_all(&w, " ${1} ").into_owned();
    w = r.multi_dot.replace_all(&w, " DOTMULTI${1}").into_owned();
    while w.contains("DOTMULTI.") {
        w = r
            .multi_dot2
            .replace_all(&w, "DOTDOTMULTI ${1}")
            .into_owned();
        w = w.replace("DOTMULTI.", "DOTDOTMULTI");
    }
    w = r.comma.replace_all(&w, "${1} , ${2}").into_owned();
    w = r.comma2.replace_all(&w, "${1} , ${2}").into_owned();
    w = r.comma3.replace_all(&w, "${1} , ${2}").into_owned();
    w = r.quote.replace_all(&w, "'").into_owned();
    w = r.quote2.replace_all(&w, " \" ").into_owned();
    w = w.replace('–', "-").replace("--", "-");
    w = r.rm_dash.replace_all(&w, "${1} ${2}").into_owned();
    w = r.cont[0].replace_all(&w, "${1} ' ${2}").into_owned();
    w = r.cont[1].replace_all(&w, "${1} ' ${2}").into_owned();
    w = r.cont[2].replace_all(&w, "${1} ' ${2}").into_owned();
    w = r.cont[3].replace_all(&w, "${1} '${2}").into_owned();
    w = r.cont5.replace_all(&w, "${1} '${2}").into_owned();

    let words: Vec<&str> = java_tokens(&w).collect();
    let mut sb = String::with_capacity(w.len() + 8);
    for (i, word) in words.iter().enumerate() {
        let next = words.get(i + 1);
        if word.chars().count() > 1 && word.ends_with('.') {
            let pre = &word[..word.len() - 1];
            let kind = nbp.get(pre).copied();
            if pre.contains('.') && r.alpha.is_match(pre) {
                sb.push_str(&word.replace('.', ""));
            } else if kind == Some(Nbp::Any)
                || next.is_some_and(|n| n.starts_with(|c: char| c.is_ascii_lowercase()))
                || (kind == Some(Nbp::NumericOnly)
                    && next.is_some_and(|n| n.starts_with(|c: char| c.is_ascii_digit())))
            {
                // Non-breaking: always, before a lower-case word, or (numeric-only) a number.
                sb.push_str(word);
            } else {
                sb.push_str(pre);
                sb.push_str(" .");
            }
        } else {
            sb.push_str(word);
        }
        sb.push(' ');
    }
    let mut w = sb;
    while w.contains("DOTDOTMULTI") {
        w = w.replace("DOTDOTMULTI", "DOTMULTI.");
    }
    w = w.replace("DOTMULTI", ".");
    let w = r.white.replace_all(&w, " ");
    let w = w.trim_matches(|c: char| c <= ' ').to_lowercase();
    java_tokens(&w).map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_path_equals_the_rules() {
        let nbp = parse_nbp("mr\nno #NUMERIC_ONLY#\n");
        for line in [
            "a man riding a horse",
            "  Two  DOGS 2 ",
            "",
            "x",
            "dotmulti 3",
        ] {
            // The same line with a trailing tab takes the regex path.
            assert_eq!(
                normalize(line, &nbp),
                normalize(&format!("{line}\t"), &nbp),
                "{line:?}"
            );
        }
    }

    #[test]
    fn documented_normalisations() {
        let nbp = parse_nbp("mr\nno #NUMERIC_ONLY#\n");
        let n = |s: &str| normalize(s, &nbp).join(" ");
        assert_eq!(n("a well-known man 's dog"), "a well known man ' s dog");
        assert_eq!(n("u.s.a. e.g. mr. smith"), "usa eg mr. smith");
        assert_eq!(n("i 'm we 're do n't"), "i ' m we ' re do n 't");
        assert_eq!(n("10:30 1/2 !!!"), "10 : 30 1 / 2 ! ! !");
        assert_eq!(n("3.5 1,000 -lrb-"), "3.5 1,000 -lrb-");
        assert_eq!(n("中文"), "中 文");
        assert!(n("").is_empty());
    }
}
