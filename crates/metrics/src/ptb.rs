//! PTB tokenisation exactly as pycocoevalcap applies it.
//!
//! A re-implementation of the rules of Stanford CoreNLP 3.4.1's `PTBLexer` (JFlex, longest match,
//! first rule on ties) that matter for captions, run with `-preserveLines -lowerCase`, followed by
//! the removal of the punctuation tokens pycocoevalcap drops.

/// Tokens pycocoevalcap removes after tokenisation (already lowercased: the upper-case bracket
/// escapes in its list never match).
const DROPPED: [&str; 13] = [
    "''", "'", "``", "`", ".", "?", "!", ",", ":", "-", "--", "...", ";",
];

/// Tokenises one caption as if it were the last line given to the Java tokenizer.
pub fn ptb_tokenize(caption: &str) -> Vec<String> {
    tokenize_line(caption, None)
}

/// Tokenises captions as pycocoevalcap does when they are joined by newlines in this order
/// (a caption's last token can depend on the first character of the next caption).
pub fn ptb_tokenize_lines<S: AsRef<str> + Sync>(captions: &[S]) -> Vec<Vec<String>> {
    use rayon::prelude::*;
    (0..captions.len())
        .into_par_iter()
        .map(|i| {
            let next = captions
                .get(i + 1)
                .map(|c| c.as_ref().chars().next().unwrap_or('\n'));
            tokenize_line(captions[i].as_ref(), next)
        })
        .collect()
}

/// Tokenises a caption; `next` is the first character of the following line (`'\n'` when that
/// line is empty), `None` at the end of the input.
pub(crate) fn tokenize_line(caption: &str, next: Option<char>) -> Vec<String> {
    let mut out = Vec::new();
    tokenize_line_into::<true>(caption, next, &mut Scratch::default(), &mut |t| {
        out.push(t.to_string())
    });
    out
}

/// Reusable buffers of [`tokenize_line_into`].
#[derive(Default)]
pub(crate) struct Scratch {
    cs: Vec<char>,
    lower: String,
}

/// Tokenises a caption like [`tokenize_line`], giving each kept (lowercased) token to `emit`;
/// `FAST`: shortcut plain words and punctuation (the same tokens, checked by the tests).
pub(crate) fn tokenize_line_into<const FAST: bool>(
    caption: &str,
    next: Option<char>,
    scratch: &mut Scratch,
    emit: &mut impl FnMut(&str),
) {
    let cs = &mut scratch.cs;
    cs.clear();
    cs.reserve(caption.len() + 2);
    for c in caption.chars() {
        match c {
            '\n' | '\r' | '\u{b}' | '\u{c}' | '\u{85}' | '\u{2028}' | '\u{2029}' | '\t' => {
                cs.push(' ')
            }
            c if (c as u32) > 0xFFFF => cs.push('\u{0}'),
            c => cs.push(c),
        }
    }
    let n = cs.len();
    // What follows the line: the newline that joins it to the next caption, then that caption.
    if let Some(nc) = next {
        cs.push('\n');
        cs.push(if nc == '\n' || is_linebreak(nc) {
            '\n'
        } else {
            nc
        });
    }
    let lx = Lexer { cs, end: n };
    let lower = &mut scratch.lower;
    let mut i = 0;
    while i < n {
        if !FAST {
        } else if let Some(l) = lx.fast_word(i) {
            // A plain ASCII word: lowercase without allocating.
            lower.clear();
            lower.extend(lx.cs[i..i + l].iter().map(|c| c.to_ascii_lowercase()));
            emit(lower);
            i += l;
            continue;
        } else if matches!(lx.cs[i], '.' | ',') && matches!(lx.at(i + 1), None | Some(' ')) {
            // A lone `.` or `,`: a token of its own, which pycocoevalcap drops.
            i += 1;
            continue;
        }
        let (adv, tok) = lx.next_token(i);
        i += adv.max(1);
        if let Some(t) = tok {
            let t = t.to_lowercase();
            if !DROPPED.contains(&t.as_str()) {
                emit(&t);
            }
        }
    }
}

fn is_linebreak(c: char) -> bool {
    matches!(
        c,
        '\r' | '\u{b}' | '\u{c}' | '\u{85}' | '\u{2028}' | '\u{2029}'
    )
}

fn is_space(c: char) -> bool {
    matches!(
        c,
        ' ' | '\t' | '\u{a0}' | '\u{3000}' | '\u{2000}'..='\u{200a}'
    )
}

fn is_spacenl(c: char) -> bool {
    is_space(c) || c == '\n' || is_linebreak(c)
}

fn is_apos(c: char) -> bool {
    matches!(c, '\'' | '\u{92}' | '\u{2019}')
}

fn is_aposetc(c: char) -> bool {
    is_apos(c) || matches!(c, '\u{91}' | '\u{2018}' | '\u{201b}')
}

fn is_digit(c: char) -> bool {
    c.is_ascii_digit()
        || (c.is_numeric()
            && !matches!(c, '\u{b2}'..='\u{be}' | '\u{2070}'..='\u{218f}' | '\u{2460}'..='\u{24ff}'))
}

fn is_word_char(c: char) -> bool {
    (c.is_alphabetic() && !is_digit(c))
        || c == '\u{ad}'
        || matches!(c, '\u{300}'..='\u{36f}' | '\u{237}'..='\u{24f}')
}

fn is_alnum(c: char) -> bool {
    (c.is_alphabetic() && c != '\u{ad}') || is_digit(c)
}

fn is_hyphen(c: char) -> bool {
    matches!(c, '-' | '_' | '\u{58a}' | '\u{2010}' | '\u{2011}')
}

fn is_vowel_y(c: char) -> bool {
    matches!(c.to_ascii_lowercase(), 'a' | 'e' | 'i' | 'o' | 'u' | 'y')
}

const ABBREV1: &[&str] = &[
    "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "mon",
    "tue", "tues", "wed", "thu", "thurs", "fri", "ala", "ariz", "ark", "calif", "colo", "conn",
    "dak", "del", "fla", "ga", "ill", "ind", "kan", "kans", "ky", "la", "mass", "md", "mich",
    "minn", "miss", "mo", "mont", "neb", "nev", "okla", "ore", "pa", "penn", "tenn", "tex", "va",
    "vt", "wash", "wis", "wisc", "wyo", "inc", "co", "cos", "corp", "pty", "ptys", "ppty", "ltd",
    "plc", "bancorp", "dept", "bhd", "assn", "univ", "intl", "sys", "prop", "ph", "tel", "est",
    "ext", "sq", "ft", "jr", "sr", "bros", "blvd", "rd", "esq", "etc", "al", "seq",
];

const ABBREV4: &[&str] = &[
    "mr", "mrs", "ms", "miss", "dr", "drs", "prof", "profs", "sen", "sens", "rep", "reps", "atty",
    "attys", "lt", "col", "gen", "messrs", "gov", "govs", "adm", "rev", "maj", "sgt", "cpl", "pvt",
    "mt", "capt", "st", "ste", "ave", "pres", "lieut", "hon", "brig", "cmdr", "comdr", "pfc",
    "spc", "supt", "supts", "det", "vs", "alex", "wm", "jos", "cie", "cf", "treas", "invt", "elec",
    "natl", "mfg", "mtg",
];

const SPECIAL_SPLITS: &[&str] = &["gonna", "gotta", "wanna", "gimme", "lemme"];

const APOWORD_LITERALS: &[&str] = &[
    "dunkin'",
    "somethin'",
    "ol'",
    "'cause",
    "cont'd.",
    "cont'd",
    "'twas",
    "nor'easter",
    "c'mon",
    "e'er",
    "s'mores",
    "ev'ry",
    "li'l",
    "nat'l",
];

struct Lexer<'a> {
    /// The line, then (optionally) the newline and first character of the next line.
    cs: &'a [char],
    /// Where the line ends.
    end: usize,
}

/// One candidate match: total length (with trailing context), rule order, consumed length and
/// the token text (None: nothing emitted).
struct Cand {
    total: usize,
    order: u32,
    take: usize,
    text: Option<String>,
}

impl Lexer<'_> {
    fn at(&self, i: usize) -> Option<char> {
        if i < self.end {
            Some(self.cs[i])
        } else {
            None
        }
    }

    /// Character at `i` including the trailing context after the line.
    fn ctx(&self, i: usize) -> Option<char> {
        self.cs.get(i).copied()
    }

    fn run(&self, i: usize, f: impl Fn(char) -> bool) -> usize {
        let mut j = i;
        while j < self.end && f(self.cs[j]) {
            j += 1;
        }
        j - i
    }

    fn slice(&self, i: usize, len: usize) -> String {
        self.cs[i..i + len].iter().collect()
    }

    /// Case-insensitive literal match of ASCII `lit` (with `'` matching any apostrophe).
    fn lit(&self, i: usize, lit: &str) -> bool {
        for (j, l) in (i..).zip(lit.chars()) {
            match self.at(j) {
                Some(c) if l == '\'' && is_apos(c) => {}
                Some(c) if c.to_ascii_lowercase() == l => {}
                _ => return false,
            }
        }
        true
    }

    /// Length of a REDAUX (`'s 'm 'd 're 've 'll`) at `i`, 0 if none.
    fn redaux(&self, i: usize) -> usize {
        if !self.at(i).is_some_and(is_apos) {
            return 0;
        }
        let a = self.at(i + 1).map(|c| c.to_ascii_lowercase());
        let b = self.at(i + 2).map(|c| c.to_ascii_lowercase());
        match (a, b) {
            (Some('r'), Some('e')) | (Some('v'), Some('e')) | (Some('l'), Some('l')) => 3,
            (Some('m' | 's' | 'd'), _) => 2,
            _ => 0,
        }
    }

    /// NUMBER = [-+]?(D+ | D*([.:,\u00AD]D+)+), longest match.
    fn number(&self, i: usize) -> usize {
        let mut j = i;
        if matches!(self.at(j), Some('-' | '+')) {
            j += 1;
        }
        let start = j;
        j += self.run(j, is_digit);
        let mut end = if j > start { j } else { 0 };
        loop {
            if matches!(self.at(j), Some('.' | ':' | ',' | '\u{ad}')) {
                let d = self.run(j + 1, is_digit);
                if d > 0 {
                    j += 1 + d;
                    end = j;
                    continue;
                }
            }
            break;
        }
        if end == 0 {
            0
        } else {
            end - i
        }
    }

    /// THING: alphanumerics joined by hyphens, optional `[dDoOlL]'` prefixes.
    fn thing(&self, i: usize) -> usize {
        let part = |k: usize| -> usize {
            let mut j = k;
            if self.at(j).is_some_and(|c| "dDoOlL".contains(c))
                && self.at(j + 1).is_some_and(is_aposetc)
                && self.at(j + 2).is_some_and(is_alnum)
            {
                j += 2;
            }
            let r = self.run(j, is_alnum);
            if r == 0 {
                0
            } else {
                j + r - k
            }
        };
        let mut len = part(i);
        if len == 0 {
            return 0;
        }
        while self.at(i + len).is_some_and(is_hyphen) {
            let p = part(i + len + 1);
            if p == 0 {
                break;
            }
            len += 1 + p;
        }
        len
    }

    /// HTHING = [A-Za-z0-9][A-Za-z0-9.,\u00AD]*(-([A-Za-z0-9\u00AD]+|ACRO\.))+
    fn hthing(&self, i: usize) -> usize {
        if !self.at(i).is_some_and(|c| c.is_ascii_alphanumeric()) {
            return 0;
        }
        let head = 1 + self.run(i + 1, |c| {
            c.is_ascii_alphanumeric() || matches!(c, '.' | ',' | '\u{ad}')
        });
        // Backtrack over the head so that a hyphen follows.
        let mut best = 0;
        for h in (1..=head).rev() {
            let mut j = i + h;
            let mut ok = false;
            while self.at(j) == Some('-') {
                let r = self.run(j + 1, |c| c.is_ascii_alphanumeric() || c == '\u{ad}');
                if r == 0 {
                    break;
                }
                j += 1 + r;
                ok = true;
            }
            if ok {
                best = best.max(j - i);
            }
        }
        best
    }

    /// THING3: [A-Za-z0-9]+(-[A-Za-z]+){0,2}(/[A-Za-z0-9]+(-[A-Za-z]+){0,2}){1,2}
    fn thing3(&self, i: usize) -> usize {
        let seg = |k: usize| -> usize {
            let r = self.run(k, |c| c.is_ascii_alphanumeric());
            if r == 0 {
                return 0;
            }
            let mut j = k + r;
            for _ in 0..2 {
                if self.at(j) == Some('-') {
                    let l = self.run(j + 1, |c| c.is_ascii_alphabetic());
                    if l > 0 {
                        j += 1 + l;
                        continue;
                    }
                }
                break;
            }
            j - k
        };
        let first = seg(i);
        if first == 0 {
            return 0;
        }
        let mut j = i + first;
        let mut count = 0;
        while count < 2 {
            let slash = if self.at(j) == Some('\\') && self.at(j + 1) == Some('/') {
                2
            } else if self.at(j) == Some('/') {
                1
            } else {
                0
            };
            if slash == 0 {
                break;
            }
            let s = seg(j + slash);
            if s == 0 {
                break;
            }
            j += slash + s;
            count += 1;
        }
        if count == 0 {
            0
        } else {
            j - i
        }
    }

    /// FRAC = (D{1,4}[- \u00A0])?D{1,4}(\\?/|\u2044)D{1,4}
    fn frac(&self, i: usize) -> usize {
        let core = |k: usize| -> usize {
            let a = self.run(k, is_digit);
            if a == 0 || a > 4 {
                return 0;
            }
            let mut j = k + a;
            if self.at(j) == Some('\\') && self.at(j + 1) == Some('/') {
                j += 2;
            } else if matches!(self.at(j), Some('/' | '\u{2044}')) {
                j += 1;
            } else {
                return 0;
            }
            let b = self.run(j, is_digit).min(4);
            if b == 0 {
                return 0;
            }
            j + b - k
        };
        let mut best = core(i);
        let a = self.run(i, is_digit);
        if (1..=4).contains(&a) && matches!(self.at(i + a), Some('-' | ' ' | '\u{a0}')) {
            let c = core(i + a + 1);
            if c > 0 {
                best = best.max(a + 1 + c);
            }
        }
        best
    }

    /// SENTEND after position `j`: a space or newline followed by a space, newline or letter
    /// (`upper_only`: an upper-case ASCII letter).
    fn sentend(&self, j: usize, upper_only: bool) -> bool {
        match (self.ctx(j), self.ctx(j + 1)) {
            (Some(a), Some(b)) if is_spacenl(a) => {
                is_spacenl(b)
                    || b == '<'
                    || if upper_only {
                        b.is_ascii_uppercase()
                    } else {
                        b.is_ascii_alphabetic()
                    }
            }
            _ => false,
        }
    }

    /// Length of a plain ASCII word at `i` that is a token of its own whatever the full rules
    /// say: followed by a space, the end of the line, or `.`/`,` then a space or the end (and not
    /// an abbreviation, `cannot` or a colloquial split). `None`: use the full rules.
    fn fast_word(&self, i: usize) -> Option<usize> {
        if !self.cs[i].is_ascii_alphabetic() {
            return None;
        }
        let l = self.run(i, |c| c.is_ascii_alphabetic());
        let plain = match self.at(i + l) {
            None | Some(' ') => true,
            Some('.' | ',') => matches!(self.at(i + l + 1), None | Some(' ')),
            _ => false,
        };
        if !plain || self.lit(i, "cannot") || SPECIAL_SPLITS.iter().any(|w| self.lit(i, w)) {
            return None;
        }
        if self.at(i + l) == Some('.') {
            // Abbreviations keep their dot ("mr.", "st.", "no. 5", single letters).
            if l == 1 || l > 8 {
                return if l > 8 { Some(l) } else { None };
            }
            let mut buf = [0u8; 8];
            for (b, c) in buf.iter_mut().zip(&self.cs[i..i + l]) {
                *b = c.to_ascii_lowercase() as u8;
            }
            let w = std::str::from_utf8(&buf[..l]).ok()?;
            if ABBREV1.contains(&w) || ABBREV4.contains(&w) || w == "no" || w == "nos" {
                return None;
            }
        }
        Some(l)
    }

    fn next_token(&self, i: usize) -> (usize, Option<String>) {
        let c = self.cs[i];
        if c == '\u{0}'
            || is_spacenl(c)
            || matches!(
                c,
                '\u{200b}' | '\u{200e}' | '\u{200f}' | '\u{feff}' | '|' | '\\' | '\u{7f}'
            )
        {
            return (1, None);
        }
        let mut cands: Vec<Cand> = Vec::with_capacity(8);
        let mut add = |total: usize, order: u32, take: usize, text: Option<String>| {
            if total > 0 {
                cands.push(Cand {
                    total,
                    order,
                    take,
                    text,
                });
            }
        };
        let word = self.run(i, is_word_char);
        let strip_soft = |s: String| s.replace('\u{ad}', "");
        // 0: cannot, and the colloquial splits of CoreNLP 3.4.1.
        if self.lit(i, "cannot") {
            add(6, 0, 3, Some(self.slice(i, 3)));
        }
        for w in SPECIAL_SPLITS {
            if self.lit(i, w) {
                add(5, 0, 3, Some(self.slice(i, 3)));
            }
        }
        if self.lit(i, "'tis") || self.lit(i, "'twas") {
            let total = if self.lit(i, "'tis") { 4 } else { 5 };
            add(total, 0, 2, Some("'t".to_string()));
        }
        // 1: SGML tags.
        if c == '<' {
            let mut j = i + 1;
            if self.at(j) == Some('/') {
                j += 1;
            }
            if self
                .at(j)
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '!')
            {
                let r = self.run(j, |c| c != '>');
                if self.at(j + r) == Some('>') {
                    let l = j + r + 1 - i;
                    add(l, 1, l, Some(self.slice(i, l)));
                }
            }
        }
        // 10-12: URLs and e-mail addresses (simplified LIKELYURL / FULLURL / EMAIL).
        {
            let r = self.run(i, |c| !is_spacenl(c) && !"\"<>|(){}".contains(c));
            if r > 0 {
                let mut l = r;
                while l > 0 && ".!?,-".contains(self.cs[i + l - 1]) {
                    l -= 1;
                }
                let s: String = self.slice(i, l).to_ascii_lowercase();
                let url = s.starts_with("http://")
                    || s.starts_with("https://")
                    || (s.starts_with("www.") && s[4..].contains('.'))
                    || [".com", ".net", ".org", ".edu"]
                        .iter()
                        .any(|t| s.ends_with(t) && s.len() > t.len() && !s.contains('@'));
                if url && s.is_ascii() {
                    add(l, 11, l, Some(self.slice(i, l)));
                }
                if let Some(at) = s.find('@') {
                    let (user, dom) = (&s[..at], &s[at + 1..]);
                    let tld_ok = dom.rsplit_once('.').is_some_and(|(d, t)| {
                        !d.is_empty()
                            && (2..=4).contains(&t.len())
                            && t.chars().all(|c| c.is_ascii_alphabetic())
                    });
                    if !user.is_empty()
                        && user.starts_with(|c: char| c.is_ascii_alphanumeric())
                        && tld_ok
                    {
                        add(l, 12, l, Some(self.slice(i, l)));
                    }
                }
            }
        }
        // 2: dashes.
        if matches!(
            c,
            '\u{96}' | '\u{97}' | '\u{2013}' | '\u{2014}' | '\u{2015}'
        ) {
            add(1, 2, 1, Some("--".into()));
        }
        // 3: &amp;
        if self.lit(i, "&amp;") {
            add(5, 3, 5, Some("&".into()));
        }
        if word > 0 {
            // 5: WORD/REDAUX
            let r = self.redaux(i + word);
            if r > 0 {
                add(word + r, 5, word, Some(strip_soft(self.slice(i, word))));
            }
            // 6: SWORD/SREDAUX
            let sw = self.run(i, |c| c.is_ascii_alphabetic() || c == '\u{ad}');
            for k in (1..sw).rev() {
                if matches!(self.cs[i + k], 'n' | 'N')
                    && self.at(i + k + 1).is_some_and(is_aposetc)
                    && matches!(self.at(i + k + 2), Some('t' | 'T'))
                    && !matches!(self.cs[i + k - 1], 'n' | 'N')
                {
                    add(k + 3, 6, k, Some(strip_soft(self.slice(i, k))));
                    break;
                }
            }
            // 7: WORD
            add(word, 7, word, Some(strip_soft(self.slice(i, word))));
        }
        // 8: APOWORD
        {
            let mut apo = 0;
            if is_apos(c) && matches!(self.at(i + 1), Some('n' | 'N')) {
                apo = if self.at(i + 2).is_some_and(is_apos) {
                    3
                } else {
                    2
                };
            }
            if "lLdDjJ".contains(c) && self.at(i + 1).is_some_and(is_apos) {
                apo = apo.max(2);
            }
            if is_apos(c) && self.lit(i + 1, "em") {
                apo = apo.max(3);
            }
            if (c.is_ascii_uppercase() && c != 'I' && c != 'Y' || c == 'n')
                && self.at(i + 1).is_some_and(is_aposetc)
            {
                let l = self.run(i + 2, |c| c.is_alphabetic());
                if l >= 2 {
                    apo = apo.max(2 + l);
                }
            }
            if is_apos(c)
                && self.at(i + 1).is_some_and(|d| ('2'..='9').contains(&d))
                && self.at(i + 2) == Some('0')
                && matches!(self.at(i + 3), Some('s' | 'S'))
            {
                apo = apo.max(4);
            }
            if is_apos(c) && self.lit(i + 1, "til") {
                apo = apo.max(if self.lit(i + 1, "till") { 5 } else { 4 });
            }
            let l = self.run(i, |c| c.is_alphabetic());
            if l >= 2
                && is_vowel_y(self.cs[i + l - 1])
                && self.at(i + l).is_some_and(is_aposetc)
                && self
                    .at(i + l + 1)
                    .is_some_and(|d| "aeiouAEIOU".contains(d) || d.is_ascii_uppercase())
            {
                apo = apo.max(l + 2 + self.run(i + l + 2, |c| c.is_alphabetic()));
            }
            for w in APOWORD_LITERALS {
                if self.lit(i, w) {
                    apo = apo.max(w.chars().count());
                }
            }
            if apo > 0 {
                add(apo, 8, apo, Some(self.slice(i, apo)));
            }
        }
        // 9: APOWORD2 y'/letter
        if matches!(c, 'y' | 'Y')
            && self.at(i + 1).is_some_and(is_apos)
            && self.at(i + 2).is_some_and(|c| c.is_alphabetic())
        {
            add(3, 9, 2, Some(self.slice(i, 2)));
        }
        // 13/61: REDAUX; 14: SREDAUX
        let r = self.redaux(i);
        if r > 0 {
            let text = Some(self.slice(i, r).replace(['\u{2019}', '\u{92}'], "'"));
            if self.at(i + r).is_some_and(|c| !c.is_ascii_alphabetic()) {
                add(r + 1, 13, r, text.clone());
            }
            add(r, 61, r, text);
        }
        if matches!(c, 'n' | 'N')
            && self.at(i + 1).is_some_and(is_aposetc)
            && matches!(self.at(i + 2), Some('t' | 'T'))
        {
            add(3, 14, 3, Some(format!("{c}'{}", self.cs[i + 2])));
        }
        // 15: DATE
        {
            let a = self.run(i, is_digit);
            if (1..=2).contains(&a) && matches!(self.at(i + a), Some('-' | '/')) {
                let b = self.run(i + a + 1, is_digit);
                if (1..=2).contains(&b) && matches!(self.at(i + a + 1 + b), Some('-' | '/')) {
                    let y = self.run(i + a + 2 + b, is_digit).min(4);
                    if y >= 2 {
                        let len = a + b + 2 + y;
                        add(len, 15, len, Some(self.slice(i, len)));
                    }
                }
            }
        }
        // 16: NUMBER
        let num = self.number(i);
        if num > 0 {
            add(num, 16, num, Some(strip_soft(self.slice(i, num))));
        }
        // 18: FRAC (a space inside becomes a non-breaking space)
        let fr = self.frac(i);
        if fr > 0 {
            add(fr, 18, fr, Some(self.slice(i, fr).replace(' ', "\u{a0}")));
        }
        // 19: FRAC2
        match c {
            '\u{bc}' => add(1, 19, 1, Some("1/4".into())),
            '\u{bd}' => add(1, 19, 1, Some("1/2".into())),
            '\u{be}' => add(1, 19, 1, Some("3/4".into())),
            '\u{2153}' => add(1, 19, 1, Some("1/3".into())),
            '\u{2154}'..='\u{215e}' => add(1, 19, 1, Some(c.to_string())),
            _ => {}
        }
        // 20: TBSPEC
        for w in [
            "-rrb-", "-lrb-", "-rcb-", "-lcb-", "-rsb-", "-lsb-", "c.d.s", "pro-", "anti-",
            "s&p-500", "s&ls", "cap'n", "c'est",
        ] {
            if self.lit(i, w) {
                let l = w.len();
                add(l, 20, l, Some(self.slice(i, l)));
            }
        }
        // 21: THING3
        let t3 = self.thing3(i);
        if t3 > 0 {
            add(t3, 21, t3, Some(self.slice(i, t3)));
        }
        // 22/23: currency
        if c == '#' {
            add(1, 22, 1, Some("#".into()));
        }
        {
            let u = self.run(i, |c| c.is_ascii_uppercase());
            if self.at(i + u) == Some('$') {
                add(u + 1, 22, u + 1, Some(self.slice(i, u + 1)));
            }
        }
        match c {
            '\u{a2}' => add(1, 23, 1, Some("cents".into())),
            '\u{a3}' => add(1, 23, 1, Some("#".into())),
            '\u{80}' | '\u{a4}' | '\u{20a0}' | '\u{20ac}' => add(1, 23, 1, Some("$".into())),
            '\u{a5}' | '\u{60b}' | '\u{e3f}' | '\u{20a4}' | '\u{ffe0}' | '\u{ffe1}'
            | '\u{ffe5}' | '\u{ffe6}' => add(1, 23, 1, Some(c.to_string())),
            _ => {}
        }
        // 24-29: abbreviations and acronyms.
        {
            // ACRO = [A-Za-z](\.[A-Za-z])+
            let mut acro = 0;
            if c.is_ascii_alphabetic() {
                let mut j = i + 1;
                while self.at(j) == Some('.')
                    && self.at(j + 1).is_some_and(|c| c.is_ascii_alphabetic())
                {
                    j += 2;
                }
                if j > i + 1 {
                    acro = j - i;
                }
            }
            if acro > 0 {
                if self.at(i + acro) == Some('.') {
                    add(acro + 1, 27, acro + 1, Some(self.slice(i, acro + 1)));
                }
                if self.ctx(i + acro).is_some_and(is_spacenl) {
                    add(acro + 1, 29, acro, Some(self.slice(i, acro)));
                }
            }
            let al = self.run(i, |c| c.is_ascii_alphabetic());
            if al > 0 && self.at(i + al) == Some('.') {
                let w: String = self.cs[i..i + al]
                    .iter()
                    .map(|c| c.to_ascii_lowercase())
                    .collect();
                let w = w.as_str();
                if ABBREV1.contains(&w) {
                    add(al + 1, 26, al + 1, Some(self.slice(i, al + 1)));
                } else if al == 1 {
                    if !self.sentend(i + 2, true) {
                        add(al + 1, 27, al + 1, Some(self.slice(i, al + 1)));
                    }
                } else if w == "no" || w == "nos" {
                    // "No." keeps its dot only before a number.
                    let j = i + al + 1;
                    if self.ctx(j).is_some_and(is_space)
                        && self.ctx(j + 1).is_some_and(|c| c.is_ascii_digit())
                    {
                        add(al + 1, 27, al + 1, Some(self.slice(i, al + 1)));
                    }
                } else if ABBREV4.contains(&w) || w == "a.k.a" {
                    add(al + 1, 27, al + 1, Some(self.slice(i, al + 1)));
                }
            }
        }
        // 30: TBSPEC2 '[0-9][0-9] followed by space
        if is_apos(c)
            && self.at(i + 1).is_some_and(|c| c.is_ascii_digit())
            && self.at(i + 2).is_some_and(|c| c.is_ascii_digit())
            && self.ctx(i + 3).is_some_and(is_spacenl)
        {
            add(4, 30, 3, Some(self.slice(i, 3)));
        }
        // 31: WORD\./INSENTP
        if word > 0
            && self.at(i + word) == Some('.')
            && matches!(self.at(i + word + 1), Some(',' | ';' | ':'))
        {
            add(
                word + 2,
                31,
                word + 1,
                Some(strip_soft(self.slice(i, word + 1))),
            );
        }
        // 33/34: double quotes
        if c == '"' {
            let left = self
                .at(i + 1)
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '$');
            add(
                if left { 2 } else { 1 },
                33,
                1,
                Some(if left { "``" } else { "''" }.into()),
            );
        }
        if self.lit(i, "&quot;") {
            add(6, 34, 6, Some("''".into()));
        }
        // 35-53: single symbols and runs.
        match c {
            '+' | '%' | '&' | '\u{2030}' | '\u{2031}' | '~' | '^' | '=' | '/' => {
                add(1, 35, 1, Some(c.to_string()))
            }
            '<' => add(1, 39, 1, Some("<".into())),
            '>' => add(1, 40, 1, Some(">".into())),
            '[' => add(1, 39, 1, Some("-LSB-".into())),
            ']' => add(1, 40, 1, Some("-RSB-".into())),
            '{' => add(1, 41, 1, Some("-LCB-".into())),
            '}' => add(1, 42, 1, Some("-RCB-".into())),
            '(' => add(1, 43, 1, Some("-LRB-".into())),
            ')' => add(1, 44, 1, Some("-RRB-".into())),
            '-' => {
                let h = self.run(i, |c| c == '-');
                let text = if (3..=4).contains(&h) {
                    "--".to_string()
                } else {
                    self.slice(i, h)
                };
                add(h, 45, h, Some(text));
            }
            '.' => {
                let d = self.run(i, |c| c == '.');
                if (3..=5).contains(&d) {
                    add(d, 46, d, Some("...".into()));
                } else {
                    add(1, 51, 1, Some(".".into()));
                }
            }
            '\u{85}' | '\u{2026}' => add(1, 46, 1, Some("...".into())),
            '@' | '#' | '_' => {
                let l = self.run(i, |d| d == c);
                add(l, 47, l, Some(self.slice(i, l)));
            }
            '*' => {
                let l = self.run(i, |d| d == '*');
                add(l, 48, l, Some(self.slice(i, l)));
            }
            ',' | ';' | ':' => add(1, 49, 1, Some(c.to_string())),
            '?' | '!' => {
                let l = self.run(i, |d| d == '?' || d == '!');
                add(l, 50, l, Some(self.slice(i, l)));
            }
            '\u{a1}'
            | '\u{bf}'
            | '\u{37e}'
            | '\u{589}'
            | '\u{61f}'
            | '\u{6d4}'
            | '\u{700}'..='\u{702}'
            | '\u{7fa}' => add(1, 51, 1, Some(c.to_string())),
            _ => {}
        }
        // 54-59: HTHING, THING, THINGA
        let ht = self.hthing(i);
        if ht > 0 {
            if self.at(i + ht) == Some('.') && matches!(self.at(i + ht + 1), Some(',' | ';' | ':'))
            {
                add(ht + 2, 54, ht + 1, Some(strip_soft(self.slice(i, ht + 1))));
            }
            add(ht, 55, ht, Some(strip_soft(self.slice(i, ht))));
        }
        let th = self.thing(i);
        if th > 0 {
            if self.at(i + th) == Some('.') && matches!(self.at(i + th + 1), Some(',' | ';' | ':'))
            {
                add(th + 2, 56, th + 1, Some(self.slice(i, th + 1)));
            }
            add(th, 57, th, Some(self.slice(i, th)));
        }
        {
            let u = self.run(i, |c| c.is_ascii_uppercase());
            if u > 0 {
                let mut j = i + u;
                loop {
                    let sep = if matches!(self.at(j), Some('+' | '&')) {
                        if self.lit(j, "&amp;") {
                            5
                        } else {
                            1
                        }
                    } else {
                        0
                    };
                    if sep == 0 {
                        break;
                    }
                    let v = self.run(j + sep, |c| c.is_ascii_uppercase());
                    if v == 0 {
                        break;
                    }
                    j += sep + v;
                }
                if j > i + u {
                    let l = j - i;
                    add(
                        l,
                        59,
                        l,
                        Some(self.slice(i, l).replace("&amp;", "&").replace("&AMP;", "&")),
                    );
                }
            }
        }
        // 60: opening single quote before a letter
        if c == '\''
            && self.at(i + 1).is_some_and(|c| c.is_ascii_alphabetic())
            && self
                .ctx(i + 2)
                .is_some_and(|c| !matches!(c, ' ' | '\t' | '\n' | '\r' | '\u{a0}'))
        {
            add(3, 60, 1, Some("`".into()));
        }
        // 62: QUOTES
        if is_apos(c)
            || matches!(
                c,
                '`' | '\u{2018}'
                    | '\u{201a}'
                    | '\u{201b}'
                    | '\u{201c}'
                    | '\u{201d}'
                    | '\u{91}'
                    | '\u{93}'
                    | '\u{94}'
                    | '\u{201e}'
                    | '\u{201f}'
                    | '\u{2039}'
                    | '\u{203a}'
                    | '\u{ab}'
                    | '\u{bb}'
            )
        {
            let two = self.at(i + 1).is_some_and(|d| {
                matches!(
                    d,
                    '`' | '\''
                        | '\u{2018}'
                        | '\u{2019}'
                        | '\u{201a}'
                        | '\u{201b}'
                        | '\u{201c}'
                        | '\u{201d}'
                        | '\u{91}'
                        | '\u{92}'
                        | '\u{93}'
                        | '\u{94}'
                        | '\u{201e}'
                        | '\u{201f}'
                        | '\u{2039}'
                        | '\u{203a}'
                        | '\u{ab}'
                        | '\u{bb}'
                )
            });
            let l = if two { 2 } else { 1 };
            add(l, 62, l, Some(latex_quotes(&self.slice(i, l))));
        }
        if let Some(best) = cands
            .into_iter()
            .min_by(|a, b| b.total.cmp(&a.total).then(a.order.cmp(&b.order)))
        {
            let text = best.text.map(|t| {
                if best.order == 60 || best.order == 62 {
                    t
                } else {
                    t.replace('\u{2019}', "'")
                }
            });
            return (best.take, text);
        }
        // MISCSYMBOL and anything else in the BMP: a token of its own.
        (1, Some(c.to_string()))
    }
}

/// CoreNLP's `latexQuotes` for a closing quote token.
fn latex_quotes(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '\'' | '\u{92}' | '\u{2019}' | '\u{203a}' => out.push('\''),
            '\u{91}' | '\u{2018}' | '\u{201b}' | '\u{2039}' | '`' => out.push('`'),
            '"' | '\u{94}' | '\u{201d}' | '\u{bb}' => out.push_str("''"),
            '\u{93}' | '\u{201c}' | '\u{ab}' => out.push_str("``"),
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tok(s: &str) -> String {
        ptb_tokenize(s).join(" ")
    }

    /// The shortcuts of `tokenize_line_into::<true>` give the tokens of the full rules.
    #[test]
    fn fast_paths_match_the_full_rules() {
        let words = [
            "A",
            "a",
            "man",
            "Mr",
            "mr",
            "St",
            "no",
            "Nos",
            "cannot",
            "gonna",
            "Cal",
            "calif",
            "etc",
            "x",
            "I",
            "dogs",
            "bancorp",
            "Wisconsin",
            "don't",
            "5",
            "u.s",
            "e-mail",
        ];
        let seps = [
            " ", ". ", ", ", ".", ",", " . ", ".,", ", 5", ". 5", ".\u{a0}", "  ",
        ];
        let nexts = [None, Some('\n'), Some('A'), Some('a'), Some(' '), Some('5')];
        let mut checked = 0;
        for (k, w1) in words.iter().enumerate() {
            for w2 in words.iter().skip(k % 3).step_by(3) {
                for s1 in seps {
                    for s2 in ["", ".", ",", " .", ". "] {
                        let line = format!("{w1}{s1}{w2}{s2}");
                        for next in nexts {
                            let run = |fast: bool| {
                                let mut out = Vec::new();
                                let mut emit = |t: &str| out.push(t.to_string());
                                let mut sc = Scratch::default();
                                if fast {
                                    tokenize_line_into::<true>(&line, next, &mut sc, &mut emit);
                                } else {
                                    tokenize_line_into::<false>(&line, next, &mut sc, &mut emit);
                                }
                                out
                            };
                            assert_eq!(run(true), run(false), "{line:?} then {next:?}");
                            checked += 1;
                        }
                    }
                }
            }
        }
        assert!(checked > 10_000, "{checked}");
    }

    #[test]
    fn clitics_and_punctuation() {
        assert_eq!(tok("A man's hat."), "a man 's hat");
        assert_eq!(tok("I don't, can't, won't!"), "i do n't ca n't wo n't");
        assert_eq!(
            tok("(a dog) [x] {y}"),
            "-lrb- a dog -rrb- -lsb- x -rsb- -lcb- y -rcb-"
        );
        assert_eq!(tok("$5.50 costs 50%!!!"), "$ 5.50 costs 50 % !!!");
        assert_eq!(tok("   ...  "), "");
    }
}
