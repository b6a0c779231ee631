//! Which parts of a suggestion's label the query matched, by the same rules as the search.

use crate::analysis::{MAX_TOKEN_BYTES, Part, QueryToken, edit_distance, split, typo_budget};

/// `[start, end)` code point ranges of `label` matched by `tokens`: a word (or glued words, for
/// `lhermite` -> `L'Hermite`) equal to a query word, starting with the word being typed (only that
/// prefix is marked), or within the typo budget. Sorted, merged.
pub(crate) fn highlights(label: &str, tokens: &[QueryToken]) -> Vec<[usize; 2]> {
    let mut folded = String::new();
    let mut parts: Vec<Part> = Vec::new();
    split(label, &mut folded, &mut parts, true);
    let mut ranges: Vec<[usize; 2]> = Vec::new();
    let mut word = String::new();
    let mut origin: Vec<usize> = Vec::new();
    for start in 0..parts.len() {
        word.clear();
        origin.clear();
        for (n, part) in parts[start..].iter().enumerate() {
            if n > 0 && !part.tight_before {
                break;
            }
            word.push_str(&folded[part.folded.clone()]);
            origin.extend_from_slice(&part.origin);
            if word.len() > MAX_TOKEN_BYTES {
                break;
            }
            mark(&word, &origin, tokens, &mut ranges);
        }
    }
    ranges.sort_unstable();
    let mut merged: Vec<[usize; 2]> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match merged.last_mut() {
            Some(last) if r[0] <= last[1] => last[1] = last[1].max(r[1]),
            _ => merged.push(r),
        }
    }
    merged
}

/// Adds the range of `word` matched by any token.
fn mark(word: &str, origin: &[usize], tokens: &[QueryToken], ranges: &mut Vec<[usize; 2]>) {
    let (Some(&first), Some(&last)) = (origin.first(), origin.last()) else {
        return;
    };
    for t in tokens {
        let text = t.text.as_str();
        if text.is_empty() {
            continue;
        }
        if word == text {
            ranges.push([first, last + 1]);
        } else if t.prefix && word.starts_with(text) {
            ranges.push([first, origin[text.len() - 1] + 1]);
        } else {
            let budget = typo_budget(text.chars().count());
            if budget > 0 && edit_distance(text, word, budget).is_some() {
                ranges.push([first, last + 1]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::query_tokens;

    fn hl(label: &str, q: &str) -> Vec<String> {
        let chars: Vec<char> = label.chars().collect();
        highlights(label, &query_tokens(q))
            .into_iter()
            .map(|[a, b]| chars[a..b].iter().collect())
            .collect()
    }

    #[test]
    fn marks_exact_prefix_and_typo_words() {
        assert_eq!(hl("François Dupont", "francois dup"), ["François", "Dup"]);
        assert_eq!(hl("Jean Bernard", "bernrad"), ["Bernard"]);
        assert_eq!(hl("Anne L'Hermite", "lherm"), ["L'Herm"]);
        assert_eq!(hl("Anne-Sophie Le Gall", "anne sophie"), ["Anne", "Sophie"]);
        assert_eq!(hl("Anne-Sophie Le Gall", "annesophie"), ["Anne-Sophie"]);
        assert_eq!(hl("Œdipe Roi", "oedi"), ["Œdi"]);
        assert!(hl("Jean Martin", "zzz").is_empty());
    }

    #[test]
    fn ranges_are_code_points() {
        let r = highlights("Émile Zoé", &query_tokens("zoe"));
        assert_eq!(r, [[6, 9]]);
    }
}
