//! PTB tokenisation exactly as pycocoevalcap applies it.
//!
//! A re-implementation of the rules of Stanford CoreNLP 3.4.1's `PTBLexer` (JFlex: the longest
//! match wins, trailing context counting towards its length; the first rule wins a tie), run as
//! pycocoevalcap runs it (`-preserveLines -lowerCase`: the lexer's default options plus
//! `tokenizeNLs`, tokens lowercased with `Locale.ENGLISH`), followed by the removal of the
//! punctuation tokens pycocoevalcap drops. Checked token for token against the real jar on
//! thousands of messy captions (`tests/fixtures/tokenizer_lines.json.gz`).
//!
//! Rule classes that matter for raw captions:
//! * a word may contain `.`, `!` or `?` between letters (`case.next`, `street.A`, `stair.s`,
//!   `yahoo!` is not one: the mark must be followed by a letter), so a period with no space
//!   after it does not split;
//! * abbreviations keep their period: the jar's lists (`mr.`, `st.`, `etc.`, `calif.`, `inc.`,
//!   `jan.` ...), any letter-dot acronym (`u.s.a.`, `e.g.`, `a.`), and `no.`/`ca.`/`fig.`/`pp.`/
//!   `art.`/`op.`/`prop.`/`bldg.` only before a number; a one-letter acronym followed by a
//!   sentence-starting word (`I. The ...`) loses it;
//! * `..` is two periods (removed), `...` to `.....` and `…` are an ellipsis (removed);
//! * `|`, `\`, `+`, `%`, `&`, `~`, `^`, `§`, `°` and the other "misc symbols" are tokens of their
//!   own (`|||` is `| | |`); characters no rule knows (emoji, most control characters) are
//!   deleted.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

/// Tokens pycocoevalcap removes after tokenisation (already lowercased: the upper-case bracket
/// escapes in its list never match).
const DROPPED: [&str; 13] = [
    "''", "'", "``", "`", ".", "?", "!", ",", ":", "-", "--", "...", ";",
];

/// How many characters of the following caption the lexer may look at (the longest trailing
/// context of a rule that can reach into the next line is a few words).
const NEXT_CONTEXT: usize = 48;

/// Tokenises one caption as if it were the last line given to the Java tokenizer.
pub fn ptb_tokenize(caption: &str) -> Vec<String> {
    tokenize_line(caption, None)
}

/// Tokenises captions as pycocoevalcap does when they are joined by newlines in this order
/// (a caption's last token can depend on the start of the next caption).
pub fn ptb_tokenize_lines<S: AsRef<str> + Sync>(captions: &[S]) -> Vec<Vec<String>> {
    use rayon::prelude::*;
    (0..captions.len())
        .into_par_iter()
        .map(|i| tokenize_line(captions[i].as_ref(), captions.get(i + 1).map(AsRef::as_ref)))
        .collect()
}

/// Tokenises a caption; `next` is the following line, `None` at the end of the input.
pub(crate) fn tokenize_line(caption: &str, next: Option<&str>) -> Vec<String> {
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
    orig: Vec<char>,
    lower: String,
}

/// The lexer's view of a character: line breaks other than the joining `\n` become spaces
/// (pycocoevalcap's line bookkeeping would otherwise shift every later caption), characters
/// outside the BMP (two UTF-16 units the jar cannot tokenise, but which negated classes such as
/// a URL's accept) become [`ASTRAL`].
fn lexer_char(c: char) -> char {
    match c {
        '\n' | '\r' | '\u{b}' | '\u{c}' | '\u{85}' | '\u{2028}' | '\u{2029}' | '\t' => ' ',
        c if (c as u32) > 0xFFFF => ASTRAL,
        c => c,
    }
}

/// What the lexer sees of a character outside the BMP: a private-use character, which no rule
/// but the negated classes matches (the token text keeps the original character).
const ASTRAL: char = '\u{e000}';

/// Tokenises a caption like [`tokenize_line`], giving each kept (lowercased) token to `emit`;
/// `FAST`: shortcut plain words and punctuation (the same tokens, checked by the tests).
pub(crate) fn tokenize_line_into<const FAST: bool>(
    caption: &str,
    next: Option<&str>,
    scratch: &mut Scratch,
    emit: &mut impl FnMut(&str),
) {
    let cs = &mut scratch.cs;
    cs.clear();
    cs.reserve(caption.len() + 2 + NEXT_CONTEXT);
    cs.extend(caption.chars().map(lexer_char));
    let n = cs.len();
    let orig = &mut scratch.orig;
    orig.clear();
    if cs.contains(&ASTRAL) {
        orig.extend(caption.chars());
    }
    // What follows the line: the newline that joins it to the next caption, then the start of
    // that caption.
    if let Some(next) = next {
        cs.push('\n');
        cs.extend(next.chars().take(NEXT_CONTEXT).map(lexer_char));
    }
    let lx = Lexer {
        cs,
        orig: if orig.is_empty() { cs } else { orig },
        end: n,
        memo: Memo::default(),
    };
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
        } else if lx.fast_punct(i) {
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

/// A label of `LIKELYURL`'s `(label.)+(com|net|org|edu)`: the class excludes white space,
/// `"`\'<>|.!?(){}$` and the range `,` ..= `_`.
fn is_url_label(c: char) -> bool {
    !matches!(c, ' ' | '\t' | '\n' | '\u{c}' | '\r')
        && !"\"`'<>|.!?(){}$".contains(c)
        && !(',' as u32..='_' as u32).contains(&(c as u32))
}

/// A character of a `LIKELYURL` path.
fn is_url_path(c: char) -> bool {
    !matches!(c, ' ' | '\t' | '\n' | '\u{c}' | '\r') && !"\"<>|()".contains(c)
}

/// A character of an `EMAIL` after its first.
fn is_email_char(c: char) -> bool {
    !matches!(
        c,
        ' ' | '\t'
            | '\n'
            | '\u{c}'
            | '\r'
            | '"'
            | '<'
            | '>'
            | '|'
            | '('
            | ')'
            | '\u{a0}'
            | '{'
            | '}'
    )
}

/// Horizontal space (`SPACE`).
fn is_space(c: char) -> bool {
    matches!(
        c,
        ' ' | '\t' | '\u{a0}' | '\u{3000}' | '\u{2000}'..='\u{200a}'
    )
}

/// A line break of the lexer (`NEWLINE`).
fn is_newline(c: char) -> bool {
    matches!(
        c,
        '\n' | '\r' | '\u{b}' | '\u{c}' | '\u{85}' | '\u{2028}' | '\u{2029}'
    )
}

/// `SPACENL`.
fn is_spacenl(c: char) -> bool {
    is_space(c) || is_newline(c)
}

/// `APOS` (the `&apos;` entity aside).
fn is_apos(c: char) -> bool {
    matches!(c, '\'' | '\u{92}' | '\u{2019}')
}

/// `APOSETCETERA`.
fn is_aposetc(c: char) -> bool {
    is_apos(c) || matches!(c, '`' | '\u{91}' | '\u{2018}' | '\u{201b}')
}

/// `DIGIT` (`[:digit:]` and N'Ko digits).
fn is_digit(c: char) -> bool {
    c.is_ascii_digit()
        || (c.is_numeric()
            && !matches!(c, '\u{b2}'..='\u{be}' | '\u{2070}'..='\u{218f}' | '\u{2460}'..='\u{24ff}'))
}

/// Java's `Character.isLetter` (`[:letter:]`), approximated by Unicode's alphabetic property.
fn is_jletter(c: char) -> bool {
    c.is_alphabetic() && !is_digit(c) && c != '\u{ad}'
}

/// `LETTER`: `[:letter:]`, the soft hyphen, and the combining marks the lexer adds.
fn is_letter(c: char) -> bool {
    is_jletter(c) || c == '\u{ad}' || matches!(c, '\u{300}'..='\u{36f}' | '\u{237}'..='\u{24f}')
}

/// `[:letter:]|[:digit:]` (THING's characters).
fn is_alnum(c: char) -> bool {
    is_jletter(c) || is_digit(c)
}

/// `LETTER|DIGIT`.
fn is_letter_digit(c: char) -> bool {
    is_letter(c) || is_digit(c)
}

fn is_hyphen(c: char) -> bool {
    matches!(c, '-' | '_' | '\u{58a}' | '\u{2010}' | '\u{2011}')
}

/// `MISCSYMBOL`: symbols that are tokens of their own.
fn is_misc_symbol(c: char) -> bool {
    matches!(c,
        '+' | '%' | '&' | '~' | '^' | '|' | '\\' | '\u{a6}' | '\u{a7}' | '\u{a8}' | '\u{a9}'
        | '\u{ac}' | '\u{ae}' | '\u{af}' | '\u{b0}'..='\u{ba}' | '\u{d7}' | '\u{f7}' | '\u{387}'
        | '\u{5be}' | '\u{5c0}' | '\u{5c3}' | '\u{5c6}' | '\u{5f3}' | '\u{5f4}'
        | '\u{600}'..='\u{603}' | '\u{606}'..='\u{60a}' | '\u{60c}' | '\u{614}' | '\u{61b}'
        | '\u{61e}' | '\u{66a}' | '\u{66d}' | '\u{703}'..='\u{70d}' | '\u{7f6}'..='\u{7f8}'
        | '\u{964}' | '\u{965}' | '\u{e4f}' | '\u{1fbd}' | '\u{2016}' | '\u{2017}'
        | '\u{2020}'..='\u{2023}' | '\u{2030}'..='\u{2038}' | '\u{203b}' | '\u{203e}'..='\u{2042}'
        | '\u{2044}' | '\u{207a}'..='\u{207f}' | '\u{208a}'..='\u{208e}' | '\u{2100}'..='\u{214f}'
        | '\u{2190}'..='\u{21ff}' | '\u{2200}'..='\u{2bff}' | '\u{3012}' | '\u{30fb}'
        | '\u{ff01}'..='\u{ff0f}' | '\u{ff1a}'..='\u{ff20}' | '\u{ff3b}'..='\u{ff40}'
        | '\u{ff5b}'..='\u{ff65}')
}

/// Characters of the single-quote class of `QUOTES` (one or two of them make a token).
fn is_quote_class(c: char) -> bool {
    matches!(
        c,
        '`' | '\u{2018}'
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
}

// Word lists of the lexer's abbreviation rules. A pattern letter matches either case, except
// one preceded by `^`, which must match exactly (a JFlex character class ignores `%caseless`).

/// Abbreviations that always keep their period (`ABBREV1`).
const ABBREV1: &[&str] = &[
    // months, days
    "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "mon",
    "tue", "tues", "wed", "thu", "thurs", "fri", // states
    "ala", "ariz", "^Az", "^Ark", "calif", "colo", "conn", "ct", "dak", "^Del", "fla", "ga",
    "^Ill", "ind", "kan", "kans", "ky", "^La", "^Mass", "md", "mich", "minn", "^Miss", "mo",
    "mont", "neb", "nev", "okla", "^Ore", "^Pa", "penn", "tenn", "^Tex", "va", "vt", "^Wash",
    "wis", "wisc", "wyo", // companies
    "inc", "co", "cos", "corp", "pt^y", "pt^e", "pt^ys", "pt^es", "ppt^y", "ppt^e", "ppt^ys",
    "ppt^es", "ltd", "plc", "rt", "bancorp", "bhd", "assn", "univ", "intl", "sys",
    // numbers, post-name titles, others
    "tel", "est", "ext", "sq", "jr", "sr", "bros", "ed.d", "ph.d", "blvd", "rd", "esq", "etc", "al",
    "seq", "bldg",
];

/// Abbreviations (besides acronyms) that keep their period (`ABBREV4`, as `ABBREV2`).
const ABBREV4: &[&str] = &[
    "mr", "mrs", "ms", "^Miss", "dr", "drs", "prof", "profs", "sen", "sens", "rep", "reps", "atty",
    "attys", "lt", "col", "gen", "messrs", "gov", "govs", "adm", "rev", "maj", "sgt", "cpl", "pvt",
    "capt", "st", "ste", "ave", "pres", "lieut", "hon", "brig", "comdr", "cmdr", "pfc", "spc",
    "supt", "supts", "det", "mt", "ft", "adj", "adv", "asst", "assoc", "ens", "insp", "mlle",
    "mme", "msgr", "sfc", "vs", "alex", "wm", "jos", "cie", "a.k.a", "cf", "treas", "ph", "invt",
    "elec", "natl", "m^fg", "m^tg", "dept",
];

/// Abbreviations that keep their period only before a number (`ABBREV3`).
const ABBREV3: &[&str] = &[
    "ca", "fig", "figs", "prop", "no", "nos", "art", "bldg", "pp", "op",
];

/// Multi-letter forms of `ACRO`.
const ACRO_SPECIAL: &[&str] = &[
    "canada-u.s",
    "sino-u.s",
    "korean-u.s",
    "eu-u.s",
    "japan-u.s",
    "non-u.s",
    "u.s.-u.k",
    "u.s.-u.s.s.r",
];

/// Words after which an acronym's period also ends the sentence (`ACRONYM/...`); the first
/// letter must be upper case.
const SENTENCE_STARTERS: &[&str] = &[
    "About",
    "According",
    "Additionally",
    "After",
    "An",
    "A",
    "As",
    "At",
    "But",
    "Earlier",
    "He",
    "Her",
    "Here",
    "However",
    "If",
    "In",
    "It",
    "Last",
    "Many",
    "More",
    "Mr.",
    "Ms.",
    "Now",
    "Once",
    "One",
    "Other",
    "Our",
    "She",
    "Since",
    "So",
    "Some",
    "Such",
    "That",
    "The",
    "Their",
    "Then",
    "There",
    "These",
    "They",
    "This",
    "We",
    "When",
    "While",
    "What",
    "Yet",
    "You",
];

const SPECIAL_SPLITS: &[&str] = &["gonna", "gotta", "wanna", "gimme", "lemme"];

/// Fixed `APOWORD` forms; `'` matches any `APOS` where the rule says `{APOS}`, written here as
/// `’`, and only the ASCII apostrophe otherwise.
const APOWORD_LITERALS: &[&str] = &[
    "dunkin’",
    "somethin’",
    "ol’",
    "’cause",
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

/// `FILENAME_EXT`.
const FILENAME_EXT: &[&str] = &[
    "bat", "bmp", "c", "class", "cgi", "cpp", "dll", "doc", "docx", "exe", "gif", "gz", "h", "htm",
    "html", "jar", "java", "jpeg", "jpg", "mov", "mp3", "pdf", "php", "pl", "png", "ppt", "ps",
    "py", "sql", "tar", "txt", "wav", "x", "xml", "zip",
];

/// A set of positions reachable by a partial match.
type Ps = Vec<usize>;

struct Lexer<'a> {
    /// The line, then (optionally) the newline and the start of the next line.
    cs: &'a [char],
    /// The line's original characters (token texts come from here).
    orig: &'a [char],
    /// Where the line ends.
    end: usize,
    /// What the URL and e-mail rules remember between positions.
    memo: Memo,
}

/// Runs and rule results the URL and e-mail rules remember between the positions of a line.
/// Without them each position's rules scan to the end of a run without spaces (as the JFlex
/// lexer does), which is quadratic in the run's length.
#[derive(Default)]
struct Memo {
    /// `(start, end)` of the last run scanned: of URL labels from the rule's start, of labels
    /// inside a chain, of a URL path, and of e-mail characters.
    label: Cell<Option<(usize, usize)>>,
    chain_label: Cell<Option<(usize, usize)>>,
    path: Cell<Option<(usize, usize)>>,
    email_run: Cell<Option<(usize, usize)>>,
    /// `(run end, last position that may end a path, lowest position scanned)`.
    path_last: Cell<Option<(usize, Option<usize>, usize)>>,
    /// `(from, next)`: no `@` (or `.`) in `from..next`.
    first_at: Cell<Option<(usize, usize)>>,
    next_at: Cell<Option<(usize, usize)>>,
    dot: Cell<Option<(usize, usize)>>,
    /// Longest ends by label start ([`Lexer::url_chain`]), by `@` ([`Lexer::email_from`]) and
    /// by domain label start ([`Lexer::domain_end`]).
    chain: RefCell<HashMap<usize, usize>>,
    email: RefCell<HashMap<usize, usize>>,
    domain: RefCell<HashMap<usize, usize>>,
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
    /// Character at `i` of the line.
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
        self.orig[i..i + len].iter().collect()
    }

    /// Length of the pattern `pat` at `i` within the line (see the word lists for `^`; `’`
    /// matches any `APOS`, `'` only itself), 0 if it does not match.
    fn pat_at(&self, i: usize, pat: &str, line: bool) -> usize {
        let get = |j: usize| if line { self.at(j) } else { self.ctx(j) };
        let mut j = i;
        let mut exact = false;
        for l in pat.chars() {
            if l == '^' {
                exact = true;
                continue;
            }
            let ok = match get(j) {
                Some(c) if l == '’' => is_apos(c),
                Some(c) if exact => c == l,
                Some(c) => c.eq_ignore_ascii_case(&l),
                None => false,
            };
            if !ok {
                return 0;
            }
            exact = false;
            j += 1;
        }
        j - i
    }

    /// Case-insensitive match of the ASCII literal `lit` at `i` within the line.
    fn lit(&self, i: usize, lit: &str) -> bool {
        self.pat_at(i, lit, true) > 0
    }

    /// Positions after `min..=max` characters satisfying `f` from each of `ps`.
    fn reps(&self, ps: &[usize], f: impl Fn(char) -> bool, min: usize, max: usize) -> Ps {
        let mut out = Vec::new();
        for &p in ps {
            let r = self.run(p, &f).min(max);
            out.extend((min..=r).map(|k| p + k));
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Positions after one character equal to `c`.
    fn ch(&self, ps: &[usize], f: impl Fn(char) -> bool) -> Ps {
        self.reps(ps, f, 1, 1)
    }

    /// Length of a `REDAUX` (`'s 'm 'd 're 've 'll`) at `i`, 0 if none.
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

    /// `WORD`: a letter, letters and digits, then groups of `[.!?]` + letter + letters/digits.
    fn word(&self, i: usize) -> usize {
        if !self.at(i).is_some_and(is_letter) {
            return 0;
        }
        let mut j = i + 1 + self.run(i + 1, is_letter_digit);
        while self.at(j).is_some_and(|c| matches!(c, '.' | '!' | '?'))
            && self.at(j + 1).is_some_and(is_letter)
        {
            j += 2;
            j += self.run(j, is_letter_digit);
        }
        j - i
    }

    /// `NUMBER` = `[-+]?(D+ | D*([.:,\u00AD\u066B\u066C]D+)+)`, longest match.
    fn number(&self, i: usize) -> usize {
        let mut j = i;
        if matches!(self.at(j), Some('-' | '+')) {
            j += 1;
        }
        let start = j;
        j += self.run(j, is_digit);
        let mut end = if j > start { j } else { 0 };
        loop {
            if matches!(
                self.at(j),
                Some('.' | ':' | ',' | '\u{ad}' | '\u{66b}' | '\u{66c}')
            ) {
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

    /// `THING`: alphanumerics joined by hyphens, optional `[dDoOlL]'` prefixes.
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

    /// Ends of `ACRO2` (`[A-Za-z](\.[A-Za-z])+` or a special form) from `i`.
    fn acro2(&self, i: usize) -> Ps {
        let mut out = Vec::new();
        if self.at(i).is_some_and(|c| c.is_ascii_alphabetic()) {
            let mut j = i + 1;
            while self.at(j) == Some('.') && self.at(j + 1).is_some_and(|c| c.is_ascii_alphabetic())
            {
                j += 2;
                out.push(j);
            }
        }
        self.push_list_ends(i, ACRO_SPECIAL, &mut out);
        out
    }

    /// Pushes the end of every pattern of `list` that matches at `i`.
    fn push_list_ends(&self, i: usize, list: &[&str], out: &mut Ps) {
        for p in list {
            let l = self.pat_at(i, p, true);
            if l > 0 {
                out.push(i + l);
            }
        }
    }

    /// Ends of `ACRO` (`ACRO2` or a single letter) from `i`.
    fn acro(&self, i: usize) -> Ps {
        let mut out = self.acro2(i);
        if self.at(i).is_some_and(|c| c.is_ascii_alphabetic()) {
            out.push(i + 1);
        }
        out
    }

    /// Ends of `ABBREV4` from `i`.
    fn abbrev4(&self, i: usize) -> Ps {
        let mut out = self.acro(i);
        self.push_list_ends(i, ABBREV4, &mut out);
        out
    }

    /// `HTHING` = `[A-Za-z0-9][A-Za-z0-9.,\u00AD]*(-([A-Za-z0-9\u00AD]+|ACRO2\.))+`.
    fn hthing(&self, i: usize) -> usize {
        if !self.at(i).is_some_and(|c| c.is_ascii_alphanumeric()) {
            return 0;
        }
        let mut ps = self.reps(
            &[i + 1],
            |c| c.is_ascii_alphanumeric() || matches!(c, '.' | ',' | '\u{ad}'),
            0,
            usize::MAX,
        );
        let mut best = 0;
        while !ps.is_empty() {
            let dash = self.ch(&ps, |c| c == '-');
            let mut next = self.reps(
                &dash,
                |c| c.is_ascii_alphanumeric() || c == '\u{ad}',
                1,
                usize::MAX,
            );
            for &p in &dash {
                for e in self.acro2(p) {
                    if self.at(e) == Some('.') {
                        next.push(e + 1);
                    }
                }
            }
            next.sort_unstable();
            next.dedup();
            if let Some(&m) = next.last() {
                best = best.max(m - i);
            }
            ps = next;
        }
        best
    }

    /// `THING3` = `[A-Za-z0-9]+(-[A-Za-z]+){0,2}(\\?/[A-Za-z0-9]+(-[A-Za-z]+){0,2}){1,2}`.
    fn thing3(&self, i: usize) -> usize {
        let seg = |ps: &[usize]| -> Ps {
            let mut ps = self.reps(ps, |c| c.is_ascii_alphanumeric(), 1, usize::MAX);
            let mut all = ps.clone();
            for _ in 0..2 {
                let d = self.ch(&ps, |c| c == '-');
                ps = self.reps(&d, |c| c.is_ascii_alphabetic(), 1, usize::MAX);
                all.extend_from_slice(&ps);
            }
            all.sort_unstable();
            all.dedup();
            all
        };
        let slash = |ps: &[usize]| -> Ps {
            let mut out = self.ch(ps, |c| c == '/');
            let b = self.ch(ps, |c| c == '\\');
            out.extend(self.ch(&b, |c| c == '/'));
            out
        };
        let first = seg(&[i]);
        let one = seg(&slash(&first));
        let two = seg(&slash(&one));
        one.iter().chain(&two).map(|e| e - i).max().unwrap_or(0)
    }

    /// `FRAC` = `(D{1,4}[- \u00A0])?D{1,4}(\\?/|\u2044)D{1,4}`.
    fn frac(&self, i: usize) -> usize {
        let core = |ps: &[usize]| -> Ps {
            let a = self.reps(ps, is_digit, 1, 4);
            let mut s = self.ch(&a, |c| c == '/' || c == '\u{2044}');
            let b = self.ch(&a, |c| c == '\\');
            s.extend(self.ch(&b, |c| c == '/'));
            self.reps(&s, is_digit, 1, 4)
        };
        let mut ends = core(&[i]);
        let pre = self.reps(&[i], is_digit, 1, 4);
        let pre = self.ch(&pre, |c| matches!(c, '-' | ' ' | '\u{a0}'));
        ends.extend(core(&pre));
        ends.into_iter().max().map_or(0, |e| e - i)
    }

    /// `PHONE`, longest match.
    fn phone(&self, i: usize) -> usize {
        let d = |c: char| c.is_ascii_digit();
        let sep = |c: char| matches!(c, '-' | ' ' | '\u{a0}');
        let plus = |ps: &[usize]| -> Ps {
            let mut out = ps.to_vec();
            let one = self.ch(ps, |c| c == '+');
            out.extend(self.ch(&one, |c| c == '+'));
            out.extend(one);
            out
        };
        // Form 1: area code, then D{3,4} sep? D{3,5}.
        let mut heads = Vec::new();
        let open = self.ch(&[i], |c| c == '(');
        let area = self.reps(&open, d, 2, 3);
        let close = self.ch(&area, |c| c == ')');
        heads.extend(self.reps(&close, |c| c == ' ' || c == '\u{a0}', 0, 1));
        let p = plus(&[i]);
        let mut pre = p.clone();
        let x = self.reps(&p, d, 2, 4);
        pre.extend(self.ch(&x, sep));
        let y = self.reps(&pre, d, 2, 4);
        heads.extend(self.ch(&y, sep));
        let a = self.reps(&heads, d, 3, 4);
        let a = self.reps(&a, sep, 0, 1);
        let mut ends = self.reps(&a, d, 3, 5);
        // Form 2: dotted.
        let mut pre = vec![i];
        let x = self.reps(&p, d, 2, 4);
        pre.extend(self.ch(&x, |c| c == '.'));
        let a = self.reps(&pre, d, 2, 4);
        let a = self.ch(&a, |c| c == '.');
        let b = self.reps(&a, d, 3, 4);
        let b = self.ch(&b, |c| c == '.');
        ends.extend(self.reps(&b, d, 3, 5));
        ends.into_iter().max().map_or(0, |e| e - i)
    }

    /// `FULLURL` = `https?://[^ ...]+[^ ....!?,-]`.
    fn full_url(&self, i: usize) -> usize {
        let pre = if self.lit(i, "https://") {
            8
        } else if self.lit(i, "http://") {
            7
        } else {
            return 0;
        };
        let body = |c: char| {
            !matches!(
                c,
                ' ' | '\t' | '\n' | '\u{c}' | '\r' | '"' | '<' | '>' | '|' | '(' | ')' | '{' | '}'
            )
        };
        let last = |c: char| body(c) && !matches!(c, '.' | '!' | '?' | ',' | '-');
        let r = self.run(i + pre, body);
        (2..=r)
            .rev()
            .find(|&m| last(self.cs[i + pre + m - 1]))
            .map_or(0, |m| pre + m)
    }

    /// `LIKELYURL`, longest match.
    fn likely_url(&self, i: usize) -> usize {
        let ws = |c: char| matches!(c, ' ' | '\t' | '\n' | '\u{c}' | '\r');
        // The longest end (absolute; 0: none).
        let mut best = 0;
        // www.(label.)+[a-zA-Z]{2,4}
        if self.lit(i, "www.") {
            let label = |c: char| !ws(c) && !"\"<>|.!?(){},".contains(c);
            let mut ps = vec![i + 4];
            loop {
                let l = self.reps(&ps, label, 1, usize::MAX);
                ps = self.ch(&l, |c| c == '.');
                if ps.is_empty() {
                    break;
                }
                for e in self.reps(&ps, |c| c.is_ascii_alphabetic(), 2, 4) {
                    best = best.max(self.url_end(e));
                }
            }
        }
        // (label.)+(com|net|org|edu): a label is a run of the class, so only its end can be
        // followed by the dot.
        let r = self.run_memo(&self.memo.label, i, is_url_label);
        if r > 0 && self.at(i + r) == Some('.') {
            best = best.max(self.url_chain(i + r + 1));
        }
        best.saturating_sub(i)
    }

    /// The longest end of `(label.)*(com|net|org|edu)` plus an optional path from `q` (just
    /// after a dot), absolute, 0 if none; remembered for every label start it passes.
    fn url_chain(&self, q: usize) -> usize {
        // Forward, to the first label start already known: each start's own end.
        let mut starts = Vec::new();
        let mut tail = 0;
        let mut p = q;
        loop {
            if let Some(&known) = self.memo.chain.borrow().get(&p) {
                tail = known;
                break;
            }
            let own = if ["com", "net", "org", "edu"].iter().any(|t| self.lit(p, t)) {
                self.url_end(p + 3)
            } else {
                0
            };
            starts.push((p, own));
            let r = self.run_memo(&self.memo.chain_label, p, is_url_label);
            if r == 0 || self.at(p + r) != Some('.') {
                break;
            }
            p += r + 1;
        }
        // Backward: the longest end from each start is its own or a later one's.
        let mut chain = self.memo.chain.borrow_mut();
        for (p, own) in starts.into_iter().rev() {
            tail = tail.max(own);
            chain.insert(p, tail);
        }
        tail
    }

    /// The end of a URL ending at `e`, with the optional `(/[^ ...]+[^ ....!?(){},-])` path.
    fn url_end(&self, e: usize) -> usize {
        if self.at(e) != Some('/') {
            return e;
        }
        let path_last = |c: char| is_url_path(c) && !".!?(){},-".contains(c);
        let run_end = e + 1 + self.run_memo(&self.memo.path, e + 1, is_url_path);
        // The last position of the run that may end a path (scanned down to `low`).
        let (last, low) = match self.memo.path_last.get() {
            Some((end, last, low)) if end == run_end && (last.is_some() || low <= e + 1) => {
                (last, low)
            }
            _ => {
                let last = (e + 1..run_end).rev().find(|&k| path_last(self.cs[k]));
                self.memo.path_last.set(Some((run_end, last, e + 1)));
                (last, e + 1)
            }
        };
        debug_assert!(low <= e + 1 || last.is_some());
        match last {
            Some(l) if l >= e + 2 => l + 1,
            _ => e,
        }
    }

    /// `EMAIL`, longest match.
    fn email(&self, i: usize) -> usize {
        let mut s = i;
        if self.at(s) == Some('<') {
            s += 1;
        } else if self.lit(s, "&lt;") {
            s += 4;
        }
        let mut best = 0;
        for start in if s == i { vec![i] } else { vec![i, s] } {
            if !self.at(start).is_some_and(|c| c.is_ascii_alphanumeric()) {
                continue;
            }
            if start == i && s != i {
                continue;
            }
            let lim = start + 1 + self.run_memo(&self.memo.email_run, start + 1, is_email_char);
            let at = self.next_memo(&self.memo.first_at, start + 1, '@');
            if at < lim {
                best = best.max(self.email_from(at, lim).saturating_sub(i));
            }
        }
        best
    }

    /// The longest end (absolute; 0: none) of an address whose `@` is at `at` or a later `@`
    /// of the same run, which ends at `lim`; remembered for every `@` it passes.
    fn email_from(&self, at: usize, lim: usize) -> usize {
        let mut ats = Vec::new();
        let mut tail = 0;
        let mut a = at;
        while a < lim {
            if let Some(&known) = self.memo.email.borrow().get(&a) {
                tail = known;
                break;
            }
            let end = self.domain_end(a + 1, lim);
            let own = if end == 0 {
                0
            } else if self.at(end) == Some('>') {
                end + 1
            } else if self.lit(end, "&gt;") {
                end + 4
            } else {
                end
            };
            ats.push((a, own));
            a = self.next_memo(&self.memo.next_at, a + 1, '@');
        }
        let mut memo = self.memo.email.borrow_mut();
        for (a, own) in ats.into_iter().rev() {
            tail = tail.max(own);
            memo.insert(a, tail);
        }
        tail
    }

    /// The end of the domain `([^H]+\.)*[^H]+` from `j` within a run ending at `lim` (dots
    /// separate labels; an empty label ends it), 0 if none; remembered for every label start.
    fn domain_end(&self, j: usize, lim: usize) -> usize {
        let mut labels = Vec::new();
        let mut tail = 0;
        let mut j = j;
        while j < lim {
            if let Some(&known) = self.memo.domain.borrow().get(&j) {
                tail = known;
                break;
            }
            let end = self.next_memo(&self.memo.dot, j, '.').min(lim);
            if end == j {
                break;
            }
            labels.push((j, end));
            if end < lim && self.cs[end] == '.' {
                j = end + 1;
            } else {
                break;
            }
        }
        let mut memo = self.memo.domain.borrow_mut();
        for (j, end) in labels.into_iter().rev() {
            if tail == 0 {
                tail = end;
            }
            memo.insert(j, tail);
        }
        tail
    }

    /// `run(i, f)`, remembering the run in `slot`: every position of a run has the same end,
    /// so a rule that scans to a run's end from each of its positions stays linear.
    fn run_memo(
        &self,
        slot: &Cell<Option<(usize, usize)>>,
        i: usize,
        f: fn(char) -> bool,
    ) -> usize {
        if let Some((start, end)) = slot.get() {
            if start <= i && i <= end {
                return end - i;
            }
        }
        let r = self.run(i, f);
        slot.set(Some((i, i + r)));
        r
    }

    /// The first position at or after `i` holding `c`, or the line's end, remembered in `slot`.
    fn next_memo(&self, slot: &Cell<Option<(usize, usize)>>, i: usize, c: char) -> usize {
        if let Some((start, end)) = slot.get() {
            if start <= i && i <= end {
                return end;
            }
        }
        let end = i + self.run(i, |d| d != c);
        slot.set(Some((i, end)));
        end
    }

    /// `SGML` tags, longest match.
    fn sgml(&self, i: usize) -> usize {
        if self.at(i) != Some('<') {
            return 0;
        }
        let name_start = |c: char| c.is_ascii_alphabetic();
        let name = |c: char| c.is_ascii_alphanumeric() || "_:.-".contains(c);
        let sp = |c: char| c == ' ';
        let mut bodies = Vec::new();
        // <!x... or <?x...
        let bang = self.ch(&[i + 1], |c| c == '!' || c == '?');
        let b = self.ch(&bang, |c| c.is_ascii_alphabetic() || c == '-');
        bodies.extend(self.reps(&b, |c| c != '>' && c != '\r' && c != '\n', 0, usize::MAX));
        // <name attrs* ' '* /?
        let n = self.ch(&[i + 1], name_start);
        let mut ps = self.reps(&n, name, 0, usize::MAX);
        let mut all = ps.clone();
        loop {
            let s = self.reps(&ps, sp, 1, usize::MAX);
            let an = self.ch(&s, name_start);
            let an = self.reps(&an, name, 0, usize::MAX);
            let mut next = an.clone();
            let eq = self.reps(&an, sp, 0, usize::MAX);
            let eq = self.ch(&eq, |c| c == '=');
            let eq = self.reps(&eq, sp, 0, usize::MAX);
            for q in ['\'', '"'] {
                let o = self.ch(&eq, |c| c == q);
                let body = self.reps(&o, |c| c != q, 0, usize::MAX);
                next.extend(self.ch(&body, |c| c == q));
            }
            next.sort_unstable();
            next.dedup();
            next.retain(|p| !all.contains(p));
            if next.is_empty() {
                break;
            }
            all.extend_from_slice(&next);
            ps = next;
        }
        let all = self.reps(&all, sp, 0, usize::MAX);
        bodies.extend(self.reps(&all, |c| c == '/', 0, 1));
        // </name
        let close = self.ch(&[i + 1], |c| c == '/');
        let cn = self.ch(&close, name_start);
        bodies.extend(self.reps(&cn, name, 0, usize::MAX));
        let bodies = self.reps(&bodies, sp, 0, usize::MAX);
        self.ch(&bodies, |c| c == '>')
            .into_iter()
            .max()
            .map_or(0, |e| e - i)
    }

    /// `SENTEND` at `j`: a space or newline, then a space, newline, upper-case letter or tag.
    fn sentend(&self, j: usize) -> bool {
        match (self.ctx(j), self.ctx(j + 1)) {
            (Some(a), Some(b)) if is_spacenl(a) => {
                is_spacenl(b) || b.is_uppercase() || (b == '<' && self.sgml_ctx(j + 1))
            }
            _ => false,
        }
    }

    /// Whether a tag starts at `j` of the trailing context (approximated: `<` and a name).
    fn sgml_ctx(&self, j: usize) -> bool {
        self.ctx(j + 1)
            .is_some_and(|c| c.is_ascii_alphabetic() || "!?/".contains(c))
    }

    /// Total length of `ACRONYM`'s trailing context at `j`: spaces/newlines, a sentence-starting
    /// word, one space/newline; 0 if absent.
    fn sentence_starter(&self, j: usize) -> usize {
        let mut k = j;
        while self.ctx(k).is_some_and(is_spacenl) {
            k += 1;
        }
        if k == j {
            return 0;
        }
        let mut best = 0;
        for w in SENTENCE_STARTERS {
            let first = w.chars().next().unwrap_or('A');
            if self.ctx(k) != Some(first) {
                continue;
            }
            let l = self.pat_at(k, w, false);
            if l > 0 && self.ctx(k + l).is_some_and(is_spacenl) {
                best = best.max(k + l + 1 - j);
            }
        }
        if best == 0 && self.ctx(k) == Some('<') && self.sgml_ctx(k) {
            // A tag as the next "word": rare in captions; treated like a word.
            let l = (k..self.cs.len())
                .take_while(|&m| self.cs[m] != '>')
                .count();
            if self.ctx(k + l) == Some('>') && self.ctx(k + l + 1).is_some_and(is_spacenl) {
                best = k + l + 2 - j;
            }
        }
        best
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
            if l == 1 {
                return None;
            }
            if l > 8 {
                return Some(l);
            }
            let mut buf = [0u8; 8];
            for (b, c) in buf.iter_mut().zip(&self.cs[i..i + l]) {
                *b = c.to_ascii_lowercase() as u8;
            }
            let w = std::str::from_utf8(&buf[..l]).ok()?;
            // `p` with its `^`s removed equals `w` up to ASCII case (without allocating).
            let same = |p: &str| {
                let mut p = p.bytes().filter(|&b| b != b'^');
                w.bytes()
                    .all(|b| p.next().is_some_and(|q| q.eq_ignore_ascii_case(&b)))
                    && p.next().is_none()
            };
            let listed = |list: &[&str]| list.iter().any(|p| same(p));
            if listed(ABBREV1)
                || listed(ABBREV4)
                || listed(ABBREV3)
                || matches!(w, "pty" | "pte" | "co")
            {
                return None;
            }
        }
        Some(l)
    }

    /// Whether `i` holds a lone `.` or `,` that is a token of its own (dropped).
    fn fast_punct(&self, i: usize) -> bool {
        match self.cs[i] {
            ',' => matches!(self.at(i + 1), None | Some(' ')),
            // Not the start of a spaced ellipsis (". . .") or of a number (". .5" is fine, but
            // keep it simple: the next non-space must not be a period).
            '.' => match self.at(i + 1) {
                None => true,
                Some(' ') => self.at(i + 2) != Some('.'),
                _ => false,
            },
            _ => false,
        }
    }

    /// The longest match of the lexer's rules at `i`: characters consumed and the token (None:
    /// nothing emitted).
    fn next_token(&self, i: usize) -> (usize, Option<String>) {
        let c = self.cs[i];
        // Skipped: spaces, newlines, zero-width characters, DEL, and `\0` (our marker of the
        // characters outside the BMP, which the jar deletes as untokenizable).
        if c == '\u{0}'
            || is_spacenl(c)
            || matches!(
                c,
                '\u{200b}' | '\u{200e}' | '\u{200f}' | '\u{feff}' | '\u{7f}'
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
        let soft = |s: String| s.replace('\u{ad}', "");
        let word = self.word(i);

        // 0: c++, c#, f#, cannot, 'twas, 'tis and the colloquial splits.
        if self.lit(i, "c++") {
            add(3, 0, 3, Some(self.slice(i, 3)));
        }
        if self.lit(i, "c#") || self.lit(i, "f#") {
            add(2, 0, 2, Some(self.slice(i, 2)));
        }
        if self.lit(i, "cannot") {
            add(6, 0, 3, Some(self.slice(i, 3)));
        }
        if self.lit(i, "'twas") {
            add(5, 0, 2, Some(self.slice(i, 2)));
        }
        if self.lit(i, "'tis") {
            add(4, 0, 2, Some(self.slice(i, 2)));
        }
        for w in SPECIAL_SPLITS {
            if self.lit(i, w) {
                add(5, 0, 3, Some(self.slice(i, 3)));
            }
        }
        // 1: SGML (spaces inside become non-breaking).
        let sg = self.sgml(i);
        if sg > 0 {
            add(sg, 1, sg, Some(self.slice(i, sg).replace(' ', "\u{a0}")));
        }
        // 2: dashes; 3: &amp;; 4: other entities.
        if matches!(
            c,
            '\u{96}' | '\u{97}' | '\u{2013}' | '\u{2014}' | '\u{2015}'
        ) {
            add(1, 2, 1, Some("--".into()));
        }
        for e in ["&md;", "&mdash;", "&ndash;"] {
            if self.lit(i, e) {
                add(e.len(), 2, e.len(), Some("--".into()));
            }
        }
        if self.lit(i, "&amp;") {
            add(5, 3, 5, Some("&".into()));
        }
        if c == '&' {
            for e in [
                "&ht;", "&tl;", "&ur;", "&lr;", "&qc;", "&ql;", "&qr;", "&odq;", "&cdq;",
            ] {
                if self.lit(i, e) {
                    add(e.len(), 4, e.len(), Some(self.slice(i, e.len())));
                }
            }
            if self.at(i + 1) == Some('#') {
                let d = self.run(i + 2, |c| c.is_ascii_digit());
                if d > 0 && self.at(i + 2 + d) == Some(';') {
                    add(d + 3, 4, d + 3, Some(self.slice(i, d + 3)));
                }
            }
        }
        if word > 0 {
            // 5: WORD/REDAUX
            let r = self.redaux(i + word);
            if r > 0 {
                add(word + r, 5, word, Some(soft(self.slice(i, word))));
            }
            // 7: WORD
            add(word, 7, word, Some(soft(self.slice(i, word))));
        }
        // 6: SWORD/SREDAUX
        {
            let sw = self.run(i, |c| c.is_ascii_alphabetic() || c == '\u{ad}');
            for k in (1..=sw).rev() {
                if matches!(self.cs[i + k - 1], 'n' | 'N')
                    || !matches!(self.at(i + k), Some('n' | 'N'))
                    || !self.at(i + k + 1).is_some_and(is_aposetc)
                    || !matches!(self.at(i + k + 2), Some('t' | 'T'))
                {
                    continue;
                }
                add(k + 3, 6, k, Some(soft(self.slice(i, k))));
                break;
            }
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
            if (matches!(c, 'A'..='H' | 'J'..='X' | 'Z' | 'n'))
                && self.at(i + 1).is_some_and(is_aposetc)
            {
                let l = self.run(i + 2, is_jletter);
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
            let l = self.run(i, is_jletter);
            if l >= 2
                && matches!(
                    self.cs[i + l - 1],
                    'a' | 'e' | 'i' | 'o' | 'u' | 'y' | 'A' | 'E' | 'I' | 'O' | 'U' | 'Y'
                )
                && self.at(i + l).is_some_and(is_aposetc)
                && self
                    .at(i + l + 1)
                    .is_some_and(|d| "aeiou".contains(d) || d.is_ascii_uppercase())
            {
                apo = apo.max(l + 2 + self.run(i + l + 2, is_jletter));
            }
            for w in APOWORD_LITERALS {
                apo = apo.max(self.pat_at(i, w, true));
            }
            if matches!(c, 'o' | 'O')
                && self.at(i + 1).is_some_and(is_aposetc)
                && matches!(self.at(i + 2), Some('o' | 'O'))
            {
                apo = apo.max(3);
            }
            if apo > 0 {
                add(apo, 8, apo, Some(self.slice(i, apo)));
            }
        }
        // 9: APOWORD2 y'/letter
        if matches!(c, 'y' | 'Y')
            && self.at(i + 1).is_some_and(is_apos)
            && self.ctx(i + 2).is_some_and(is_jletter)
        {
            add(3, 9, 2, Some(self.slice(i, 2)));
        }
        // 10-12: URLs and e-mail addresses.
        let u = self.full_url(i);
        if u > 0 {
            add(u, 10, u, Some(self.slice(i, u)));
        }
        let u = self.likely_url(i);
        if u > 0 {
            add(u, 11, u, Some(self.slice(i, u)));
        }
        let e = self.email(i);
        if e > 0 {
            add(e, 12, e, Some(self.slice(i, e)));
        }
        // 13: TWITTER
        if c == '@'
            && self
                .at(i + 1)
                .is_some_and(|d| d.is_ascii_alphabetic() || d == '_')
        {
            let l = 2 + self.run(i + 2, |d| d.is_ascii_alphanumeric() || d == '_');
            add(l, 13, l, Some(self.slice(i, l)));
        }
        if c == '#' {
            let l = self.run(i + 1, is_letter);
            if l > 0 {
                add(l + 1, 13, l + 1, Some(self.slice(i, l + 1)));
            }
        }
        // 14: REDAUX/[^A-Za-z]; 15: SREDAUX/[^A-Za-z]; 62, 63: the same without context.
        let r = self.redaux(i);
        if r > 0 {
            let text = Some(latex_quotes(&self.slice(i, r)));
            if self.ctx(i + r).is_some_and(|c| !c.is_ascii_alphabetic()) {
                add(r + 1, 14, r, text.clone());
            }
            add(r, 62, r, text);
        }
        if matches!(c, 'n' | 'N')
            && self.at(i + 1).is_some_and(is_aposetc)
            && matches!(self.at(i + 2), Some('t' | 'T'))
        {
            let text = Some(latex_quotes(&self.slice(i, 3)));
            if self.ctx(i + 3).is_some_and(|c| !c.is_ascii_alphabetic()) {
                add(4, 15, 3, text.clone());
            }
            add(3, 63, 3, text);
        }
        // 16: DATE
        {
            let a = self.reps(&[i], is_digit, 1, 2);
            let a = self.ch(&a, |c| c == '-' || c == '/');
            let b = self.reps(&a, is_digit, 1, 2);
            let b = self.ch(&b, |c| c == '-' || c == '/');
            if let Some(&e) = self.reps(&b, is_digit, 2, 4).last() {
                add(e - i, 16, e - i, Some(self.slice(i, e - i)));
            }
        }
        // 17: NUMBER
        let num = self.number(i);
        if num > 0 {
            add(num, 17, num, Some(soft(self.slice(i, num))));
        }
        // 18: SUBSUPNUM
        {
            let mut j = i;
            if matches!(c, '\u{207a}' | '\u{207b}' | '\u{208a}' | '\u{208b}') {
                j += 1;
            }
            let sup = self.run(j, |d| {
                matches!(
                    d,
                    '\u{2070}' | '\u{b9}' | '\u{b2}' | '\u{b3}' | '\u{2074}'..='\u{2079}'
                )
            });
            let sub = self.run(j, |d| matches!(d, '\u{2080}'..='\u{2089}'));
            let l = sup.max(sub);
            if l > 0 {
                add(j + l - i, 18, j + l - i, Some(self.slice(i, j + l - i)));
            }
        }
        // 19: FRAC (a space inside becomes a non-breaking space)
        let fr = self.frac(i);
        if fr > 0 {
            add(fr, 19, fr, Some(self.slice(i, fr).replace(' ', "\u{a0}")));
        }
        // 20: FRAC2
        match c {
            '\u{bc}' => add(1, 20, 1, Some("1/4".into())),
            '\u{bd}' => add(1, 20, 1, Some("1/2".into())),
            '\u{be}' => add(1, 20, 1, Some("3/4".into())),
            '\u{2153}' => add(1, 20, 1, Some("1/3".into())),
            '\u{2154}' => add(1, 20, 1, Some("2/3".into())),
            '\u{2155}'..='\u{215e}' => add(1, 20, 1, Some(c.to_string())),
            _ => {}
        }
        // 21: TBSPEC
        for w in [
            "-rrb-",
            "-lrb-",
            "-rcb-",
            "-lcb-",
            "-rsb-",
            "-lsb-",
            "c.d.s",
            "pro-",
            "anti-",
            "s&p-500",
            "s&amp;p-500",
            "s&ls",
            "s&amp;ls",
            "cap’n",
            "c’est",
        ] {
            let l = self.pat_at(i, w, true);
            if l > 0 {
                add(
                    l,
                    21,
                    l,
                    Some(self.slice(i, l).replace("&amp;", "&").replace("&AMP;", "&")),
                );
            }
        }
        // 22: THING3
        let t3 = self.thing3(i);
        if t3 > 0 {
            add(t3, 22, t3, Some(self.slice(i, t3)));
        }
        // 23: DOLSIGN; 24: DOLSIGN2
        if c == '#' {
            add(1, 23, 1, Some("#".into()));
        }
        {
            let u = self.run(i, |c| c.is_ascii_uppercase());
            if self.at(i + u) == Some('$') {
                add(u + 1, 23, u + 1, Some(self.slice(i, u + 1)));
            }
        }
        match c {
            '\u{a2}' => add(1, 24, 1, Some("cents".into())),
            '\u{a3}' => add(1, 24, 1, Some("#".into())),
            '\u{80}' | '\u{a4}' | '\u{20a0}' | '\u{20ac}' => add(1, 24, 1, Some("$".into())),
            '\u{a5}' | '\u{60b}' | '\u{e3f}' | '\u{20a4}' | '\u{ffe0}' | '\u{ffe1}'
            | '\u{ffe5}' | '\u{ffe6}' => add(1, 24, 1, Some(c.to_string())),
            _ => {}
        }
        // 25: ACRONYM before a sentence-starting word: a one-letter acronym loses its period,
        // a longer one keeps it (and the period is also given back as a token).
        for e in self.acro(i) {
            if self.at(e) == Some('.') {
                let ctx = self.sentence_starter(e + 1);
                if ctx > 0 {
                    let l = e + 1 - i;
                    let take = if l == 2 { 1 } else { l - 1 };
                    let text = if l == 2 {
                        self.slice(i, 1)
                    } else {
                        self.slice(i, l)
                    };
                    add(l + ctx, 25, take, Some(text));
                }
            }
        }
        // 26: ABBREV3 before a number
        for w in ABBREV3 {
            let l = self.pat_at(i, w, true);
            if l > 0 && self.at(i + l) == Some('.') {
                let mut j = i + l + 1;
                if self.ctx(j).is_some_and(is_spacenl) {
                    j += 1;
                }
                if self.ctx(j).is_some_and(is_digit) {
                    add(j + 1 - i, 26, l + 1, Some(self.slice(i, l + 1)));
                }
            }
        }
        // 27: (pt[eyEY]|co)./{SPACE}(ltd|lim)
        for w in ["pt^e", "pt^y", "pt^E", "pt^Y", "co"] {
            let l = self.pat_at(i, w, true);
            if l > 0
                && self.at(i + l) == Some('.')
                && self.ctx(i + l + 1).is_some_and(is_space)
                && (self.pat_at(i + l + 2, "ltd", false) > 0
                    || self.pat_at(i + l + 2, "lim", false) > 0)
            {
                add(l + 5, 27, l + 1, Some(self.slice(i, l + 1)));
            }
        }
        // 28-30: ABBREV1 (the period is given back as a token before a sentence end or at the
        // end of the input).
        for w in ABBREV1 {
            let l = self.pat_at(i, w, true);
            if l > 0 && self.at(i + l) == Some('.') {
                let l = l + 1;
                let text = Some(self.slice(i, l));
                if self.sentend(i + l) {
                    add(l + 2, 28, l - 1, text.clone());
                }
                if self.ctx(i + l + 1).is_some() {
                    add(l + 2, 29, l, text.clone());
                }
                add(l, 30, l - 1, text);
            }
        }
        // 31: ABBREV2 = ABBREV4\.; 32: ABBREV4/{SPACE}; 33: ACRO/{SPACENL}
        // Of one rule's matches only the longest can win: only its text is made (making every
        // match's text is quadratic in an acronym's length).
        let ends = self.abbrev4(i);
        let longest = |ends: &[usize], f: &dyn Fn(usize) -> bool| {
            ends.iter().copied().filter(|&e| f(e)).max()
        };
        if let Some(e) = longest(&ends, &|e| self.at(e) == Some('.')) {
            add(e + 1 - i, 31, e + 1 - i, Some(self.slice(i, e + 1 - i)));
        }
        if let Some(e) = longest(&ends, &|e| self.ctx(e).is_some_and(is_space)) {
            add(e + 1 - i, 32, e - i, Some(self.slice(i, e - i)));
        }
        if let Some(e) = longest(&self.acro(i), &|e| self.ctx(e).is_some_and(is_spacenl)) {
            add(e + 1 - i, 33, e - i, Some(self.slice(i, e - i)));
        }
        // 34: TBSPEC2 '[0-9][0-9] followed by space
        if is_apos(c)
            && self.at(i + 1).is_some_and(|c| c.is_ascii_digit())
            && self.at(i + 2).is_some_and(|c| c.is_ascii_digit())
            && self.ctx(i + 3).is_some_and(is_spacenl)
        {
            add(4, 34, 3, Some(self.slice(i, 3)));
        }
        // 35: FILENAME/({SPACENL}|[.?!,])
        if is_letter_digit(c) {
            let mut j = i + self.run(i, is_letter_digit);
            let mut best = 0;
            while self.at(j) == Some('.') {
                let s = self.run(j + 1, is_letter_digit);
                if s == 0 {
                    break;
                }
                let seg: String = self.cs[j + 1..j + 1 + s]
                    .iter()
                    .collect::<String>()
                    .to_ascii_lowercase();
                j += 1 + s;
                if FILENAME_EXT.contains(&seg.as_str())
                    && self
                        .ctx(j)
                        .is_some_and(|d| is_spacenl(d) || ".?!,".contains(d))
                {
                    best = j - i;
                }
            }
            if best > 0 {
                add(best + 1, 35, best, Some(self.slice(i, best)));
            }
        }
        // 36: WORD\./INSENTP
        if word > 0
            && self.at(i + word) == Some('.')
            && self.ctx(i + word + 1).is_some_and(is_insentp)
        {
            add(word + 2, 36, word + 1, Some(soft(self.slice(i, word + 1))));
        }
        // 37: PHONE
        let ph = self.phone(i);
        if ph > 0 {
            add(
                ph,
                37,
                ph,
                Some(paren_escape(&self.slice(i, ph).replace(' ', "\u{a0}"))),
            );
        }
        // 38/39: double quotes
        {
            let l = if c == '"' {
                1
            } else if self.lit(i, "&quot;") {
                6
            } else {
                0
            };
            if l > 0 {
                if self
                    .ctx(i + l)
                    .is_some_and(|d| d.is_ascii_alphanumeric() || d == '$')
                {
                    add(l + 1, 38, l, Some("``".into()));
                }
                add(l, 39, l, Some("''".into()));
            }
        }
        // 41/42: < and >
        if c == '<' {
            add(1, 41, 1, Some("<".into()));
        }
        if self.lit(i, "&lt;") {
            add(4, 41, 4, Some("<".into()));
        }
        if c == '>' {
            add(1, 42, 1, Some(">".into()));
        }
        if self.lit(i, "&gt;") {
            add(4, 42, 4, Some(">".into()));
        }
        // 43: SMILEY/[^A-Za-z0-9]
        {
            let mut j = i;
            if matches!(c, '<' | '>') {
                j += 1;
            }
            if matches!(self.at(j), Some(':' | ';' | '=')) {
                let mut ends = vec![j + 1];
                if matches!(self.at(j + 1), Some('-' | 'o' | 'O' | '*' | '\'')) {
                    ends.push(j + 2);
                }
                for e in ends {
                    if self.at(e).is_some_and(|d| "()DPdpO\\{@|[]".contains(d))
                        && self.ctx(e + 1).is_some_and(|d| !d.is_ascii_alphanumeric())
                    {
                        let l = e + 1 - i;
                        add(l + 1, 43, l, Some(paren_escape(&self.slice(i, l))));
                    }
                }
            }
        }
        // 44: ASIANSMILEY
        {
            let eye = |d: char| "-^x=~<>'".contains(d);
            let mut l = 0;
            if self.at(i).is_some_and(eye)
                && self.at(i + 1) == Some('_')
                && self.at(i + 2).is_some_and(eye)
            {
                l = 3;
            }
            if c == '(' {
                let eye2 = |d: char| "^x=~<>'".contains(d);
                if self.at(i + 1).is_some_and(eye) {
                    let mut j = i + 2;
                    if matches!(self.at(j), Some('_' | '.')) {
                        j += 1;
                    }
                    if self.at(j).is_some_and(eye) && self.at(j + 1) == Some(')') {
                        l = l.max(j + 2 - i);
                    }
                    if matches!(self.at(i + 2), Some('_' | '.'))
                        && self.at(i + 2).is_some_and(eye)
                        && self.at(i + 3) == Some(')')
                    {
                        l = l.max(4);
                    }
                }
                if self.at(i + 1).is_some_and(eye2)
                    && self.at(i + 2) == Some('-')
                    && self.at(i + 3).is_some_and(|d| eye2(d) || d == '`')
                    && self.at(i + 4) == Some(')')
                {
                    l = l.max(5);
                }
            }
            if l > 0 {
                add(l, 44, l, Some(paren_escape(&self.slice(i, l))));
            }
        }
        // 45: brackets
        match c {
            '{' => add(1, 45, 1, Some("-LCB-".into())),
            '}' => add(1, 45, 1, Some("-RCB-".into())),
            '[' => add(1, 45, 1, Some("-LSB-".into())),
            ']' => add(1, 45, 1, Some("-RSB-".into())),
            '(' => add(1, 45, 1, Some("-LRB-".into())),
            ')' => add(1, 45, 1, Some("-RRB-".into())),
            _ => {}
        }
        // 46-54: runs of marks and single punctuation.
        match c {
            '-' => {
                let h = self.run(i, |c| c == '-');
                let text = if (3..=4).contains(&h) {
                    "--".to_string()
                } else {
                    self.slice(i, h)
                };
                add(h, 46, h, Some(text));
            }
            '.' => {
                let d = self.run(i, |c| c == '.');
                if d >= 3 {
                    add(d.min(5), 47, d.min(5), Some("...".into()));
                }
                // (\.[ \u00A0]){2,4}\.
                let mut k = 0;
                while k < 4
                    && self.at(i + 2 * k) == Some('.')
                    && matches!(self.at(i + 2 * k + 1), Some(' ' | '\u{a0}'))
                {
                    k += 1;
                    if k >= 2 && self.at(i + 2 * k) == Some('.') {
                        add(2 * k + 1, 47, 2 * k + 1, Some("...".into()));
                    }
                }
                add(1, 52, 1, Some(".".into()));
            }
            '\u{85}' | '\u{2026}' => add(1, 47, 1, Some("...".into())),
            '@' | '#' | '_' => {
                let l = self.run(i, |d| d == c);
                add(l, 48, l, Some(self.slice(i, l)));
            }
            '*' => {
                let l = self.run(i, |d| d == '*');
                add(l, 49, l, Some(self.slice(i, l)));
            }
            '\\' => {
                let mut k = 0;
                while k < 3
                    && self.at(i + 2 * k) == Some('\\')
                    && self.at(i + 2 * k + 1) == Some('*')
                {
                    k += 1;
                }
                if k > 0 {
                    add(2 * k, 49, 2 * k, Some(self.slice(i, 2 * k)));
                }
            }
            ',' | ';' | ':' | '\u{3001}' => add(1, 50, 1, Some(c.to_string())),
            '?' | '!' => {
                let l = self.run(i, |d| d == '?' || d == '!');
                add(l, 51, l, Some(self.slice(i, l)));
            }
            '\u{a1}'
            | '\u{bf}'
            | '\u{37e}'
            | '\u{589}'
            | '\u{61f}'
            | '\u{6d4}'
            | '\u{700}'..='\u{702}'
            | '\u{7fa}'
            | '\u{3002}' => add(1, 52, 1, Some(c.to_string())),
            '=' => add(1, 53, 1, Some("=".into())),
            '/' => add(1, 54, 1, Some("/".into())),
            _ => {}
        }
        // 55-60: HTHING, THING, THINGA (optionally with a period before , ; :)
        let insentp_after =
            |l: usize| self.at(i + l) == Some('.') && self.ctx(i + l + 1).is_some_and(is_insentp);
        let ht = self.hthing(i);
        if ht > 0 {
            if insentp_after(ht) {
                add(ht + 2, 55, ht + 1, Some(soft(self.slice(i, ht + 1))));
            }
            add(ht, 56, ht, Some(soft(self.slice(i, ht))));
        }
        let th = self.thing(i);
        if th > 0 {
            if insentp_after(th) {
                add(th + 2, 57, th + 1, Some(self.slice(i, th + 1)));
            }
            add(th, 58, th, Some(self.slice(i, th)));
        }
        {
            let u = self.run(i, |c| c.is_ascii_uppercase());
            if u > 0 {
                let mut j = i + u;
                loop {
                    let sep = if self.lit(j, "&amp;") {
                        5
                    } else if matches!(self.at(j), Some('+' | '&')) {
                        1
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
                    let amp = |s: String| s.replace("&amp;", "&").replace("&AMP;", "&");
                    if insentp_after(l) {
                        add(l + 2, 59, l + 1, Some(amp(self.slice(i, l + 1))));
                    }
                    add(l, 60, l, Some(amp(self.slice(i, l))));
                }
            }
        }
        // 61: an opening single quote before a letter
        if c == '\''
            && self.ctx(i + 1).is_some_and(|c| c.is_ascii_alphabetic())
            && self
                .ctx(i + 2)
                .is_some_and(|c| !matches!(c, ' ' | '\t' | '\n' | '\r' | '\u{a0}'))
        {
            add(3, 61, 1, Some("`".into()));
        }
        // 64: QUOTES
        if is_apos(c) || is_quote_class(c) {
            let two = (is_quote_class(c) && self.at(i + 1).is_some_and(is_quote_class))
                || (c == '\'' && self.at(i + 1) == Some('\''));
            let l = if two { 2 } else { 1 };
            add(l, 64, l, Some(latex_quotes(&self.slice(i, l))));
        }
        // 65: << and >>; 66: MISCSYMBOL; 69: &nbsp; (skipped)
        if self.lit(i, "<<") || self.lit(i, ">>") {
            add(2, 65, 2, Some(self.slice(i, 2)));
        }
        if is_misc_symbol(c) {
            add(1, 66, 1, Some(c.to_string()));
        }
        if self.lit(i, "&nbsp;") {
            add(6, 69, 6, None);
        }
        if let Some(best) = cands
            .into_iter()
            .min_by(|a, b| b.total.cmp(&a.total).then(a.order.cmp(&b.order)))
        {
            return (best.take, best.text);
        }
        // Anything else is untokenizable: deleted.
        (1, None)
    }
}

/// `INSENTP`.
fn is_insentp(c: char) -> bool {
    matches!(c, ',' | ';' | ':' | '\u{3001}')
}

/// Parentheses inside a token (phone numbers, smileys) as the PTB escapes.
fn paren_escape(s: &str) -> String {
    s.replace('(', "-LRB-").replace(')', "-RRB-")
}

/// CoreNLP's `latexQuotes` for a token that is not an opening quote.
fn latex_quotes(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '\'' | '\u{92}' | '\u{2019}' | '\u{203a}' => out.push('\''),
            '\u{91}' | '\u{2018}' | '\u{201b}' | '\u{2039}' => out.push('`'),
            '"' => out.push_str("''"),
            '\u{94}' | '\u{201d}' | '\u{bb}' => out.push_str("''"),
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
        let nexts = [
            None,
            Some(""),
            Some("A man"),
            Some("a"),
            Some(" "),
            Some("5"),
            Some("The dog"),
        ];
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

    // The URL and e-mail rules as they were before `Memo` (proven against the jar by the
    // fixtures), kept to prove the memoised rules equal them.

    /// `LIKELYURL` as it was before [`Memo`]: the rule's text, quadratic in a run's length.
    fn old_likely_url(lx: &Lexer, i: usize) -> usize {
        let ws = |c: char| matches!(c, ' ' | '\t' | '\n' | '\u{c}' | '\r');
        let mut ends = Vec::new();
        // www.(label.)+[a-zA-Z]{2,4}
        if lx.lit(i, "www.") {
            let label = |c: char| !ws(c) && !"\"<>|.!?(){},".contains(c);
            let mut ps = vec![i + 4];
            loop {
                let l = lx.reps(&ps, label, 1, usize::MAX);
                ps = lx.ch(&l, |c| c == '.');
                if ps.is_empty() {
                    break;
                }
                ends.extend(lx.reps(&ps, |c| c.is_ascii_alphabetic(), 2, 4));
            }
        }
        // (label.)+(com|net|org|edu); the label class excludes the range ',' ..= '_'.
        {
            let label = |c: char| {
                !ws(c)
                    && !"\"`'<>|.!?(){}$".contains(c)
                    && !(',' as u32..='_' as u32).contains(&(c as u32))
            };
            let mut ps = vec![i];
            loop {
                let l = lx.reps(&ps, label, 1, usize::MAX);
                ps = lx.ch(&l, |c| c == '.');
                if ps.is_empty() {
                    break;
                }
                for &p in &ps {
                    if ["com", "net", "org", "edu"].iter().any(|t| lx.lit(p, t)) {
                        ends.push(p + 3);
                    }
                }
            }
        }
        // (/[^ ...]+[^ ....!?(){},-])?
        let path_body = |c: char| !ws(c) && !"\"<>|()".contains(c);
        let path_last = |c: char| path_body(c) && !".!?(){},-".contains(c);
        let mut best = 0;
        for e in ends {
            best = best.max(e - i);
            if lx.at(e) == Some('/') {
                let r = lx.run(e + 1, path_body);
                if let Some(m) = (2..=r).rev().find(|&m| path_last(lx.cs[e + m])) {
                    best = best.max(e + 1 + m - i);
                }
            }
        }
        best
    }

    /// `EMAIL` as it was before [`Memo`].
    fn old_email(lx: &Lexer, i: usize) -> usize {
        let g = |c: char| {
            !matches!(
                c,
                ' ' | '\t'
                    | '\n'
                    | '\u{c}'
                    | '\r'
                    | '"'
                    | '<'
                    | '>'
                    | '|'
                    | '('
                    | ')'
                    | '\u{a0}'
                    | '{'
                    | '}'
            )
        };
        let mut s = i;
        if lx.at(s) == Some('<') {
            s += 1;
        } else if lx.lit(s, "&lt;") {
            s += 4;
        }
        let mut best = 0;
        for start in if s == i { vec![i] } else { vec![i, s] } {
            if !lx.at(start).is_some_and(|c| c.is_ascii_alphanumeric()) {
                continue;
            }
            if start == i && s != i {
                continue;
            }
            let r = lx.run(start + 1, g);
            for a in start + 1..start + 1 + r {
                if lx.cs[a] != '@' {
                    continue;
                }
                // Domain: ([^H]+\.)*[^H]+ within the run.
                let mut j = a + 1;
                let mut end = 0;
                let lim = start + 1 + r;
                while j < lim {
                    let l = (j..lim).take_while(|&k| lx.cs[k] != '.').count();
                    if l == 0 {
                        break;
                    }
                    end = j + l;
                    if end < lim && lx.cs[end] == '.' {
                        j = end + 1;
                    } else {
                        break;
                    }
                }
                if end > 0 {
                    let mut e = end;
                    if lx.at(e) == Some('>') {
                        e += 1;
                    } else if lx.lit(e, "&gt;") {
                        e += 4;
                    }
                    best = best.max(e - i);
                }
            }
        }
        best
    }

    /// Lines of the characters and fragments these rules turn on, seeded.
    fn url_and_email_lines(count: usize) -> Vec<String> {
        const PIECES: [&str; 34] = [
            "a", "b", "z", "X", "1", "com", "net", "org", "edu", "www.", ".", ".", "..", "@", "@",
            "/", "-", "_", "&", "&lt;", "&gt;", "<", ">", " ", "\u{a0}", "\u{fffd}", ",", "!", "?",
            "(", ":", "$", "'", "é",
        ];
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        (0..count)
            .map(|_| {
                let len = 1 + next(60);
                (0..len).map(|_| PIECES[next(PIECES.len())]).collect()
            })
            .collect()
    }

    /// The memoised `LIKELYURL` and `EMAIL` give the rules' own matches at every position of
    /// many random lines, visited forwards as the tokenizer does and in a scrambled order.
    #[test]
    fn memoised_url_and_email_rules_equal_the_rules_at_every_position() {
        let mut checked = 0;
        for line in url_and_email_lines(4000) {
            let cs: Vec<char> = line.chars().collect();
            let n = cs.len();
            let order: Vec<Vec<usize>> = vec![
                (0..n).collect(),
                (0..n).rev().collect(),
                (0..n).map(|k| (k * 7 + 3) % n).collect(),
            ];
            for positions in order {
                let lx = Lexer {
                    cs: &cs,
                    orig: &cs,
                    end: n,
                    memo: Memo::default(),
                };
                for i in positions {
                    assert_eq!(lx.likely_url(i), old_likely_url(&lx, i), "{line:?} at {i}");
                    assert_eq!(lx.email(i), old_email(&lx, i), "{line:?} at {i}");
                    checked += 1;
                }
            }
        }
        assert!(checked > 100_000, "{checked}");
    }

    /// Runs without spaces that were quadratic (the URL and e-mail rules scanned to the run's
    /// end from each position; an acronym's every prefix was copied): a run four times as long
    /// takes less than ten times as long (quadratic: sixteen), the best of three timings each.
    #[test]
    fn runs_without_spaces_tokenize_in_linear_time() {
        for unit in [
            "\u{fffd}", "&", "a\u{a0}", "a.", "a@", "a@.", "a'", ":", "a.com/", "x.", "@a.",
        ] {
            let best = |reps: usize| {
                let line = unit.repeat(reps);
                (0..3)
                    .map(|_| {
                        let start = std::time::Instant::now();
                        ptb_tokenize(&line);
                        start.elapsed()
                    })
                    .min()
                    .unwrap_or_default()
            };
            let (short, long) = (best(2000), best(8000));
            assert!(
                long < short * 10 + std::time::Duration::from_millis(20),
                "{unit:?}: {short:?} for 2000, {long:?} for 8000"
            );
        }
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
