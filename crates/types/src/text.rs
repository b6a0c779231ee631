//! ASCII folding of the accented Latin letters of names, the one table used by the index's analysis, the
//! demo directory's addresses and the file names of composed messages.

/// ASCII form of a Latin letter used in French and neighbouring languages' names, in the letter's case
/// (`é` -> `e`, `É` -> `E`, `Œ` -> `OE`, `ß` -> `ss`); `None` for ASCII and for any other character.
///
/// The output is always ASCII, so a caller that wants lower case can lower it in place.
#[inline]
pub fn fold_latin(c: char) -> Option<&'static str> {
    Some(match c {
        'À'..='Å' | 'Ā' | 'Ă' | 'Ą' | 'Ǎ' => "A",
        'à'..='å' | 'ā' | 'ă' | 'ą' | 'ǎ' => "a",
        'Æ' => "AE",
        'æ' => "ae",
        'Ç' | 'Ć' | 'Ĉ' | 'Ċ' | 'Č' => "C",
        'ç' | 'ć' | 'ĉ' | 'ċ' | 'č' => "c",
        'Ð' | 'Ď' | 'Đ' => "D",
        'ð' | 'ď' | 'đ' => "d",
        'È'..='Ë' | 'Ē' | 'Ĕ' | 'Ė' | 'Ę' | 'Ě' => "E",
        'è'..='ë' | 'ē' | 'ĕ' | 'ė' | 'ę' | 'ě' => "e",
        'Ĝ' | 'Ğ' | 'Ġ' | 'Ģ' => "G",
        'ĝ' | 'ğ' | 'ġ' | 'ģ' => "g",
        'Ĥ' | 'Ħ' => "H",
        'ĥ' | 'ħ' => "h",
        'Ì'..='Ï' | 'Ĩ' | 'Ī' | 'Ĭ' | 'Į' | 'İ' | 'Ǐ' => "I",
        'ì'..='ï' | 'ĩ' | 'ī' | 'ĭ' | 'į' | 'ı' | 'ǐ' => "i",
        'Ĳ' => "IJ",
        'ĳ' => "ij",
        'Ĵ' => "J",
        'ĵ' => "j",
        'Ķ' => "K",
        'ķ' => "k",
        'Ĺ' | 'Ļ' | 'Ľ' | 'Ŀ' | 'Ł' => "L",
        'ĺ' | 'ļ' | 'ľ' | 'ŀ' | 'ł' => "l",
        'Ñ' | 'Ń' | 'Ņ' | 'Ň' | 'Ŋ' => "N",
        'ñ' | 'ń' | 'ņ' | 'ň' | 'ŉ' | 'ŋ' => "n",
        'Ò'..='Ö' | 'Ø' | 'Ō' | 'Ŏ' | 'Ő' | 'Ǒ' => "O",
        'ò'..='ö' | 'ø' | 'ō' | 'ŏ' | 'ő' | 'ǒ' => "o",
        'Œ' => "OE",
        'œ' => "oe",
        'Ŕ' | 'Ŗ' | 'Ř' => "R",
        'ŕ' | 'ŗ' | 'ř' => "r",
        'Ś' | 'Ŝ' | 'Ş' | 'Š' | 'Ș' => "S",
        'ś' | 'ŝ' | 'ş' | 'š' | 'ș' | 'ſ' => "s",
        'ß' => "ss",
        'Ţ' | 'Ť' | 'Ŧ' | 'Ț' => "T",
        'ţ' | 'ť' | 'ŧ' | 'ț' => "t",
        'Þ' => "TH",
        'þ' => "th",
        'Ù'..='Ü' | 'Ũ' | 'Ū' | 'Ŭ' | 'Ů' | 'Ű' | 'Ų' | 'Ǔ' => "U",
        'ù'..='ü' | 'ũ' | 'ū' | 'ŭ' | 'ů' | 'ű' | 'ų' | 'ǔ' => "u",
        'Ŵ' => "W",
        'ŵ' => "w",
        'Ý' | 'Ÿ' | 'Ŷ' => "Y",
        'ý' | 'ÿ' | 'ŷ' => "y",
        'Ź' | 'Ż' | 'Ž' => "Z",
        'ź' | 'ż' | 'ž' => "z",
        _ => return None,
    })
}

/// A file name safe to create from an outside one (an attachment's, an archive entry's): the last path
/// component only, accented letters folded, anything but ASCII letters, digits, `.`, `-` and `_` made `_`,
/// no leading dot, at most 100 bytes; `fallback` when nothing is left.
pub fn safe_file_name(name: &str, fallback: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or("");
    let mut out = String::with_capacity(last.len());
    for c in last.chars() {
        match fold_latin(c) {
            Some(f) => out.push_str(f),
            None if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') => out.push(c),
            None => out.push('_'),
        }
        if out.len() >= 100 {
            out.truncate(100);
            break;
        }
    }
    let out = out.trim_start_matches('.');
    if out.trim_matches('_').is_empty() {
        fallback.to_owned()
    } else {
        out.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_file_names_are_made_safe() {
        for (name, want) in [
            ("compte-rendu.pdf", "compte-rendu.pdf"),
            ("Résultat été.pdf", "Resultat_ete.pdf"),
            ("../../etc/passwd", "passwd"),
            ("C:\\x\\..\\y.xml", "y.xml"),
            ("..", "doc"),
            (".bashrc", "bashrc"),
            ("", "doc"),
            ("///", "doc"),
            ("журнал", "doc"),
        ] {
            assert_eq!(safe_file_name(name, "doc"), want, "{name:?}");
        }
        assert_eq!(safe_file_name(&"a".repeat(300), "doc").len(), 100);
    }

    proptest::proptest! {
        #[test]
        fn a_safe_name_stays_in_its_directory(name in ".{0,200}") {
            let safe = safe_file_name(&name, "doc");
            proptest::prop_assert!(!safe.is_empty() && safe.len() <= 100);
            proptest::prop_assert!(!safe.starts_with('.'));
            proptest::prop_assert!(
                safe.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            );
        }
    }

    #[test]
    fn folds_in_the_letters_case() {
        assert_eq!(fold_latin('é'), Some("e"));
        assert_eq!(fold_latin('É'), Some("E"));
        assert_eq!(fold_latin('Œ'), Some("OE"));
        assert_eq!(fold_latin('œ'), Some("oe"));
        assert_eq!(fold_latin('ß'), Some("ss"));
        assert_eq!(fold_latin('ı'), Some("i"));
        assert_eq!(fold_latin('e'), None);
        assert_eq!(fold_latin('’'), None);
        assert_eq!(fold_latin('ж'), None);
    }

    #[test]
    fn output_is_ascii_and_follows_the_letters_case() {
        for c in '\u{80}'..='\u{24f}' {
            if let Some(s) = fold_latin(c) {
                assert!(s.is_ascii(), "{c}");
                if c.is_uppercase() {
                    assert_eq!(s, s.to_ascii_uppercase(), "{c}");
                } else {
                    assert_eq!(s, s.to_ascii_lowercase(), "{c}");
                }
            }
        }
    }
}
