//! `pagination` of an httpPolling input: one type per kind, each holding exactly its settings
//! with their defaults applied.
//!
//! The file writes every kind in one mapping (`type: cursor, param: after, ...`); a key that
//! does not apply to the kind is an error rather than silently ignored, and each kind's
//! required key is checked here, so a loaded pagination cannot lack what it needs.

use std::num::NonZeroU64;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::document::KeyPath;
use crate::path::FieldPath;
use crate::validate::Findings;

/// Pages in one run unless `maxPages` says otherwise.
const DEFAULT_MAX_PAGES: NonZeroU64 = NonZeroU64::MIN.saturating_add(9_999);

/// How an httpPolling input walks through the pages of one run. Every kind also stops on an
/// empty page and on a page shorter than its `limit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pagination {
    /// Page numbers.
    Page(PagePagination),
    /// Record offsets.
    Offset(OffsetPagination),
    /// Opaque tokens read from each response.
    Cursor(CursorPagination),
    /// The `Link: <...>; rel="next"` response header (RFC 8288).
    Link(LinkPagination),
}

impl Pagination {
    /// The page size and the parameter that asks for it, if set.
    pub fn limit(&self) -> Option<&PageLimit> {
        match self {
            Pagination::Page(p) => p.limit.as_ref(),
            Pagination::Offset(p) => p.limit.as_ref(),
            Pagination::Cursor(p) => p.limit.as_ref(),
            Pagination::Link(p) => p.limit.as_ref(),
        }
    }

    /// At most this many pages in one run.
    pub fn max_pages(&self) -> NonZeroU64 {
        match self {
            Pagination::Page(p) => p.max_pages,
            Pagination::Offset(p) => p.max_pages,
            Pagination::Cursor(p) => p.max_pages,
            Pagination::Link(p) => p.max_pages,
        }
    }

    /// The request parameter carrying the page number, offset or token (none for links).
    pub fn param(&self) -> Option<&str> {
        match self {
            Pagination::Page(p) => Some(&p.param),
            Pagination::Offset(p) => Some(&p.param),
            Pagination::Cursor(p) => Some(&p.param),
            Pagination::Link(_) => None,
        }
    }
}

/// `type: page`: the page number in `param`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PagePagination {
    /// The request parameter carrying the page number (default `page`).
    pub param: String,
    /// The page size, if asked for.
    pub limit: Option<PageLimit>,
    /// Where the response holds the number of pages; the run stops after the last one.
    pub total_pages_field: Option<FieldPath>,
    /// The number of the first page (default 1).
    pub start_page: u64,
    /// At most this many pages in one run (default 10000).
    pub max_pages: NonZeroU64,
}

/// `type: offset`: the offset of the first record of the page in `param`; it advances by the
/// number of records each page holds.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OffsetPagination {
    /// The request parameter carrying the offset (default `offset`).
    pub param: String,
    /// The page size, if asked for.
    pub limit: Option<PageLimit>,
    /// Where the response holds the total number of records; the run stops when the offset
    /// reaches it.
    pub total_field: Option<FieldPath>,
    /// At most this many pages in one run (default 10000).
    pub max_pages: NonZeroU64,
}

/// `type: cursor`: a token read from each response, sent in `param` for the next page.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CursorPagination {
    /// The request parameter carrying the token (default `cursor`).
    pub param: String,
    /// The page size, if asked for.
    pub limit: Option<PageLimit>,
    /// Where the response holds the next token; the run stops when it is null, absent or
    /// empty.
    pub next_cursor_field: FieldPath,
    /// At most this many pages in one run (default 10000).
    pub max_pages: NonZeroU64,
}

/// `type: link`: the `Link: <...>; rel="next"` response header.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LinkPagination {
    /// The page size, if asked for.
    pub limit: Option<PageLimit>,
    /// At most this many pages in one run (default 10000).
    pub max_pages: NonZeroU64,
}

/// The page size a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PageLimit {
    /// The request parameter carrying it (`limitParam`, default `limit`).
    pub param: String,
    /// The page size (`limit`); a shorter page ends the run.
    pub size: NonZeroU64,
}

/// Kind of pagination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) enum PaginationKind {
    /// Page numbers in `param`; stops after `totalPagesField`.
    Page,
    /// Record offsets in `param`; stops when offset >= `totalField`.
    Offset,
    /// An opaque token read from `nextCursorField`.
    Cursor,
    /// The `Link: <...>; rel="next"` response header (RFC 8288).
    Link,
}

// As written; validation turns it into `Pagination`.
/// Pagination of one run. Every kind also stops on an empty page and on a page shorter than
/// `limit`.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "Pagination")]
pub(crate) struct RawPagination {
    /// `page`, `offset`, `cursor` or `link`.
    #[serde(rename = "type")]
    pub(crate) kind: PaginationKind,
    /// Request parameter carrying the page number, offset or cursor token.
    #[serde(default)]
    pub(crate) param: Option<String>,
    /// page: `param` as the Go tool names it.
    #[serde(default)]
    pub(crate) page_param: Option<String>,
    /// offset: `param` as the Go tool names it.
    #[serde(default)]
    pub(crate) offset_param: Option<String>,
    /// cursor: `param` as the Go tool names it.
    #[serde(default)]
    pub(crate) cursor_param: Option<String>,
    /// Request parameter carrying the page size.
    #[serde(default)]
    pub(crate) limit_param: Option<String>,
    /// Page size.
    #[serde(default)]
    pub(crate) limit: Option<u64>,
    /// offset: response path of the total number of records.
    #[serde(default)]
    pub(crate) total_field: Option<String>,
    /// page: response path of the number of pages.
    #[serde(default)]
    pub(crate) total_pages_field: Option<String>,
    /// cursor: response path of the next token; stops when null, absent or empty.
    #[serde(default)]
    pub(crate) next_cursor_field: Option<String>,
    /// page: number of the first page (default 1).
    #[serde(default)]
    pub(crate) start_page: Option<u64>,
    /// Guard against a server that never stops: at most this many pages in one run
    /// (default 10000).
    #[serde(default)]
    pub(crate) max_pages: Option<u64>,
}

impl RawPagination {
    /// The keys fit the kind, `nextCursorField` is there for cursors, names are not empty,
    /// `limitParam` comes with `limit`, `limit` and `maxPages` are above 0, response paths are
    /// dot paths.
    pub(crate) fn validate(&self, path: &KeyPath, findings: &mut Findings) -> Option<Pagination> {
        let mark = findings.mark();
        let settings: [(&str, bool); 11] = [
            ("param", self.param.is_some()),
            ("pageParam", self.page_param.is_some()),
            ("offsetParam", self.offset_param.is_some()),
            ("cursorParam", self.cursor_param.is_some()),
            ("limitParam", self.limit_param.is_some()),
            ("limit", self.limit.is_some()),
            ("totalField", self.total_field.is_some()),
            ("totalPagesField", self.total_pages_field.is_some()),
            ("nextCursorField", self.next_cursor_field.is_some()),
            ("startPage", self.start_page.is_some()),
            ("maxPages", self.max_pages.is_some()),
        ];
        let (kind, required, allowed): (&str, &[&str], &[&str]) = match self.kind {
            PaginationKind::Offset => (
                "offset",
                &[],
                &[
                    "param",
                    "offsetParam",
                    "limitParam",
                    "limit",
                    "totalField",
                    "maxPages",
                ],
            ),
            PaginationKind::Page => (
                "page",
                &[],
                &[
                    "param",
                    "pageParam",
                    "limitParam",
                    "limit",
                    "totalPagesField",
                    "startPage",
                    "maxPages",
                ],
            ),
            PaginationKind::Cursor => (
                "cursor",
                &["nextCursorField"],
                &[
                    "param",
                    "cursorParam",
                    "limitParam",
                    "limit",
                    "nextCursorField",
                    "maxPages",
                ],
            ),
            PaginationKind::Link => ("link", &[], &["limitParam", "limit", "maxPages"]),
        };
        // `param` defaults to the kind's name (`page`, `offset`, `cursor`) and an offset
        // advances by the records a page holds, so only the cursor kind needs to be told where
        // its token is.
        let why = |name: &str| match name {
            "nextCursorField" => "the response path of the next token",
            _ => "",
        };
        for (name, is_set) in settings {
            if required.contains(&name) && !is_set {
                findings.problem(
                    path.key(name),
                    format!("{kind} pagination needs `{name}`, {}", why(name)),
                );
            }
            if is_set && !allowed.contains(&name) {
                findings.problem(
                    path.key(name),
                    format!(
                        "`{name}` does not apply to {kind} pagination, which takes {}",
                        allowed
                            .iter()
                            .map(|a| format!("`{a}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
            }
        }
        // The Go tool names the parameter after the kind (`pageParam`, `offsetParam`,
        // `cursorParam`); either name is read, not both.
        let (go_name, go_param) = match self.kind {
            PaginationKind::Page => ("pageParam", &self.page_param),
            PaginationKind::Offset => ("offsetParam", &self.offset_param),
            PaginationKind::Cursor => ("cursorParam", &self.cursor_param),
            PaginationKind::Link => ("", &None),
        };
        if self.param.is_some() && go_param.is_some() {
            findings.problem(
                path.key(go_name),
                format!("`param` and `{go_name}` name the same parameter; keep one"),
            );
        }
        let param_value = self.param.clone().or_else(|| go_param.clone());
        for (name, value) in [
            ("param", &self.param),
            (go_name, go_param),
            ("limitParam", &self.limit_param),
        ] {
            if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                findings.problem(
                    path.key(name),
                    format!("`{name}` is empty; name the request parameter"),
                );
            }
        }
        if self.limit_param.is_some() && self.limit.is_none() && allowed.contains(&"limit") {
            findings.problem(
                path.key("limit"),
                "limitParam needs `limit`, the page size to ask for",
            );
        }
        let mut positive = |name: &str, value: Option<u64>| match value.map(NonZeroU64::new) {
            Some(None) => {
                findings.problem(path.key(name), format!("`{name}` must be more than 0"));
                None
            }
            other => other.flatten(),
        };
        let limit = positive("limit", self.limit);
        let max_pages = positive("maxPages", self.max_pages).unwrap_or(DEFAULT_MAX_PAGES);
        let mut field = |name: &str, value: &Option<String>| {
            value
                .as_deref()
                .and_then(|text| findings.field_path(path.key(name), text))
        };
        let total_field = field("totalField", &self.total_field);
        let total_pages_field = field("totalPagesField", &self.total_pages_field);
        let next_cursor_field = field("nextCursorField", &self.next_cursor_field);
        if !findings.clean_since(mark) {
            return None;
        }

        let limit = limit.map(|size| PageLimit {
            param: self
                .limit_param
                .clone()
                .unwrap_or_else(|| "limit".to_owned()),
            size,
        });
        let param = |default: &str| param_value.clone().unwrap_or_else(|| default.to_owned());
        Some(match self.kind {
            PaginationKind::Page => Pagination::Page(PagePagination {
                param: param("page"),
                limit,
                total_pages_field,
                start_page: self.start_page.unwrap_or(1),
                max_pages,
            }),
            PaginationKind::Offset => Pagination::Offset(OffsetPagination {
                param: param("offset"),
                limit,
                total_field,
                max_pages,
            }),
            PaginationKind::Cursor => Pagination::Cursor(CursorPagination {
                param: param("cursor"),
                limit,
                next_cursor_field: next_cursor_field?,
                max_pages,
            }),
            PaginationKind::Link => Pagination::Link(LinkPagination { limit, max_pages }),
        })
    }
}
