//! Just enough reading of SQL to check a query against its `parameters` and to warn about
//! paging mistakes: which `$n` placeholders it uses, and whether it has LIMIT and ORDER BY.
//! String literals, quoted identifiers, dollar-quoted bodies and comments are skipped, so that
//! `'$1'` or `-- LIMIT 10` do not count.

use std::collections::BTreeSet;

/// What the checks need to know about a query.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct QueryShape {
    /// The numbers of the `$n` placeholders used.
    pub(crate) placeholders: BTreeSet<usize>,
    /// `LIMIT` or `FETCH FIRST|NEXT`.
    pub(crate) has_limit: bool,
    pub(crate) has_order_by: bool,
}

pub(crate) fn scan(query: &str) -> QueryShape {
    let code = blank_out_literals(query);
    let chars: Vec<char> = code.chars().collect();
    let mut shape = QueryShape::default();
    let mut words: Vec<String> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let follows_word = i > 0 && is_word_char(chars[i - 1]);
        if c == '$' && !follows_word {
            let digits: String = chars[i + 1..]
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .collect();
            if let Ok(n) = digits.parse::<usize>() {
                shape.placeholders.insert(n);
            }
            i += 1 + digits.len();
        } else if is_word_char(c) && !follows_word {
            let word: String = chars[i..]
                .iter()
                .take_while(|c| is_word_char(**c))
                .collect();
            i += word.chars().count();
            words.push(word.to_ascii_uppercase());
        } else {
            i += 1;
        }
    }
    for (i, word) in words.iter().enumerate() {
        let next = words.get(i + 1).map(String::as_str);
        match word.as_str() {
            "LIMIT" => shape.has_limit = true,
            "FETCH" if matches!(next, Some("FIRST" | "NEXT")) => shape.has_limit = true,
            "ORDER" if next == Some("BY") => shape.has_order_by = true,
            _ => {}
        }
    }
    shape
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The query with every literal and comment replaced by spaces.
fn blank_out_literals(query: &str) -> String {
    let chars: Vec<char> = query.chars().collect();
    let mut out = String::with_capacity(query.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let skip_to = if c == '\'' || c == '"' {
            closing_quote(&chars, i, c)
        } else if c == '-' && next == Some('-') {
            Some(
                chars[i..]
                    .iter()
                    .position(|c| *c == '\n')
                    .map_or(chars.len(), |p| i + p),
            )
        } else if c == '/' && next == Some('*') {
            Some(find(&chars, i + 2, &['*', '/']).map_or(chars.len(), |p| p + 2))
        } else if c == '$' && (i == 0 || !is_word_char(chars[i - 1])) {
            dollar_quote_end(&chars, i)
        } else {
            None
        };
        match skip_to {
            Some(end) => {
                out.extend(std::iter::repeat_n(' ', end - i));
                i = end;
            }
            None => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// The index after the quote closing the one at `start`; a doubled quote is an escaped one.
fn closing_quote(chars: &[char], start: usize, quote: char) -> Option<usize> {
    let mut i = start + 1;
    while i < chars.len() {
        if chars[i] == quote {
            if chars.get(i + 1) == Some(&quote) {
                i += 2;
                continue;
            }
            return Some(i + 1);
        }
        i += 1;
    }
    Some(chars.len())
}

/// `$tag$ ... $tag$` (PostgreSQL); `$1` is a placeholder, not a tag, because a tag does not
/// start with a digit.
fn dollar_quote_end(chars: &[char], start: usize) -> Option<usize> {
    let tag_len = chars[start + 1..]
        .iter()
        .take_while(|c| is_word_char(**c))
        .count();
    if chars.get(start + 1).is_some_and(char::is_ascii_digit)
        || chars.get(start + 1 + tag_len) != Some(&'$')
    {
        return None;
    }
    let delimiter: Vec<char> = chars[start..=start + 1 + tag_len].to_vec();
    let body = start + delimiter.len();
    Some(find(chars, body, &delimiter).map_or(chars.len(), |p| p + delimiter.len()))
}

fn find(chars: &[char], from: usize, needle: &[char]) -> Option<usize> {
    if from > chars.len() {
        return None;
    }
    chars[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| from + p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_placeholders_outside_literals_and_comments() {
        let shape = scan(
            "SELECT '$9', \"$8\", $$ $7 $$, $body$ $6 $body$ FROM t -- $5\n\
             /* $4 */ WHERE a > $1 AND b = $2::int AND c$3 = 1",
        );
        assert_eq!(shape.placeholders, BTreeSet::from([1, 2]));
    }

    #[test]
    fn sees_limit_and_order_by_as_words_only() {
        let shape = scan("SELECT limited, ordered FROM t ORDER  BY a LIMIT 10");
        assert!(shape.has_limit && shape.has_order_by);
        let shape = scan("SELECT limit_x FROM t -- ORDER BY a\n");
        assert!(!shape.has_limit && !shape.has_order_by);
        assert!(scan("SELECT a FROM t FETCH FIRST 5 ROWS ONLY").has_limit);
        assert!(!scan("SELECT 'LIMIT 5' FROM t").has_limit);
    }
}
