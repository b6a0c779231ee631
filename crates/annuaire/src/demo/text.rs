//! Text helpers: ASCII folding of the accented letters of our tables, and the local parts and host-name
//! slugs made from names.

use mss_types::text::fold_latin;

/// `s` cut to `max` bytes (ASCII), without a trailing `.` or `-`.
pub(super) fn clip(s: &str, max: usize) -> &str {
    let s = if s.len() > max { &s[..max] } else { s };
    s.trim_end_matches(['.', '-'])
}

/// `Hélène` -> `Helene`; characters with no ASCII form are dropped.
pub(super) fn fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for_folded(s, |c| out.push(c));
    out
}

/// Calls `f` with each ASCII character of `s` folded: letters by the shared table, the typographic
/// apostrophe as `'`; anything else non-ASCII is dropped.
fn for_folded(s: &str, mut f: impl FnMut(char)) {
    for c in s.chars() {
        if c.is_ascii() {
            f(c);
        } else if c == '\u{2019}' {
            f('\'');
        } else if let Some(folded) = fold_latin(c) {
            folded.chars().for_each(&mut f);
        }
    }
}

/// [`push_local_word`] into a new string.
#[cfg(test)]
pub(super) fn local_word(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    push_local_word(&mut out, name);
    out
}

/// Appends a name as operators write it in local parts: `N'Diaye` -> `ndiaye`, `Le Gall` -> `le-gall`,
/// `Jean-Éric` -> `jean-eric`.
pub(super) fn push_local_word(out: &mut String, name: &str) {
    let start = out.len();
    for_folded(name, |c| {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if (c == ' ' || c == '-') && out.len() > start && !out.ends_with('-') {
            out.push('-');
        }
    });
    let trimmed = start + out[start..].trim_end_matches('-').len();
    out.truncate(trimmed);
    if out.len() == start {
        out.push('x');
    }
}

/// A host-name-safe slug of at most `max` characters, cut at a word boundary when possible.
pub(super) fn slug(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len());
    for_folded(s, |c| {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    });
    if out.len() > max {
        let cut = out[..=max]
            .rfind('-')
            .filter(|&i| i > max / 2)
            .unwrap_or(max);
        out.truncate(cut);
    }
    let trimmed = out.trim_end_matches('-').len();
    out.truncate(trimmed);
    if out.is_empty() {
        out.push('x');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::fold;

    /// Folding drops no character of the data files, so the generated addresses and delivery lines keep
    /// every letter of the names they come from.
    #[test]
    fn data_files_hold_only_characters_with_an_ascii_form() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/demo/data");
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            for c in text.chars().filter(|c| !c.is_ascii()) {
                assert!(
                    !fold(&c.to_string()).is_empty(),
                    "{c} in {}",
                    path.display()
                );
            }
        }
        assert_eq!(fold("Œuvre d’Hélène Ørsted"), "OEuvre d'Helene Orsted");
    }
}
