//! A pattern compiled once into a `Matcher`: a substring, or a glob when it holds `*`, `?` or
//! `[`. Smart case as in ripgrep and fd: case-insensitive unless the pattern has an uppercase
//! letter. Names need not be UTF-8: matching is on bytes (ASCII letters fold; a `?` or a class
//! takes one UTF-8 character, or one byte that is not part of one). Every match contains the
//! pattern's longest literal run, so most names are rejected by `memmem` alone.

use memchr::memmem;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SearchError {
    #[error("an empty pattern")]
    Empty,
    #[error("{0}: an unclosed [ in the glob")]
    UnclosedClass(String),
}

/// A compiled pattern.
#[derive(Debug, Clone)]
pub struct Matcher {
    pattern: String,
    case_sensitive: bool,
    /// The substring itself, or the longest literal run of a glob: every match contains it, so
    /// a glob is tried only on the names that do (most are rejected by `memmem` alone).
    literal: Literal,
    glob: Option<Vec<Token>>,
}

#[derive(Debug, Clone)]
enum Literal {
    /// Nothing required (a glob of wildcards only).
    None,
    /// Exact bytes.
    Exact(Box<memmem::Finder<'static>>),
    /// ASCII letters in either case; `folded` is the lowercase needle. `unicode` holds the
    /// lowercase pattern when it has non-ASCII letters, for names that are not ASCII.
    Folded {
        folded: Vec<u8>,
        unicode: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// One byte (ASCII-folded in a case-insensitive glob).
    Byte(u8),
    /// `?`: one character.
    One,
    /// `*`: any run of bytes.
    Star,
    /// `[...]`: one character in (or, negated, not in) these inclusive ranges.
    Class {
        ranges: Vec<(char, char)>,
        negated: bool,
    },
}

impl Matcher {
    /// Compiles `pattern`: a glob if it holds `*`, `?` or `[`, else a substring.
    pub fn new(pattern: &str) -> Result<Matcher, SearchError> {
        if pattern.is_empty() {
            return Err(SearchError::Empty);
        }
        let case_sensitive = pattern.chars().any(char::is_uppercase);
        let is_glob = pattern.contains(['*', '?', '[']);
        let glob = if is_glob {
            Some(compile_glob(pattern, case_sensitive)?)
        } else {
            None
        };
        let needle: Vec<u8> = match &glob {
            Some(tokens) => longest_literal(tokens),
            None => pattern.as_bytes().to_vec(),
        };
        let literal = if needle.is_empty() {
            Literal::None
        } else if case_sensitive {
            Literal::Exact(Box::new(memmem::Finder::new(&needle).into_owned()))
        } else {
            Literal::Folded {
                folded: needle.to_ascii_lowercase(),
                // Only a substring gets the Unicode path; a glob's classes fold ASCII only.
                unicode: (glob.is_none() && !pattern.is_ascii()).then(|| pattern.to_lowercase()),
            }
        };
        Ok(Matcher {
            pattern: pattern.to_owned(),
            case_sensitive,
            literal,
            glob,
        })
    }

    #[must_use]
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    #[must_use]
    pub fn is_glob(&self) -> bool {
        self.glob.is_some()
    }

    #[must_use]
    pub fn is_case_sensitive(&self) -> bool {
        self.case_sensitive
    }

    /// Does this name match? A substring anywhere in it; a glob over all of it.
    #[must_use]
    pub fn is_match(&self, name: &[u8]) -> bool {
        let has_literal = match &self.literal {
            Literal::None => true,
            Literal::Exact(f) => f.find(name).is_some(),
            Literal::Folded { folded, unicode } => {
                contains_folded(name, folded)
                    || unicode.as_ref().is_some_and(|u| {
                        // Rare: a non-ASCII pattern against a non-ASCII UTF-8 name (`é` in
                        // `CAFÉ`); a name that is not UTF-8 matches by its bytes only.
                        !name.is_ascii()
                            && std::str::from_utf8(name)
                                .is_ok_and(|s| s.to_lowercase().contains(u.as_str()))
                    })
            }
        };
        match &self.glob {
            None => has_literal,
            Some(tokens) => has_literal && glob_match(tokens, name, !self.case_sensitive),
        }
    }
}

/// Does `hay` contain `needle` (lowercase ASCII) with ASCII letters in either case?
fn contains_folded(hay: &[u8], needle: &[u8]) -> bool {
    let Some((&first, rest)) = needle.split_first() else {
        return true;
    };
    if hay.len() < needle.len() {
        return false;
    }
    let last_start = hay.len() - needle.len();
    let upper = first.to_ascii_uppercase();
    let mut from = 0;
    while from <= last_start {
        let Some(i) = memchr::memchr2(first, upper, &hay[from..=last_start]) else {
            return false;
        };
        let at = from + i;
        if hay[at + 1..at + needle.len()].eq_ignore_ascii_case(rest) {
            return true;
        }
        from = at + 1;
    }
    false
}

fn compile_glob(pattern: &str, case_sensitive: bool) -> Result<Vec<Token>, SearchError> {
    let fold = |b: u8| {
        if case_sensitive {
            b
        } else {
            b.to_ascii_lowercase()
        }
    };
    let mut tokens = Vec::new();
    let mut chars = pattern.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        match c {
            '*' => {
                // `**` is `*`: names hold no `/`.
                if tokens.last() != Some(&Token::Star) {
                    tokens.push(Token::Star);
                }
            }
            '?' => tokens.push(Token::One),
            '[' => {
                let mut negated = false;
                if let Some(&(_, '!' | '^')) = chars.peek() {
                    negated = true;
                    chars.next();
                }
                let mut ranges = Vec::new();
                let mut first = true;
                loop {
                    let Some((_, c)) = chars.next() else {
                        return Err(SearchError::UnclosedClass(pattern[at..].to_owned()));
                    };
                    // A `]` first in the class is a member, as in fnmatch.
                    if c == ']' && !first {
                        break;
                    }
                    first = false;
                    let hi = if chars.peek().is_some_and(|&(_, n)| n == '-') {
                        let mut ahead = chars.clone();
                        ahead.next();
                        match ahead.next() {
                            Some((_, h)) if h != ']' => {
                                chars.next();
                                chars.next();
                                h
                            }
                            _ => c,
                        }
                    } else {
                        c
                    };
                    ranges.push((c, hi));
                }
                tokens.push(Token::Class { ranges, negated });
            }
            '\\' => {
                // An escaped metacharacter is itself.
                let lit = chars.next().map_or('\\', |(_, n)| n);
                let mut buf = [0u8; 4];
                tokens.extend(
                    lit.encode_utf8(&mut buf)
                        .bytes()
                        .map(|b| Token::Byte(fold(b))),
                );
            }
            c => {
                let mut buf = [0u8; 4];
                tokens.extend(
                    c.encode_utf8(&mut buf)
                        .bytes()
                        .map(|b| Token::Byte(fold(b))),
                );
            }
        }
    }
    Ok(tokens)
}

/// The longest run of literal bytes of a glob (already folded when case-insensitive).
fn longest_literal(tokens: &[Token]) -> Vec<u8> {
    let mut best: &[Token] = &[];
    for run in tokens.split(|t| !matches!(t, Token::Byte(_))) {
        if run.len() > best.len() {
            best = run;
        }
    }
    best.iter()
        .filter_map(|t| match t {
            Token::Byte(b) => Some(*b),
            _ => None,
        })
        .collect()
}

/// The character at the start of `bytes` and its length in bytes; a byte that does not start a
/// valid UTF-8 sequence is one character of its own (it matches `?` but no class range).
fn next_char(bytes: &[u8]) -> (Option<char>, usize) {
    let len = match bytes[0] {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf7 => 4,
        _ => return (None, 1),
    };
    match bytes.get(..len).and_then(|s| std::str::from_utf8(s).ok()) {
        Some(s) => (s.chars().next(), len),
        None => (None, 1),
    }
}

fn class_has(ranges: &[(char, char)], c: char, fold: bool) -> bool {
    let within = |c: char| ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi);
    within(c)
        || (fold && c.is_ascii_alphabetic() && {
            let other = if c.is_ascii_lowercase() {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            };
            within(other)
        })
}

/// Matches a whole name against a compiled glob: the classic wildcard walk that, on a
/// mismatch, retries from the last `*` one byte further on (linear for one `*`, O(n·m) at
/// worst, no recursion).
fn glob_match(tokens: &[Token], name: &[u8], fold: bool) -> bool {
    let (mut t, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        let step = match tokens.get(t) {
            Some(Token::Star) => {
                star = Some((t, n));
                t += 1;
                continue;
            }
            Some(&Token::Byte(b)) => {
                let c = if fold {
                    name[n].to_ascii_lowercase()
                } else {
                    name[n]
                };
                (c == b).then_some(1)
            }
            Some(Token::One) => Some(next_char(&name[n..]).1),
            Some(Token::Class { ranges, negated }) => {
                let (c, len) = next_char(&name[n..]);
                let inside = c.is_some_and(|c| class_has(ranges, c, fold));
                (inside != *negated).then_some(len)
            }
            None => None,
        };
        match (step, star) {
            (Some(len), _) => {
                t += 1;
                n += len;
            }
            (None, Some((st, sn))) => {
                // The last `*` takes one more byte.
                t = st + 1;
                n = sn + 1;
                star = Some((st, sn + 1));
            }
            (None, None) => return false,
        }
    }
    tokens[t..].iter().all(|t| *t == Token::Star)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str) -> Matcher {
        Matcher::new(p).expect("pattern")
    }

    #[test]
    fn a_lowercase_substring_matches_any_case() {
        let x = m("readme");
        assert!(!x.is_glob() && !x.is_case_sensitive());
        assert!(x.is_match(b"README.md"));
        assert!(x.is_match(b"old-ReadMe"));
        assert!(x.is_match(b"readme"));
        assert!(!x.is_match(b"read.me"));
        assert!(!x.is_match(b"readm"));
        assert!(!x.is_match(b""));
    }

    #[test]
    fn an_uppercase_letter_makes_the_search_case_sensitive() {
        let x = m("README");
        assert!(x.is_case_sensitive());
        assert!(x.is_match(b"README.md"));
        assert!(!x.is_match(b"readme.md"));
        assert!(!x.is_match(b"ReadMe"));
    }

    #[test]
    fn a_substring_is_found_anywhere_and_overlapping_starts_are_retried() {
        let x = m("aab");
        assert!(x.is_match(b"aaab"));
        assert!(x.is_match(b"xAaAb"));
        assert!(!x.is_match(b"abab"));
    }

    #[test]
    fn a_glob_matches_the_whole_name() {
        let x = m("*.log");
        assert!(x.is_glob());
        assert!(x.is_match(b"app.log"));
        assert!(x.is_match(b"APP.LOG"));
        assert!(x.is_match(b".log"));
        assert!(!x.is_match(b"app.log.gz"));
        assert!(!x.is_match(b"applog"));
        let y = m("a*b*c");
        assert!(y.is_match(b"abc"));
        assert!(y.is_match(b"aXbYbZc"));
        assert!(!y.is_match(b"aXbYcZ"));
        assert!(m("*").is_match(b"anything"));
    }

    #[test]
    fn a_glob_with_uppercase_is_case_sensitive() {
        let x = m("*.LOG");
        assert!(x.is_match(b"a.LOG"));
        assert!(!x.is_match(b"a.log"));
    }

    #[test]
    fn question_marks_and_classes_take_one_character() {
        let x = m("file?.[ch]");
        assert!(x.is_match(b"file1.c"));
        assert!(x.is_match(b"fileX.H"));
        assert!(!x.is_match(b"file12.c"));
        assert!(!x.is_match(b"file1.o"));
        assert!(m("[!a-c]x").is_match(b"dx"));
        assert!(!m("[!a-c]x").is_match(b"bx"));
        assert!(m("[]]").is_match(b"]"));
        assert!(m("[a-]").is_match(b"-"));
        // `?` takes a whole UTF-8 character, not one of its bytes.
        assert!(m("caf?").is_match("café".as_bytes()));
        assert!(m("[é]").is_match("é".as_bytes()));
        assert!(m("\\*").is_match(b"*"));
        assert!(!m("\\*").is_match(b"x"));
    }

    #[test]
    fn an_unclosed_class_and_an_empty_pattern_are_errors() {
        assert_eq!(
            Matcher::new("a[bc").err(),
            Some(SearchError::UnclosedClass("[bc".into()))
        );
        assert_eq!(Matcher::new("").err(), Some(SearchError::Empty));
    }

    #[test]
    fn names_that_are_not_utf8_match_by_bytes() {
        let name = b"caf\xe9-\xffdata.bin";
        assert!(m("data").is_match(name));
        assert!(m("*.bin").is_match(name));
        assert!(m("caf?-?data*").is_match(name));
        assert!(!m("[a-z]").is_match(b"\xff"));
        assert!(m("[!a-z]").is_match(b"\xff"));
        assert!(m("?").is_match(b"\xff"));
        // A pattern can only be UTF-8; a lossy decoding of the name does not make it match.
        assert!(!m("caf\u{fffd}").is_match(name));
    }

    #[test]
    fn a_non_ascii_lowercase_pattern_matches_its_uppercase() {
        assert!(m("é").is_match("CAFÉ".as_bytes()));
        assert!(m("straße").is_match("STRAßE.txt".as_bytes()));
        assert!(!m("É").is_match("café".as_bytes()));
    }

    #[test]
    fn the_glob_walk_backtracks_without_blowing_up() {
        let x = m("*a*a*a*a*a*b");
        let name = vec![b'a'; 200];
        assert!(!x.is_match(&name));
        let mut ok = name.clone();
        ok.push(b'b');
        assert!(x.is_match(&ok));
    }
}
