//! Text analysis shared by indexing, querying and highlighting, so that the three always agree.
//!
//! One rule everywhere: split on any character that is not a letter or a digit, lower-case, fold accents
//! and ligatures to ASCII (`François` -> `francois`, `Œuvre` -> `oeuvre`). Parts joined by a hyphen or an
//! apostrophe with nothing else between them (`L'Hermite`, `Anne-Sophie`, `Saint-Étienne`) are also indexed
//! joined (`lhermite`, `annesophie`, `saintetienne`), so that users who type them glued still find them.

use mss_types::text::fold_latin;
use tantivy::tokenizer::{Token, TokenStream, Tokenizer};

/// Longest token kept, in bytes of folded text; longer words are cut (at a character boundary), the same
/// way at index and at query time.
pub(crate) const MAX_TOKEN_BYTES: usize = 40;

/// Longest name prefix indexed as a term (edge n-grams); a longer typed prefix is expanded over the name
/// words at query time, which is cheap because few words share it.
pub(crate) const MAX_PREFIX_CHARS: usize = 3;

/// A joined chain never spans more parts than this (bounds the tokens of pathological values).
const MAX_CHAIN_PARTS: usize = 6;

/// Whether `c` glues two parts of one name (`Anne-Sophie`, `L'Hermite`, `N’Diaye`).
fn is_tight(c: char) -> bool {
    matches!(
        c,
        '-' | '\''
            | '\u{2019}'
            | '\u{2018}'
            | '\u{02bc}'
            | '`'
            | '\u{b4}'
            | '\u{2010}'
            | '\u{2011}'
    )
}

/// Appends the folded form of `c` to `out`; returns false when `c` separates words.
#[inline]
pub(crate) fn fold_char(c: char, out: &mut String) -> bool {
    if c.is_ascii() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
            return true;
        }
        return false;
    }
    if let Some(s) = fold_latin(c) {
        // the table keeps the letter's case and is ASCII: lower it in place, without allocating
        let start = out.len();
        out.push_str(s);
        out[start..].make_ascii_lowercase();
        return true;
    }
    if c.is_alphanumeric() {
        out.extend(c.to_lowercase());
        return true;
    }
    false
}

/// Folds a whole string (words kept apart by single spaces); used for keys and tests.
pub(crate) fn fold(text: &str) -> String {
    let mut folded = String::new();
    let mut parts = Vec::new();
    split(text, &mut folded, &mut parts, false);
    let mut out = String::with_capacity(folded.len() + parts.len());
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(&folded[p.folded.clone()]);
    }
    out
}

/// Cuts `s` to at most `max` bytes at a character boundary.
fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// One word of a text, folded, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Part {
    /// Byte range of the folded word in the shared folded buffer.
    pub folded: std::ops::Range<usize>,
    /// Code point range of the word in the original text.
    pub chars: std::ops::Range<usize>,
    /// For each folded byte, the code point (in the original) it comes from.
    pub origin: Vec<usize>,
    /// Glued to the previous part by a single hyphen or apostrophe.
    pub tight_before: bool,
}

/// Splits and folds `text` into `folded` and `parts` (both cleared first); parts index into `folded`.
pub(crate) fn split(text: &str, folded: &mut String, parts: &mut Vec<Part>, with_origin: bool) {
    folded.clear();
    parts.clear();
    let mut current: Option<Part> = None;
    // separator run since the last word: number of chars and whether it was one tight char
    let mut sep_len = 0usize;
    let mut sep_tight = false;
    for (ci, c) in text.chars().enumerate() {
        let start = folded.len();
        if fold_char(c, folded) {
            let part = current.get_or_insert_with(|| Part {
                folded: start..start,
                chars: ci..ci,
                origin: Vec::new(),
                tight_before: !parts.is_empty() && sep_len == 1 && sep_tight,
            });
            part.folded.end = folded.len();
            part.chars.end = ci + 1;
            if with_origin {
                part.origin
                    .resize(part.origin.len() + folded.len() - start, ci);
            }
            sep_len = 0;
        } else {
            if let Some(p) = current.take() {
                parts.push(p);
            }
            sep_len += 1;
            sep_tight = is_tight(c);
        }
    }
    if let Some(p) = current.take() {
        parts.push(p);
    }
}

/// Calls `emit` with every indexed word of `text`: each part, then each glued chain of parts
/// (`l'hay-les-roses` -> `lhay`, `lhayles`, `lhaylesroses`, `hayles`, ...). `skip` is the byte length of the
/// chain's first part (prefixes shorter than that are already emitted by the part itself).
fn for_each_word(
    text: &str,
    folded: &mut String,
    parts: &mut Vec<Part>,
    joined: &mut String,
    emit: &mut impl FnMut(&str, usize),
) {
    split(text, folded, parts, false);
    for p in parts.iter() {
        emit(cut(&folded[p.folded.clone()], MAX_TOKEN_BYTES), 0);
    }
    let mut i = 0;
    while i < parts.len() {
        // maximal run of tightly glued parts starting at i
        let mut end = i + 1;
        while end < parts.len() && parts[end].tight_before {
            end += 1;
        }
        for start in i..end {
            joined.clear();
            joined.push_str(&folded[parts[start].folded.clone()]);
            let skip = joined.len();
            for part in parts
                .iter()
                .take(end.min(start + MAX_CHAIN_PARTS))
                .skip(start + 1)
            {
                if joined.len() >= MAX_TOKEN_BYTES {
                    break;
                }
                joined.push_str(&folded[part.folded.clone()]);
                emit(cut(joined, MAX_TOKEN_BYTES), skip);
            }
        }
        i = end;
    }
}

/// How the index tokenizer expands words.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Mode {
    /// Whole words (and glued forms).
    Word,
    /// Every prefix of every word, up to [`MAX_PREFIX_CHARS`] characters.
    Prefix,
}

/// The index-time tokenizer: folded words, or their edge n-grams.
///
/// Tokens are produced into reused buffers, so indexing allocates nothing per token.
#[derive(Clone)]
pub(crate) struct FoldTokenizer {
    mode: Mode,
    folded: String,
    parts: Vec<Part>,
    joined: String,
    /// All token texts, back to back, with their byte ends.
    texts: String,
    ends: Vec<usize>,
}

impl FoldTokenizer {
    pub(crate) fn new(mode: Mode) -> Self {
        FoldTokenizer {
            mode,
            folded: String::new(),
            parts: Vec::new(),
            joined: String::new(),
            texts: String::new(),
            ends: Vec::new(),
        }
    }
}

/// Token stream over the buffers of a [`FoldTokenizer`].
pub(crate) struct FoldTokenStream<'a> {
    texts: &'a str,
    ends: &'a [usize],
    next: usize,
    token: Token,
}

impl Tokenizer for FoldTokenizer {
    type TokenStream<'a> = FoldTokenStream<'a>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> FoldTokenStream<'a> {
        self.texts.clear();
        self.ends.clear();
        let (texts, ends, mode) = (&mut self.texts, &mut self.ends, self.mode);
        let (folded, parts, joined) = (&mut self.folded, &mut self.parts, &mut self.joined);
        for_each_word(text, folded, parts, joined, &mut |word, skip| match mode {
            Mode::Word => {
                texts.push_str(word);
                ends.push(texts.len());
            }
            Mode::Prefix => {
                for (n, (i, c)) in word.char_indices().enumerate() {
                    if n >= MAX_PREFIX_CHARS {
                        break;
                    }
                    let end = i + c.len_utf8();
                    if end > skip {
                        texts.push_str(&word[..end]);
                        ends.push(texts.len());
                    }
                }
            }
        });
        FoldTokenStream {
            texts: &self.texts,
            ends: &self.ends,
            next: 0,
            token: Token::default(),
        }
    }
}

impl TokenStream for FoldTokenStream<'_> {
    fn advance(&mut self) -> bool {
        let Some(&end) = self.ends.get(self.next) else {
            return false;
        };
        let start = if self.next == 0 {
            0
        } else {
            self.ends[self.next - 1]
        };
        self.token.text.clear();
        self.token.text.push_str(&self.texts[start..end]);
        self.token.position = self.next;
        self.token.offset_from = 0;
        self.token.offset_to = 0;
        self.next += 1;
        true
    }

    fn token(&self) -> &Token {
        &self.token
    }

    fn token_mut(&mut self) -> &mut Token {
        &mut self.token
    }
}

/// A word of a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QueryToken {
    /// Folded text, cut like indexed words.
    pub text: String,
    /// The word being typed: matched as a prefix too.
    pub prefix: bool,
}

/// At most this many query words are used; the rest is ignored (ten words already narrow to nothing).
pub(crate) const MAX_QUERY_TOKENS: usize = 10;

/// The words of a query. The last one is a prefix unless the query ends with a separator (the user
/// finished the word).
pub(crate) fn query_tokens(q: &str) -> Vec<QueryToken> {
    let mut folded = String::new();
    let mut parts = Vec::new();
    split(q, &mut folded, &mut parts, false);
    let ends_with_word = q.chars().next_back().is_some_and(|c| {
        let mut tmp = String::new();
        fold_char(c, &mut tmp)
    });
    let n = parts.len();
    parts
        .iter()
        .enumerate()
        .take(MAX_QUERY_TOKENS)
        .map(|(i, p)| QueryToken {
            text: cut(&folded[p.folded.clone()], MAX_TOKEN_BYTES).to_string(),
            prefix: i + 1 == n && ends_with_word,
        })
        .collect()
}

/// A place as one word: its folded words glued (`Saint-Étienne` -> `saintetienne`), the form the whole
/// city is indexed under for the location bonus ([`crate::query`]), and that query words are glued into.
pub(crate) fn glued(text: &str) -> String {
    fold(text).replace(' ', "")
}

/// The usual short and long names of a structure whose name starts with one of them (folded words), so
/// that `ch dax`, `chu nantes`, `ap-hp` or `centre hospitalier universitaire nantes` find it.
const STRUCTURE_NAMES: &[(&str, &str)] = &[
    ("centre hospitalier regional universitaire", "chru chu"),
    ("centre hospitalier universitaire", "chu"),
    ("centre hospitalier regional", "chr ch"),
    ("centre hospitalier", "ch"),
    ("chru", "chu centre hospitalier regional universitaire"),
    ("chu", "centre hospitalier universitaire"),
    ("chr", "ch centre hospitalier regional"),
    ("ch", "centre hospitalier"),
    ("assistance publique hopitaux de paris", "aphp ap hp"),
    ("assistance publique hopitaux de marseille", "aphm ap hm"),
    ("hospices civils de lyon", "hcl"),
    ("hopitaux universitaires de strasbourg", "hus"),
    (
        "etablissement d hebergement pour personnes agees dependantes",
        "ehpad",
    ),
];

/// The other names of a structure ([`STRUCTURE_NAMES`]), indexed beside its own.
pub(crate) fn structure_names(name: &str) -> Option<&'static str> {
    let folded = fold(name);
    STRUCTURE_NAMES.iter().find_map(|(long, short)| {
        let rest = folded.strip_prefix(long)?;
        (rest.is_empty() || rest.starts_with(' ')).then_some(*short)
    })
}

/// Typo budget of a word of `chars` characters: none below 4, 1 from 4, 2 from 8.
pub(crate) fn typo_budget(chars: usize) -> u8 {
    match chars {
        0..=3 => 0,
        4..=7 => 1,
        _ => 2,
    }
}

/// Damerau (optimal string alignment) distance, or `None` when above `max`.
pub(crate) fn edit_distance(a: &str, b: &str, max: u8) -> Option<u8> {
    // Highlighting calls this for every word of every suggestion: words are ASCII once folded and
    // short, so the common case runs on bytes, on the stack.
    if a.is_ascii() && b.is_ascii() && a.len() < 48 && b.len() < 48 {
        return distance(a.as_bytes(), b.as_bytes(), max);
    }
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    distance(&a, &b, max)
}

fn distance<T: PartialEq>(a: &[T], b: &[T], max: u8) -> Option<u8> {
    let max = usize::from(max);
    if a.len().abs_diff(b.len()) > max {
        return None;
    }
    // Three rows of the matrix (two back, for swaps): on the stack for words of realistic length.
    const W: usize = 49;
    let w = b.len() + 1;
    let mut stack = [[0usize; W]; 3];
    let mut heap: [Vec<usize>; 3] = Default::default();
    let [s2, s1, s0] = &mut stack;
    let [h2, h1, h0] = &mut heap;
    let (mut prev2, mut prev, mut cur): (&mut [usize], &mut [usize], &mut [usize]) = if w <= W {
        (&mut s2[..w], &mut s1[..w], &mut s0[..w])
    } else {
        *h2 = vec![0; w];
        *h1 = vec![0; w];
        *h0 = vec![0; w];
        (h2, h1, h0)
    };
    for (j, c) in prev.iter_mut().enumerate() {
        *c = j;
    }
    for i in 1..=a.len() {
        cur[0] = i;
        let mut row_min = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(prev2[j - 2] + 1);
            }
            cur[j] = v;
            row_min = row_min.min(v);
        }
        if row_min > max {
            return None;
        }
        (prev2, prev, cur) = (prev, cur, prev2);
    }
    let dist = prev[b.len()];
    (dist <= max).then(|| u8::try_from(dist).unwrap_or(u8::MAX))
}

/// Alphabetical tie-break key: the first 10 characters of the folded text, 6 bits each, so that integer
/// order is reading order (end < space < digits < letters; other characters count as `z`).
pub(crate) fn name_key(text: &str) -> u64 {
    let mut key = 0u64;
    let mut n = 0;
    let mut folded = String::with_capacity(8);
    let mut space = false;
    'chars: for c in text.chars() {
        folded.clear();
        if !fold_char(c, &mut folded) {
            space = n > 0;
            continue;
        }
        // a run of separators counts as one space, as in `fold`
        let pending = if space { Some(b' ') } else { None };
        space = false;
        for b in pending.into_iter().chain(folded.bytes()) {
            if n == 10 {
                break 'chars;
            }
            let code = match b {
                b' ' => 1,
                b'0'..=b'9' => 2 + u64::from(b - b'0'),
                b'a'..=b'z' => 12 + u64::from(b - b'a'),
                // continuation bytes of non-Latin letters: skip, the lead byte already counted
                0x80..=0xBF => continue,
                _ => 37,
            };
            key = (key << 6) | code;
            n += 1;
        }
    }
    for _ in n..10 {
        key <<= 6;
    }
    key << 4
}

/// A stable 64-bit hash of an address (FNV-1a): a total order among entries of equal score and name, the
/// same in every process and generation, which is what a cursor needs.
pub(crate) fn addr_hash(address: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in address.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(mode: Mode, text: &str) -> Vec<String> {
        let mut t = FoldTokenizer::new(mode);
        let mut s = t.token_stream(text);
        let mut out = Vec::new();
        while let Some(tok) = s.next() {
            out.push(tok.text.clone());
        }
        out
    }

    #[test]
    fn folds_case_accents_and_ligatures() {
        assert_eq!(fold("François  ÉLOÏSE-Cœur"), "francois eloise coeur");
        assert_eq!(fold("L'Haÿ-les-Roses"), "l hay les roses");
        assert_eq!(fold("Straße Ørsted"), "strasse orsted");
        assert_eq!(fold("  "), "");
    }

    #[test]
    fn glued_forms_are_indexed() {
        assert_eq!(
            tokens(Mode::Word, "L'Hermite"),
            ["l", "hermite", "lhermite"]
        );
        assert_eq!(
            tokens(Mode::Word, "Anne-Sophie Le Gall"),
            ["anne", "sophie", "le", "gall", "annesophie"]
        );
        assert_eq!(tokens(Mode::Word, "N’Diaye"), ["n", "diaye", "ndiaye"]);
        // a dash between spaces does not glue
        assert_eq!(
            tokens(Mode::Word, "CHU – Cardiologie"),
            ["chu", "cardiologie"]
        );
        let t = tokens(Mode::Word, "de-La-Tour-d'Auvergne");
        assert!(t.contains(&"latour".to_string()), "{t:?}");
        assert!(t.contains(&"dauvergne".to_string()), "{t:?}");
        assert!(t.contains(&"delatourdauvergne".to_string()), "{t:?}");
    }

    #[test]
    fn prefixes_are_edge_ngrams() {
        assert_eq!(
            tokens(Mode::Prefix, "Léa Go"),
            ["l", "le", "lea", "g", "go"]
        );
        // the glued form only adds prefixes longer than its first part
        assert_eq!(tokens(Mode::Prefix, "N'Di"), ["n", "d", "di", "nd", "ndi"]);
        let long = tokens(Mode::Prefix, "abcdefghijklmnopqrstuvwxyz");
        assert_eq!(long.len(), MAX_PREFIX_CHARS);
    }

    #[test]
    fn query_words_and_prefix() {
        let t = query_tokens("Fran");
        assert_eq!(
            t,
            [QueryToken {
                text: "fran".into(),
                prefix: true
            }]
        );
        let t = query_tokens("Dupont ");
        assert!(!t[0].prefix);
        let t = query_tokens("de la tour");
        assert_eq!(t.len(), 3);
        assert!(!t[0].prefix && !t[1].prefix && t[2].prefix);
        assert!(query_tokens(" ,;- ").is_empty());
        assert_eq!(query_tokens(&"x ".repeat(50)).len(), MAX_QUERY_TOKENS);
        assert_eq!(
            query_tokens(&"é".repeat(100))[0].text.len(),
            MAX_TOKEN_BYTES
        );
    }

    #[test]
    fn damerau_distance() {
        assert_eq!(edit_distance("bernrad", "bernard", 1), Some(1));
        assert_eq!(edit_distance("bernrad", "bernardo", 1), None);
        assert_eq!(edit_distance("dupont", "dupond", 1), Some(1));
        assert_eq!(edit_distance("abc", "abc", 0), Some(0));
        assert_eq!(edit_distance("martin", "martine", 2), Some(1));
        assert_eq!(edit_distance("ab", "ba", 1), Some(1));
        assert_eq!(edit_distance("éric", "eric", 1), Some(1));
        let long = "a".repeat(60);
        assert_eq!(edit_distance(&long, &format!("{long}b"), 1), Some(1));
        assert_eq!(edit_distance("", "ab", 2), Some(2));
    }

    #[test]
    fn structures_get_their_usual_other_names() {
        assert_eq!(glued("SAINT-ETIENNE CEDEX"), "saintetiennecedex");
        assert_eq!(structure_names("Centre Hospitalier de Dax"), Some("ch"));
        assert_eq!(
            structure_names("CHU de Nantes"),
            Some("centre hospitalier universitaire")
        );
        assert_eq!(
            structure_names("CHRU de Tours"),
            Some("chu centre hospitalier regional universitaire")
        );
        assert_eq!(
            structure_names("Assistance Publique - Hôpitaux de Paris"),
            Some("aphp ap hp")
        );
        assert_eq!(
            structure_names("Centre Hospitalier Régional d'Orléans"),
            Some("chr ch")
        );
        // a word that only starts like a short name is not one
        assert_eq!(structure_names("Chuchotements"), None);
        assert_eq!(structure_names("Clinique du Parc"), None);
    }

    #[test]
    fn name_key_reads_alphabetically() {
        let mut names = [
            "Zoé Abel",
            "anne martin",
            "Anne",
            "Anne-Marie",
            "Ánne Martin",
            "Éric",
            "2e",
        ];
        names.sort_by_key(|n| (name_key(n), *n));
        assert_eq!(
            names,
            [
                "2e",
                "Anne",
                "Anne-Marie",
                "anne martin",
                "Ánne Martin",
                "Éric",
                "Zoé Abel"
            ]
        );
        assert_eq!(name_key("anne martin"), name_key("Anne Martin"));
    }
}
