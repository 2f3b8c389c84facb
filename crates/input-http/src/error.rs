//! What can stop an httpPolling run, told to the person at the terminal.

use cannectors_connector::PrefetchError;
use cannectors_connector::http::{HttpError, HttpMethod};

/// Why the httpPolling source could not be set up or could not read a page.
///
/// The settings were checked when the pipeline was loaded; these are what only a run can find.
/// Every variant that comes from a response names the request (method and URL, without
/// secrets).
#[derive(Debug, Clone, thiserror::Error)]
pub enum HttpSourceError {
    /// The endpoint template, filled with the committed cursors, is not an http or https URL.
    #[error(
        "input.endpoint `{endpoint}` filled with the committed cursors is `{rendered}`, which is \
         not an absolute http:// or https:// URL; place the {{{{state.*}}}} templates where a \
         value fits (a path segment or a query value)"
    )]
    RenderedEndpoint {
        /// The endpoint as written.
        endpoint: String,
        /// What filling it gave.
        rendered: String,
    },
    /// The request failed (after its retries) or was refused.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The body of a response is not JSON.
    #[error(
        "{method} {url} answered with a body that is not JSON ({problem}{content_type}); check \
         that the endpoint returns JSON"
    )]
    NotJson {
        /// The request method.
        method: HttpMethod,
        /// The URL, without secrets.
        url: String,
        /// What the parser found, with line and column.
        problem: String,
        /// `; Content-Type: ...` when the server sent one.
        content_type: String,
    },
    /// `dataField` names a path that the response does not have.
    #[error(
        "{method} {url}: the response has no `{path}` (input.dataField); check the path \
         against a response of the API"
    )]
    MissingDataField {
        /// The request method.
        method: HttpMethod,
        /// The URL, without secrets.
        url: String,
        /// The path as written.
        path: String,
    },
    /// `dataField` names something that is not an array of records.
    #[error(
        "{method} {url}: `{path}` (input.dataField) holds {found}, not an array of records; \
         point dataField at the array"
    )]
    DataFieldNotArray {
        /// The request method.
        method: HttpMethod,
        /// The URL, without secrets.
        url: String,
        /// The path as written.
        path: String,
        /// What it holds: `an object`, `a string`, ...
        found: &'static str,
    },
    /// The response is neither an object nor an array.
    #[error("{method} {url}: the response is {found}, not a JSON object or array of records")]
    NotRecords {
        /// The request method.
        method: HttpMethod,
        /// The URL, without secrets.
        url: String,
        /// What it is: `a string`, `null`, ...
        found: &'static str,
    },
    /// A pagination field holds something the source cannot use.
    #[error("{method} {url}: `{path}` (input.pagination.{key}) holds {found}, but {expected}")]
    BadPaginationField {
        /// The request method.
        method: HttpMethod,
        /// The URL, without secrets.
        url: String,
        /// The pagination key, such as `totalField`.
        key: &'static str,
        /// The path as written.
        path: String,
        /// What it holds.
        found: String,
        /// What it must be.
        expected: &'static str,
    },
    /// The server sent a `Link: rel="next"` that is not a usable URL.
    #[error("{method} {url}: the next link `{link}` is not an http or https URL ({problem})")]
    BadNextLink {
        /// The request method.
        method: HttpMethod,
        /// The URL, without secrets.
        url: String,
        /// The link as sent, without secrets.
        link: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The server sent a `Link: rel="next"` to another origin while the input has
    /// credentials, which go only to the endpoint's origin.
    #[error(
        "{method} {url}: the next link `{link}` leads away from {origin}, the origin of \
         input.endpoint; the input's credentials are sent only there and a page requested \
         without them would be refused, so the run stops. If the API moved, set \
         input.endpoint to its new address"
    )]
    ForeignNextLink {
        /// The request method.
        method: HttpMethod,
        /// The URL, without secrets.
        url: String,
        /// The link, without secrets.
        link: String,
        /// The endpoint's origin (scheme, host and port).
        origin: String,
    },
    /// The server keeps announcing pages beyond `maxPages`.
    #[error(
        "{url} still announces more pages after {max_pages} pages in this run; the run stops \
         so that a server that never ends pagination cannot keep it going forever. Raise \
         input.pagination.maxPages if the source really has more pages"
    )]
    TooManyPages {
        /// The URL of the last page read, without secrets.
        url: String,
        /// The limit in force.
        max_pages: u64,
    },
    /// The server sent a next cursor or link that this run already followed.
    #[error(
        "{url} answered with the {what} `{token}` a second time in this run; the server does \
         not move forward, so the run stops instead of reading the same pages again"
    )]
    PaginationLoop {
        /// The URL of the page that repeated it, without secrets.
        url: String,
        /// `next cursor` or `next link`.
        what: &'static str,
        /// The repeated cursor or link, without secrets.
        token: String,
    },
    /// A page holds exactly the records of the page before it.
    #[error(
        "{url} answered page {page} of this run with exactly the records of the page before it; \
         {hint}. The run stops instead of delivering the same records again; nothing of this \
         page was delivered"
    )]
    RepeatedPage {
        /// The URL of the repeated page, without secrets.
        url: String,
        /// The number of the page in this run, from 1.
        page: u64,
        /// What to check.
        hint: String,
    },
    /// The run cannot go on: it failed earlier, or a page request was cancelled half-way.
    #[error(transparent)]
    Prefetch(#[from] PrefetchError),
}
