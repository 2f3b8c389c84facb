//! The `httpPolling` source of cannectors: requests an HTTP API page by page and yields each
//! page's records as one batch.
//!
//! [`HttpPollingSource`] is built from the `input` block of a pipeline
//! ([`HttpPollingInput`]) and the loaded state (read-only). It renders the committed cursors
//! into the requests (as query parameters and through `{{state.*}}` templates), walks the
//! pages (page numbers, offsets, cursor tokens or `Link: rel="next"` headers), finds the
//! records in each response (`dataField`), and reports with every batch where the next page
//! starts, so that an interrupted run resumes there. While the executor writes one page, the
//! next one is already being fetched and parsed.
//!
//! ```
//! use cannectors_config::{InputConfig, parse_str};
//! use cannectors_input_http::HttpPollingSource;
//! use cannectors_state::{CursorFields, State};
//!
//! let yaml = r#"
//! name: events-sync
//! input:
//!   type: httpPolling
//!   endpoint: https://source.example.com/api/events
//!   dataField: events
//!   pagination: {type: cursor, param: after, nextCursorField: meta.next}
//!   statePersistence:
//!     timestamp: {field: updated_at, queryParam: updated_after}
//! output: {type: stdout}
//! "#;
//! let pipeline = parse_str(yaml, "events.yaml", &|_| None).unwrap().pipeline;
//! let InputConfig::HttpPolling(input) = &pipeline.input else { unreachable!() };
//! let state = State::from_json_str(r#"{"timestamp": "2026-01-01T00:00:00Z"}"#).unwrap();
//!
//! // No request leaves until the executor asks for the first batch.
//! let source = HttpPollingSource::new(input, Some(&state)).unwrap();
//! assert_eq!(
//!     source.first_request_url(),
//!     "https://source.example.com/api/events?updated_after=2026-01-01T00%3A00%3A00Z"
//! );
//! ```

mod error;
mod pagination;
mod records;
mod request;

use std::collections::HashSet;
use std::sync::Arc;

use cannectors_config::{
    FieldPath, HttpPollingInput, OnMissingCursor, StatePersistence, TimestampFormat,
};
use cannectors_connector::http::HttpClient;
use cannectors_connector::{
    Batch, BoxError, BoxFuture, Checkpoint, Prefetch, Record, RunWindow, Source,
};
use cannectors_state::{CursorFields, State};
use reqwest::header::{CONTENT_TYPE, LINK};
use tokio::sync::watch;

pub use error::HttpSourceError;

use pagination::{PageFingerprint, Paging, Position, Resume, complete_resume, next_link};
use records::{Missing, Parsed, parse_page};
use request::{RenderedCursors, RequestPlan};

/// Statuses with which a server refuses a saved position it no longer knows (an expired
/// cursor token, a page that went away).
const STALE_POSITION_STATUSES: [u16; 3] = [400, 404, 410];

/// The `httpPolling` source: one [`Batch`] per page.
pub struct HttpPollingSource {
    shared: Arc<Shared>,
    upcoming: Prefetch<Position, Page, HttpSourceError>,
    /// Where the run starts when a saved position cannot be reused.
    first: Position,
    /// Whether the next answer is the first one after resuming from a saved position.
    resuming: bool,
    pages: u64,
    /// Cursor tokens and links this run followed, to notice a server that goes in circles.
    followed: HashSet<String>,
    /// The records of the last page read, to notice a server that sends them again.
    last_page: Option<PageFingerprint>,
    /// Whether batches report the offset reached (offset pagination with the offset cursor).
    report_offset: bool,
    final_offset: Option<u64>,
}

/// What the page requests of a run share; held by the task that fetches ahead.
#[derive(Clone)]
struct Shared {
    client: HttpClient,
    plan: RequestPlan,
    paging: Paging,
    data_field: Option<FieldPath>,
    /// Whether page requests carry credentials: a next link to another origin is then
    /// refused rather than followed without them.
    credentialed: bool,
    /// The cursor fields, so that a page's greatest position is found in the background task
    /// that parsed it rather than on the executor's path.
    fields: CursorFields,
    /// Whether the executor looks at each record's position (`lookback`, `delay`, a window,
    /// `onMissingCursor` other than `fail`): they are then found with the greatest, from the
    /// values the page scan picked up, instead of by reading every record again.
    per_record: bool,
}

/// One page, parsed.
struct Page {
    records: Vec<Record>,
    /// The greatest cursor position of the records; `None` when there is none or a record's
    /// cursor field is unreadable (the executor then finds it, and reports the record).
    greatest: Option<cannectors_state::Position>,
    /// The cursor key of each record, when the executor needs them and they were found.
    keys: Option<Vec<Option<cannectors_state::CursorKey>>>,
    next: Option<Position>,
    offset_reached: Option<u64>,
    /// The page's URL without secrets, for messages.
    url: String,
    fingerprint: PageFingerprint,
}

impl HttpPollingSource {
    /// Renders the committed cursors of `state` into the requests and picks where the run
    /// starts: the saved position of an interrupted run, else the first page. Sends nothing.
    ///
    /// The settings were checked when the pipeline was loaded; what fails here is known only
    /// now: an endpoint template that the committed cursors turn into something other than a
    /// URL, or an HTTP client that cannot be set up.
    pub fn new(
        config: &HttpPollingInput,
        state: Option<&State>,
    ) -> Result<HttpPollingSource, HttpSourceError> {
        HttpPollingSource::within(config, state, RunWindow::until_now())
    }

    /// [`HttpPollingSource::new`] for a run whose upper bound is `window.end` (what
    /// `{{window.end}}` and `timestamp.untilParam` send).
    pub fn within(
        config: &HttpPollingInput,
        state: Option<&State>,
        window: RunWindow,
    ) -> Result<HttpPollingSource, HttpSourceError> {
        let persistence = config.state_persistence.as_ref();
        let format = persistence
            .and_then(|p| p.timestamp())
            .map_or(&TimestampFormat::Rfc3339, |cursor| &cursor.format);
        let cursors = RenderedCursors::new(state, format, window);
        let paging = Paging::new(config.pagination.as_ref());
        let plan = RequestPlan::new(config, &cursors, &paging.reserved_names())?;
        let client = HttpClient::builder()
            .timeout(config.timeout())
            .authentication(config.authentication.as_ref())
            .retry(&config.retry)
            .build()?;

        let credentialed = client.carries_credentials(&plan.request(None, &[])?);

        let offset_cursor = persistence.is_some_and(|p| p.offset().is_some());
        let offset_paging = paging.is_offset();
        let first = paging.first(if offset_cursor { cursors.offset } else { None });
        let saved = state.and_then(|s| s.run.as_ref()).map(|run| run.resume());
        let (upcoming, resuming) = match saved.filter(|resume| !resume.is_null()) {
            None => (Prefetch::at(first.clone()), false),
            Some(resume) => match paging.read_resume(resume) {
                Some(Resume::At(Position::Link(Some(link))))
                    if credentialed && link.origin() != plan.endpoint.origin() =>
                {
                    tracing::warn!(
                        link = %client.redact_url(&link),
                        "the saved next link of the interrupted run leads away from the \
                         endpoint's origin, where the credentials belong; starting again from \
                         the first page (records may be delivered twice)"
                    );
                    (Prefetch::at(first.clone()), false)
                }
                Some(Resume::At(position)) => {
                    tracing::info!("resuming the interrupted run at its saved position");
                    (Prefetch::at(position), true)
                }
                Some(Resume::Complete) => {
                    tracing::info!("the interrupted run had delivered every page; completing it");
                    (Prefetch::done(), false)
                }
                Some(Resume::First) => (Prefetch::at(first.clone()), false),
                None => {
                    tracing::warn!(
                        "the saved position of the interrupted run does not fit this pagination; \
                         starting again from the first page (records may be delivered twice)"
                    );
                    (Prefetch::at(first.clone()), false)
                }
            },
        };
        // A resumed run compares its first page with the last one the interrupted run delivered.
        let last_page = if resuming {
            saved.and_then(PageFingerprint::saved)
        } else {
            None
        };
        let mut followed = HashSet::new();
        if let Some(position) = upcoming.position()
            && let Some((_, key)) = position.loop_key()
        {
            followed.insert(key.to_owned());
        }
        Ok(HttpPollingSource {
            shared: Arc::new(Shared {
                client,
                plan,
                paging,
                data_field: config.data_field.clone(),
                credentialed,
                fields: persistence
                    .map(StatePersistence::cursor_fields)
                    .unwrap_or_default(),
                per_record: config.window.is_some()
                    || persistence.is_some_and(|persistence| {
                        persistence.lookback.is_some()
                            || persistence.delay.is_some()
                            || persistence.on_missing_cursor != OnMissingCursor::Fail
                    }),
            }),
            upcoming,
            first,
            resuming,
            pages: 0,
            followed,
            last_page,
            report_offset: offset_cursor && offset_paging,
            final_offset: None,
        })
    }

    /// Gives up a page request waiting to be retried (a `Retry-After`, a backoff) as soon as
    /// `stop` turns `true`, so that a shutdown is not held up by the wait. The page is then not
    /// delivered, and the error the run gets has [`cannectors_connector::StoppedByShutdown`]
    /// among its causes.
    pub fn stop_on(mut self, stop: watch::Receiver<bool>) -> HttpPollingSource {
        // Nothing shares `shared` before the first page is requested; if something did, it
        // would keep a copy without the stop.
        let shared = Arc::make_mut(&mut self.shared);
        shared.client = shared.client.clone().stop_on(stop);
        self
    }

    /// The URL of the first page, without secrets: what a dry run shows.
    pub fn first_request_url(&self) -> String {
        let (link, params) = self.shared.paging.params(&self.first);
        match self.shared.plan.request(link, &params) {
            Ok(request) => self.shared.client.redact_url(request.url()),
            Err(_) => self.shared.client.redact_url(&self.shared.plan.endpoint),
        }
    }

    /// The next page as a batch, `None` once the run is complete.
    async fn next_page(&mut self) -> Result<Option<Batch>, HttpSourceError> {
        loop {
            let shared = &self.shared;
            let fetched = self
                .upcoming
                .next(|position| fetch(Arc::clone(shared), position))
                .await;
            let page = match fetched {
                Ok(Some(page)) => page,
                Ok(None) => return Ok(None),
                Err(HttpSourceError::Http(error))
                    if self.resuming
                        && error
                            .status()
                            .is_some_and(|s| STALE_POSITION_STATUSES.contains(&s)) =>
                {
                    tracing::warn!(
                        error = %error,
                        "the saved position of the interrupted run was refused; starting again \
                         from the first page (records may be delivered twice)"
                    );
                    self.resuming = false;
                    self.followed.clear();
                    self.last_page = None;
                    self.upcoming.fetch_at(self.first.clone());
                    continue;
                }
                Err(error) => return Err(error),
            };
            self.resuming = false;
            if self.last_page == Some(page.fingerprint) {
                // Duplicates are never delivered quietly: what the server sent twice stops here.
                return Err(HttpSourceError::RepeatedPage {
                    url: page.url,
                    page: self.pages + 1,
                    hint: self.shared.paging.repeated_page_hint(),
                });
            }
            return Ok(self.accept(page));
        }
    }

    /// Schedules what comes after `page` (fetching ahead) and turns it into a batch.
    fn accept(&mut self, page: Page) -> Option<Batch> {
        self.pages += 1;
        self.last_page = Some(page.fingerprint);
        if page.offset_reached.is_some() {
            self.final_offset = page.offset_reached;
        }
        let resume = match &page.next {
            None => {
                self.upcoming.finish();
                complete_resume()
            }
            Some(next) => {
                let resume = page.fingerprint.saved_in(next.to_resume());
                self.schedule(next.clone(), &page.url);
                resume
            }
        };
        tracing::debug!(url = %page.url, records = page.records.len(), page = self.pages, "page read");
        if page.records.is_empty() {
            // An empty page ends the run and there is nothing to deliver.
            return None;
        }
        let offset = if self.report_offset {
            page.offset_reached
        } else {
            None
        };
        Some(Batch {
            records: page.records,
            checkpoint: Checkpoint::Progress { resume, offset },
            greatest: page.greatest,
            keys: page.keys,
        })
    }

    /// Starts fetching `next` in the background, unless the run must stop before it.
    fn schedule(&mut self, next: Position, url: &str) {
        if let Some((what, key)) = next.loop_key()
            && !self.followed.insert(key.to_owned())
        {
            let token = match &next {
                Position::Link(Some(link)) => self.shared.client.redact_url(link),
                _ => key.to_owned(),
            };
            self.upcoming.fail_next(HttpSourceError::PaginationLoop {
                url: url.to_owned(),
                what,
                token,
            });
        } else if self.pages >= self.shared.paging.max_pages() {
            self.upcoming.fail_next(HttpSourceError::TooManyPages {
                url: url.to_owned(),
                max_pages: self.shared.paging.max_pages(),
            });
        } else {
            self.upcoming
                .fetch_ahead(fetch(Arc::clone(&self.shared), next));
        }
    }
}

impl Source for HttpPollingSource {
    fn next_batch(&mut self) -> BoxFuture<'_, Result<Option<Batch>, BoxError>> {
        Box::pin(async move {
            let result = self.next_page().await;
            // A failed run stays failed: asking again never turns it into a complete one.
            self.upcoming.remember(result).map_err(BoxError::from)
        })
    }

    fn final_offset(&self) -> Option<u64> {
        if self.report_offset {
            self.final_offset
        } else {
            None
        }
    }
}

/// Requests and parses the page at `position`.
async fn fetch(shared: Arc<Shared>, position: Position) -> Result<Page, HttpSourceError> {
    let (link, params) = shared.paging.params(&position);
    let request = shared.plan.request(link, &params)?;
    let method = request.method();
    let url = shared.client.redact_url(request.url());
    let response = shared.client.send(request).await?;

    let next_link = match shared.paging.follows_links() {
        true => {
            let values = response
                .headers()
                .get_all(LINK)
                .into_iter()
                .filter_map(|v| v.to_str().ok());
            match next_link(values, response.url()) {
                None => None,
                Some(Ok(link))
                    if shared.credentialed && link.origin() != shared.plan.endpoint.origin() =>
                {
                    return Err(HttpSourceError::ForeignNextLink {
                        method,
                        url,
                        link: shared.client.redact_url(&link),
                        origin: shared.plan.endpoint.origin().ascii_serialization(),
                    });
                }
                Some(Ok(link)) => Some(shared.client.without_credentials(&link)),
                Some(Err((link, problem))) => {
                    return Err(HttpSourceError::BadNextLink {
                        method,
                        url,
                        link: shared.client.redact_text(&link),
                        problem,
                    });
                }
            }
        }
        false => None,
    };
    let content_type = response.header(CONTENT_TYPE.as_str()).map(str::to_owned);
    let body = response.into_body();
    let cursors = [
        shared.fields.timestamp().map(FieldPath::segments),
        shared.fields.id().map(FieldPath::segments),
    ];
    let Parsed {
        document,
        records,
        found,
    } = parse_page(&body, shared.data_field.as_ref(), cursors).map_err(|problem| {
        HttpSourceError::NotJson {
            method,
            url: url.clone(),
            problem,
            content_type: content_type
                .map(|t| format!("; Content-Type: {t}"))
                .unwrap_or_default(),
        }
    })?;
    let records = records.map_err(|missing| {
        let path = shared
            .data_field
            .as_ref()
            .map(|p| p.to_string())
            .unwrap_or_default();
        match missing {
            Missing::NoSuchPath => HttpSourceError::MissingDataField {
                method,
                url: url.clone(),
                path,
            },
            Missing::NotAnArray(found) => HttpSourceError::DataFieldNotArray {
                method,
                url: url.clone(),
                path,
                found,
            },
            Missing::NotRecords(found) => HttpSourceError::NotRecords {
                method,
                url: url.clone(),
                found,
            },
        }
    })?;
    let next = shared
        .paging
        .next(&position, records.len(), &document, next_link)
        .map_err(|problem| HttpSourceError::BadPaginationField {
            method,
            url: url.clone(),
            key: problem.key,
            path: problem.path,
            found: problem.found,
            expected: problem.expected,
        })?;
    let offset_reached = shared.paging.offset_reached(&position, records.len());
    let fingerprint = PageFingerprint::of(&records);
    // A cursor value that does not read leaves both to the executor, which reports the record.
    let (keys, greatest) = match found {
        Some(found) if shared.per_record => {
            match shared.fields.keys_of_found(found.iter().copied()) {
                Ok((keys, greatest)) => (Some(keys), greatest),
                Err(_) => (None, None),
            }
        }
        Some(found) => (
            None,
            shared
                .fields
                .greatest_position_of_found(found)
                .ok()
                .flatten(),
        ),
        None => (
            None,
            shared
                .fields
                .greatest_position_in_json(records.iter().map(Record::json))
                .ok()
                .flatten(),
        ),
    };
    // The cursor values found were read from the body.
    drop(body);
    Ok(Page {
        records,
        greatest,
        keys,
        next,
        offset_reached,
        url,
        fingerprint,
    })
}
