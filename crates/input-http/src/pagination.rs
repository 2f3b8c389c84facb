//! Walking through the pages of one run: which parameters a page request carries, when the
//! run is over, and how the position of the next page is saved so that an interrupted run
//! resumes there.
//!
//! Every kind stops on an empty page and on a page shorter than `limit`; each kind adds its
//! own rule (offset >= total, the last page number, no next cursor, no next link).

use std::hash::Hasher;

use cannectors_config::{FieldPath, Pagination};
use cannectors_connector::Record;
use serde_json::{Value, json};
use url::Url;

use cannectors_state::json_kind;

/// Where a page request starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Position {
    /// The one request of an input without pagination.
    Single,
    /// A page number.
    Page(u64),
    /// A record offset.
    Offset(u64),
    /// A cursor token; `None` for the first page, which carries none.
    Cursor(Option<String>),
    /// A next link; `None` for the first page, which is the endpoint.
    Link(Option<Url>),
}

impl Position {
    /// The saved form of this position, for `Checkpoint::Progress`.
    pub(crate) fn to_resume(&self) -> Value {
        match self {
            Position::Single | Position::Cursor(None) | Position::Link(None) => {
                json!({"first": true})
            }
            Position::Page(page) => json!({"page": page}),
            Position::Offset(offset) => json!({"offset": offset}),
            Position::Cursor(Some(token)) => json!({"cursor": token}),
            Position::Link(Some(url)) => json!({"link": url.as_str()}),
        }
    }

    /// What identifies a position a server could send twice (a cursor token, a link).
    pub(crate) fn loop_key(&self) -> Option<(&'static str, &str)> {
        match self {
            Position::Cursor(Some(token)) => Some(("next cursor", token)),
            Position::Link(Some(url)) => Some(("next link", url.as_str())),
            _ => None,
        }
    }
}

/// What tells the records of one page from those of another, to notice a server that answers
/// every page with the same records (it ignores the page or offset parameter): a hash of the
/// records' text as the server sent it, with their number and lengths. Computed from the bytes
/// already in hand, with no allocation.
///
/// It is saved with the position of an interrupted run (`previousPage`), so that a run resumed
/// at the page after it still notices a repeat: the hash is XXH3 (64 bits, seed 0), which is
/// specified, so it stays the same across builds and versions (std's `DefaultHasher` does not
/// promise that), and reads many bytes a cycle, so hashing every page costs little.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PageFingerprint(u64);

/// The key of the saved position that holds the fingerprint of the page delivered last.
const PREVIOUS_PAGE: &str = "previousPage";

impl PageFingerprint {
    pub(crate) fn of(records: &[Record]) -> PageFingerprint {
        // Lengths as 8 little-endian bytes, so that the hash is the same on every platform.
        let mut hasher = twox_hash::XxHash3_64::with_seed(0);
        hasher.write(&(records.len() as u64).to_le_bytes());
        for record in records {
            let text = record.json().as_bytes();
            hasher.write(&(text.len() as u64).to_le_bytes());
            hasher.write(text);
        }
        PageFingerprint(hasher.finish())
    }

    /// `resume` (a saved position) with this page recorded as the one delivered last.
    pub(crate) fn saved_in(self, mut resume: Value) -> Value {
        if let Value::Object(map) = &mut resume {
            map.insert(
                PREVIOUS_PAGE.into(),
                Value::String(format!("{:016x}", self.0)),
            );
        }
        resume
    }

    /// The page recorded in a saved position, if it holds a readable one (older files do not).
    pub(crate) fn saved(resume: &Value) -> Option<PageFingerprint> {
        let text = resume.get(PREVIOUS_PAGE)?.as_str()?;
        u64::from_str_radix(text, 16).ok().map(PageFingerprint)
    }
}

/// The saved form of a run whose last page was delivered: nothing left to fetch.
pub(crate) fn complete_resume() -> Value {
    json!({"complete": true})
}

/// What a saved `resume` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Resume {
    /// Start at the first page.
    First,
    /// Continue at this position.
    At(Position),
    /// Every page was delivered; only the completion is missing.
    Complete,
}

/// The pagination of a source: the loaded settings, and what each kind does with them.
#[derive(Debug, Clone)]
pub(crate) struct Paging {
    pagination: Option<Pagination>,
}

impl Paging {
    pub(crate) fn new(pagination: Option<&Pagination>) -> Paging {
        Paging {
            pagination: pagination.cloned(),
        }
    }

    /// Whether pages are walked by offset.
    pub(crate) fn is_offset(&self) -> bool {
        matches!(self.pagination, Some(Pagination::Offset(_)))
    }

    /// Whether the next page is found in a `Link` header.
    pub(crate) fn follows_links(&self) -> bool {
        matches!(self.pagination, Some(Pagination::Link(_)))
    }

    /// At most this many pages in one run (one without pagination).
    pub(crate) fn max_pages(&self) -> u64 {
        self.pagination
            .as_ref()
            .map_or(1, |pagination| pagination.max_pages().get())
    }

    /// What to check when a server answers a page with the records of the page before it.
    pub(crate) fn repeated_page_hint(&self) -> String {
        match self.pagination.as_ref().and_then(Pagination::param) {
            None => "its next link leads back to the same records: check the API's pagination"
                .to_owned(),
            Some(param) => format!(
                "the server seems to ignore the `{param}` query parameter: check \
                 input.pagination.param (and type) against the API's documentation"
            ),
        }
    }

    /// Parameter names this pagination sets on every page.
    pub(crate) fn reserved_names(&self) -> Vec<&str> {
        let Some(pagination) = &self.pagination else {
            return Vec::new();
        };
        pagination
            .param()
            .into_iter()
            .chain(pagination.limit().map(|limit| limit.param.as_str()))
            .collect()
    }

    /// The position of the first page; offset pagination starts from `start_offset` (the
    /// committed offset, when the offset cursor is on).
    pub(crate) fn first(&self, start_offset: Option<u64>) -> Position {
        match &self.pagination {
            None => Position::Single,
            Some(Pagination::Page(page)) => Position::Page(page.start_page),
            Some(Pagination::Offset(_)) => Position::Offset(start_offset.unwrap_or(0)),
            Some(Pagination::Cursor(_)) => Position::Cursor(None),
            Some(Pagination::Link(_)) => Position::Link(None),
        }
    }

    /// Reads a saved position; `None` when it does not fit this pagination.
    pub(crate) fn read_resume(&self, resume: &Value) -> Option<Resume> {
        if resume.get("complete") == Some(&Value::Bool(true)) {
            return Some(Resume::Complete);
        }
        if resume.get("first") == Some(&Value::Bool(true)) {
            return Some(Resume::First);
        }
        let position = match self.pagination.as_ref()? {
            Pagination::Page(_) => Position::Page(resume.get("page")?.as_u64()?),
            Pagination::Offset(_) => Position::Offset(resume.get("offset")?.as_u64()?),
            Pagination::Cursor(_) => {
                Position::Cursor(Some(resume.get("cursor")?.as_str()?.to_owned()))
            }
            Pagination::Link(_) => {
                let url = Url::parse(resume.get("link")?.as_str()?).ok()?;
                if !matches!(url.scheme(), "http" | "https") {
                    return None;
                }
                Position::Link(Some(url))
            }
        };
        Some(Resume::At(position))
    }

    /// The pagination parameters of a page, and the URL it starts from when not the endpoint.
    pub(crate) fn params<'p>(
        &self,
        position: &'p Position,
    ) -> (Option<&'p Url>, Vec<(String, String)>) {
        let mut params = Vec::with_capacity(2);
        let Some(pagination) = &self.pagination else {
            return (None, params);
        };
        let mut url = None;
        match (position, pagination.param()) {
            (Position::Page(page), Some(param)) => {
                params.push((param.to_owned(), page.to_string()))
            }
            (Position::Offset(offset), Some(param)) => {
                params.push((param.to_owned(), offset.to_string()));
            }
            (Position::Cursor(Some(token)), Some(param)) => {
                params.push((param.to_owned(), token.clone()));
            }
            (Position::Link(link), _) => url = link.as_ref(),
            _ => {}
        }
        if let Some(limit) = pagination.limit() {
            params.push((limit.param.clone(), limit.size.to_string()));
        }
        (url, params)
    }

    /// The position after a page of `count` records, or `None` when the run is over.
    /// `document` is the response with its records taken out; `next_link` is the resolved
    /// `rel="next"` link, if the response had one.
    pub(crate) fn next(
        &self,
        position: &Position,
        count: usize,
        document: &Value,
        next_link: Option<Url>,
    ) -> Result<Option<Position>, FieldProblem> {
        let Some(pagination) = &self.pagination else {
            return Ok(None);
        };
        let short = pagination
            .limit()
            .is_some_and(|limit| (count as u64) < limit.size.get());
        if count == 0 || short {
            return Ok(None);
        }
        let next = match (position, pagination) {
            (Position::Page(page), Pagination::Page(settings)) => {
                let last = match &settings.total_pages_field {
                    Some(path) => read_count(document, path, "totalPagesField")?
                        .map(|total| settings.start_page.saturating_add(total).saturating_sub(1)),
                    None => None,
                };
                match last {
                    Some(last) if *page >= last => None,
                    _ => Some(Position::Page(page.saturating_add(1))),
                }
            }
            (Position::Offset(offset), Pagination::Offset(settings)) => {
                let next = offset.saturating_add(count as u64);
                let total = match &settings.total_field {
                    Some(path) => read_count(document, path, "totalField")?,
                    None => None,
                };
                match total {
                    Some(total) if next >= total => None,
                    _ => Some(Position::Offset(next)),
                }
            }
            (Position::Cursor(_), Pagination::Cursor(settings)) => {
                let path = &settings.next_cursor_field;
                match path.get(document) {
                    None | Some(Value::Null) => None,
                    Some(Value::String(token)) if token.is_empty() => None,
                    Some(Value::String(token)) => Some(Position::Cursor(Some(token.clone()))),
                    Some(Value::Number(n)) => Some(Position::Cursor(Some(n.to_string()))),
                    // APIs answer `"next": false` on their last page, and the Go tool this
                    // project descends from ends pagination on anything that is not a token:
                    // its pipelines rely on it. A `true`, an object or an array is more likely
                    // a path that points at the wrong field, so it is said once.
                    Some(Value::Bool(false)) => None,
                    Some(other) => {
                        tracing::warn!(
                            field = %path,
                            found = json_kind(other),
                            "input.pagination.nextCursorField holds no cursor token (a string or a \
                             number); pagination ends here, as it does at null; check the path if \
                             more pages were expected"
                        );
                        None
                    }
                }
            }
            (Position::Link(_), Pagination::Link(_)) => {
                next_link.map(|url| Position::Link(Some(url)))
            }
            // A position comes from this pagination (`first`, `read_resume`, `next`), so it is
            // always of its kind; `Single` is the one request of an input without pagination.
            _ => None,
        };
        Ok(next)
    }

    /// The offset reached after a page of `count` records, for offset pagination.
    pub(crate) fn offset_reached(&self, position: &Position, count: usize) -> Option<u64> {
        match position {
            Position::Offset(offset) => Some(offset.saturating_add(count as u64)),
            _ => None,
        }
    }
}

/// A pagination field of a response that holds something unusable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FieldProblem {
    pub(crate) key: &'static str,
    pub(crate) path: String,
    pub(crate) found: String,
    pub(crate) expected: &'static str,
}

/// A count (total records, total pages) read from a response; absent or null means unknown.
fn read_count(
    document: &Value,
    path: &FieldPath,
    key: &'static str,
) -> Result<Option<u64>, FieldProblem> {
    let problem = |found: String| FieldProblem {
        key,
        path: path.to_string(),
        found,
        expected: "it must be a non-negative integer",
    };
    match path.get(document) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_u64().map(Some).ok_or_else(|| problem(n.to_string())),
        // Some APIs send counts as strings.
        Some(Value::String(text)) => text
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| problem(format!("\"{text}\""))),
        Some(other) => Err(problem(json_kind(other).to_owned())),
    }
}

/// The target of the `rel="next"` link among `Link` header values (RFC 8288), resolved
/// against `base`.
pub(crate) fn next_link<'h>(
    values: impl Iterator<Item = &'h str>,
    base: &Url,
) -> Option<Result<Url, (String, String)>> {
    for value in values {
        for (target, params) in parse_link_values(value) {
            let is_next = params.iter().any(|(name, value)| {
                name.eq_ignore_ascii_case("rel")
                    && value
                        .split_ascii_whitespace()
                        .any(|rel| rel.eq_ignore_ascii_case("next"))
            });
            if is_next {
                let resolved = base
                    .join(target)
                    .map_err(|e| (target.to_owned(), e.to_string()));
                return Some(resolved.and_then(|url| {
                    if matches!(url.scheme(), "http" | "https") {
                        Ok(url)
                    } else {
                        Err((
                            target.to_owned(),
                            format!("the scheme is `{}`", url.scheme()),
                        ))
                    }
                }));
            }
        }
    }
    None
}

/// Splits one `Link` header value into its links: `<target>; name=value; name="quoted"`,
/// separated by commas (a comma inside `<...>` or quotes belongs to the link).
fn parse_link_values(header: &str) -> Vec<(&str, Vec<(String, String)>)> {
    let mut links = Vec::new();
    let mut rest = header;
    loop {
        rest = rest.trim_start_matches(|c: char| c == ',' || c.is_whitespace());
        let Some(after_open) = rest.strip_prefix('<') else {
            break;
        };
        let Some(close) = after_open.find('>') else {
            break;
        };
        let target = after_open[..close].trim();
        rest = &after_open[close + 1..];
        let mut params = Vec::new();
        loop {
            rest = rest.trim_start();
            let Some(after_semicolon) = rest.strip_prefix(';') else {
                break;
            };
            rest = after_semicolon.trim_start();
            let name_end = rest.find(['=', ';', ',']).unwrap_or(rest.len());
            let name = rest[..name_end].trim().to_owned();
            rest = &rest[name_end..];
            let mut value = String::new();
            if let Some(after_equals) = rest.strip_prefix('=') {
                let after_equals = after_equals.trim_start();
                if let Some(quoted) = after_equals.strip_prefix('"') {
                    let mut chars = quoted.char_indices();
                    let mut end = quoted.len();
                    while let Some((i, c)) = chars.next() {
                        match c {
                            '\\' => {
                                if let Some((_, escaped)) = chars.next() {
                                    value.push(escaped);
                                }
                            }
                            '"' => {
                                end = i + 1;
                                break;
                            }
                            c => value.push(c),
                        }
                    }
                    rest = &quoted[end.min(quoted.len())..];
                } else {
                    let value_end = after_equals.find([';', ',']).unwrap_or(after_equals.len());
                    value = after_equals[..value_end].trim().to_owned();
                    rest = &after_equals[value_end..];
                }
            }
            params.push((name, value));
        }
        links.push((target, params));
    }
    links
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("https://api.test/v1/items?page=1").unwrap()
    }

    #[test]
    fn finds_the_next_link_among_several() {
        let header = r#"<https://api.test/v1/items?page=1>; rel="prev first", <https://api.test/v1/items?page=3>; rel="next""#;
        let next = next_link([header].into_iter(), &base()).unwrap().unwrap();
        assert_eq!(next.as_str(), "https://api.test/v1/items?page=3");
    }

    #[test]
    fn resolves_a_relative_next_link_against_the_request_url() {
        let next = next_link(["</v1/items?after=a,b>; rel=next"].into_iter(), &base())
            .unwrap()
            .unwrap();
        assert_eq!(next.as_str(), "https://api.test/v1/items?after=a,b");
        let sibling = next_link(
            ["<?page=2>; title=\"x;y\"; rel=\"next\""].into_iter(),
            &base(),
        );
        assert_eq!(
            sibling.unwrap().unwrap().as_str(),
            "https://api.test/v1/items?page=2"
        );
    }

    #[test]
    fn no_next_relation_means_no_link() {
        assert!(next_link(["<https://api.test/a>; rel=\"last\""].into_iter(), &base()).is_none());
        assert!(next_link(["garbage"].into_iter(), &base()).is_none());
    }

    #[test]
    fn a_next_link_with_another_scheme_is_refused() {
        let error = next_link(["<ftp://api.test/a>; rel=next"].into_iter(), &base()).unwrap();
        assert_eq!(error.unwrap_err().1, "the scheme is `ftp`");
    }

    #[test]
    fn saved_positions_round_trip_per_kind() {
        let paging = |kind: &str| {
            let yaml = format!(
                "name: p\ninput:\n  type: httpPolling\n  endpoint: https://api.test/v1\n  \
                 pagination: {{type: {kind}{}}}\noutput: {{type: stdout}}\n",
                if kind == "cursor" {
                    ", nextCursorField: next"
                } else {
                    ""
                }
            );
            let loaded = cannectors_config::parse_str(&yaml, "p.yaml", &|_| None).unwrap();
            let cannectors_config::InputConfig::HttpPolling(input) = loaded.pipeline.input else {
                panic!("an httpPolling input");
            };
            Paging::new(input.pagination.as_ref())
        };
        let link = Position::Link(Some(base()));
        for (kind, position) in [
            ("page", Position::Page(4)),
            ("offset", Position::Offset(500)),
            ("cursor", Position::Cursor(Some("abc".into()))),
            ("link", link),
        ] {
            let paging = paging(kind);
            assert_eq!(
                paging.read_resume(&position.to_resume()),
                Some(Resume::At(position))
            );
            assert_eq!(
                paging.read_resume(&complete_resume()),
                Some(Resume::Complete)
            );
        }
        assert_eq!(paging("cursor").read_resume(&json!({"page": 3})), None);
    }

    #[test]
    fn the_previous_page_travels_with_the_saved_position_and_reads_back() {
        let page = PageFingerprint::of(&[Record::from(json!({"id": 1}))]);
        let saved = page.saved_in(Position::Page(2).to_resume());
        assert_eq!(saved["page"], 2);
        assert_eq!(PageFingerprint::saved(&saved), Some(page));
        assert_eq!(PageFingerprint::saved(&json!({"page": 2})), None);
        assert_eq!(
            PageFingerprint::saved(&json!({"page": 2, "previousPage": "zz"})),
            None
        );
    }

    #[test]
    fn the_fingerprint_of_a_page_is_the_same_in_every_build() {
        // Saved in state files: it must not change with the compiler or the platform.
        let page = PageFingerprint::of(&[
            Record::from(json!({"id": 1})),
            Record::from(json!({"id": 2})),
        ]);
        assert_eq!(
            page.saved_in(json!({})),
            json!({"previousPage": "f32c8cfd7ef6daca"})
        );
    }
}
