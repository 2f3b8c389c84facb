//! `cargo xtask bench http`: the end-to-end HTTP benchmark of docs/performance.md.
//!
//! A source server inside this process serves precomputed pages (so that the source is never
//! the bottleneck), the release binary runs a pipeline against it with offset pagination and
//! timestamp + id cursors to the file output, and `/usr/bin/time` reports its peak RSS. The
//! output file must then hold every record served, in order, byte for byte.
//!
//! Three workloads: plain; with `lookback` set to a window holding 10% of the records (one
//! record a millisecond), so that every record goes through the identity check and the last
//! tenth is remembered in the state file, whose size is reported; and filtered, the same source
//! through [`FILTERS`] (a mapping of three fields with two transforms, a set, and a condition
//! dropping a tenth of the records), whose output must hold the nine records in ten that are
//! kept, reshaped.
//!
//! Three more series at 1,000,000 records: the plain workload with `batchSize: 10000` on the
//! output (ten pages a delivery and a commit), with `batchSize: 1` (every page a delivery, as
//! before deliveries were gathered by default), and the raw page fetch rate: `curl` fetching
//! the same pages from the same server over one connection and discarding them, checked by
//! the bytes it received. The last lines put the runs beside those references.
//!
//! `cargo xtask bench http RUNS [SERIES...]`, or `CANNECTORS_BENCH_HTTP_SERIES` (comma-separated)
//! when no series is named, runs some of the series only: plain, lookback, filtered, gathered,
//! per-page, raw.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use cannectors_test_support::http::{Response, Server};

const PAGE: usize = 1000;

/// One record of about 200 bytes, as a source API would send it.
fn record(id: usize) -> String {
    format!(
        concat!(
            r#"{{"id":{id},"updated_at":"2026-01-{day:02}T{h:02}:{m:02}:{s:02}.{ms:03}Z","#,
            r#""name":"customer-{id:07}","email":"user{id:07}@example.com","status":"active","#,
            r#""amount":{amount}.{cents:02},"country":"DE","tags":["alpha","beta"]}}"#
        ),
        id = id,
        day = 1 + (id / 86_400_000) % 28,
        h = (id / 3_600_000) % 24,
        m = (id / 60_000) % 60,
        s = (id / 1000) % 60,
        ms = id % 1000,
        amount = id % 10_000,
        cents = id % 100,
    )
}

/// Every page body of a source holding `total` records, indexed by offset / PAGE.
fn pages(total: usize) -> Vec<Vec<u8>> {
    let mut pages = Vec::with_capacity(total / PAGE + 2);
    let mut offset = 0;
    loop {
        let end = (offset + PAGE).min(total);
        let mut body = format!(r#"{{"total":{total},"items":["#);
        for id in offset..end {
            if id > offset {
                body.push(',');
            }
            body.push_str(&record(id + 1));
        }
        body.push_str("]}");
        pages.push(body.into_bytes());
        if end >= total {
            break;
        }
        offset = end;
    }
    pages
}

/// Starts the source server on a free loopback port; it stops when dropped.
fn start_source(total: usize) -> Server {
    let pages = pages(total);
    let empty = br#"{"total":0,"items":[]}"#.to_vec();
    Server::start(move |request| {
        let offset = request
            .param("offset")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(0);
        Response::json_text(pages.get(offset / PAGE).unwrap_or(&empty).clone())
    })
}

struct Measurement {
    records: usize,
    seconds: f64,
    peak_rss_kib: u64,
    state_bytes: u64,
    /// The journal of identities the state file refers to, and the other journal file.
    journal_bytes: (u64, u64),
}

impl Measurement {
    /// The journal files' sizes for the table: the one in use + the other, in KiB.
    fn journals(&self) -> String {
        let kib = |bytes: u64| bytes as f64 / 1024.0;
        format!(
            "{:.1} + {:.1}",
            kib(self.journal_bytes.0),
            kib(self.journal_bytes.1)
        )
    }
}

/// The sizes of the journal of identities the state file `state` refers to (the file store
/// keeps a lookback window's identities in `<name>.idents-a` or `<name>.idents-b`) and of the
/// other one; zero for a file that is not there.
fn journal_sizes(dir: &Path, state: &str) -> (u64, u64) {
    let size = |name: &str| std::fs::metadata(dir.join(name)).map_or(0, |m| m.len());
    let (a, b) = ("bench-http.idents-a", "bench-http.idents-b");
    if state.contains(&format!("\"journal\": \"{b}\"")) {
        (size(b), size(a))
    } else {
        (size(a), size(b))
    }
}

/// The `lookback` of the workload that reads `total` records: a tenth of their span, since the
/// records are one millisecond apart.
fn lookback_of(total: usize) -> String {
    format!("{}ms", total / 10)
}

/// The filtered workload: a mapping of three fields with two transforms, a set, and a
/// condition that drops every record whose id is a multiple of 10.
const FILTERS: &str = r#"filters:
  - type: mapping
    mappings:
      - {source: name, target: customer.name, transforms: [{op: uppercase}]}
      - {source: email, target: contact.email, transforms: [{op: lowercase}]}
      - {source: country, target: country_code}
  - {type: set, target: meta.source, value: bench}
  - type: condition
    expression: "id % 10 == 0"
    then: [{type: drop}]
"#;

/// Record `id` as the filtered workload delivers it.
fn filtered_record(id: usize) -> String {
    let plain = record(id);
    let open = plain.strip_suffix('}').unwrap_or(&plain);
    format!(
        r#"{open},"customer":{{"name":"CUSTOMER-{id:07}"}},"contact":{{"email":"user{id:07}@example.com"}},"country_code":"DE","meta":{{"source":"bench"}}}}"#
    )
}

/// What a bench run adds to the plain pipeline.
#[derive(Clone, Copy, PartialEq)]
enum Workload {
    Plain,
    Lookback,
    Filtered,
    Gathered,
    /// `batchSize: 1`: every page a delivery, as before the default gathering.
    PerPage,
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Workload::Plain => "plain",
            Workload::Lookback => "lookback 10%",
            Workload::Filtered => "filtered",
            Workload::Gathered => "batchSize 10000",
            Workload::PerPage => "batchSize 1 (a page a delivery)",
        }
    }
}

fn run_once(binary: &Path, total: usize, workload: Workload) -> Result<Measurement, String> {
    let lookback = if workload == Workload::Lookback {
        // maxIdentities above the window, so that the bound does not drop any.
        format!(
            "\n    lookback: {}\n    maxIdentities: {}",
            lookback_of(total),
            total / 5 + 1
        )
    } else {
        String::new()
    };
    let filters = if workload == Workload::Filtered {
        FILTERS
    } else {
        ""
    };
    let batch_size = match workload {
        Workload::Gathered => ", batchSize: 10000",
        Workload::PerPage => ", batchSize: 1",
        _ => "",
    };
    let source = start_source(total);
    let endpoint = source.url("/events");
    let dir = scratch_dir()?;
    let pipeline = dir.join("bench.yaml");
    std::fs::write(
        &pipeline,
        format!(
            r#"name: bench-http
input:
  type: httpPolling
  endpoint: {endpoint}
  dataField: items
  pagination: {{type: offset, param: offset, limitParam: limit, limit: {PAGE}, totalField: total}}
  statePersistence:
    timestamp: {{field: updated_at, queryParam: updated_after}}
    id: {{field: id, queryParam: after_id}}{lookback}
    storagePath: ./state
{filters}output: {{type: file, path: out.jsonl{batch_size}}}
"#
        ),
    )
    .map_err(|e| e.to_string())?;
    let run = run_pipeline(binary, &pipeline, &dir)?;
    let checked = if workload == Workload::Filtered {
        check_filtered_output(&dir.join("out.jsonl"), total)
    } else {
        check_output(&dir.join("out.jsonl"), total)
    };
    let state_bytes = std::fs::metadata(dir.join("state/bench-http.json"))
        .map(|m| m.len())
        .unwrap_or(0);
    let journal_bytes = journal_sizes(
        &dir.join("state"),
        &std::fs::read_to_string(dir.join("state/bench-http.json")).unwrap_or_default(),
    );
    let _ = std::fs::remove_dir_all(&dir);
    checked?;
    Ok(Measurement {
        records: total,
        seconds: run.seconds,
        peak_rss_kib: run.peak_rss_kib,
        state_bytes,
        journal_bytes,
    })
}

/// The output file must hold every record served, in order, one a line, byte for byte.
fn check_output(path: &Path, total: usize) -> Result<(), String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("no readable output file {}: {e}", path.display()))?;
    let mut lines = text.lines();
    for id in 1..=total {
        match lines.next() {
            Some(line) if line == record(id) => {}
            Some(line) => {
                return Err(format!(
                    "line {id} of the output file is not record {id}: {line:.200}"
                ));
            }
            None => {
                return Err(format!(
                    "expected {total} records in the output file, found {}",
                    id - 1
                ));
            }
        }
    }
    match lines.next() {
        Some(extra) => Err(format!(
            "the output file holds more than the {total} records served: {extra:.200}"
        )),
        None => Ok(()),
    }
}

/// The filtered output must hold the records whose id is not a multiple of 10, reshaped, in
/// order: the first ones are compared byte for byte, the rest are counted.
fn check_filtered_output(path: &Path, total: usize) -> Result<(), String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("no readable output file {}: {e}", path.display()))?;
    let kept = (1..=total).filter(|id| id % 10 != 0);
    let mut lines = text.lines();
    for id in kept.clone().take(100) {
        match lines.next() {
            Some(line) if line == filtered_record(id) => {}
            other => {
                return Err(format!(
                    "expected record {id} reshaped: {}\nfound: {:.300}",
                    filtered_record(id),
                    other.unwrap_or("the end of the file")
                ));
            }
        }
    }
    let expected = kept.count();
    let found = text.lines().count();
    if found != expected {
        return Err(format!(
            "expected {expected} records in the output file (a tenth dropped), found {found}"
        ));
    }
    Ok(())
}

/// The raw page fetch rate: `curl` fetches every page of a source holding `total` records
/// from the same server, over one kept-alive connection, and discards them. The bytes it
/// received must be the bytes of the pages.
fn raw_fetch(total: usize) -> Result<Measurement, String> {
    let expected: usize = pages(total).iter().map(Vec::len).sum();
    let last = total.saturating_sub(1) / PAGE * PAGE;
    let source = start_source(total);
    // curl's URL globbing: one transfer per offset, the same connection reused.
    let url = format!(
        "{}?offset=[0-{last}:{PAGE}]&limit={PAGE}",
        source.url("/events")
    );
    let started = Instant::now();
    let output = Command::new("curl")
        .args(["--silent", "--show-error", "--fail"])
        .args(["--write-out", "%{stderr}size=%{size_download}\n"])
        .arg(&url)
        .stdout(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot start curl for the raw fetch rate: {e}"))?;
    let seconds = started.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        return Err(format!("curl failed to fetch the pages: {stderr}"));
    }
    let received: usize = stderr
        .lines()
        .filter_map(|line| line.strip_prefix("size="))
        .map(|n| n.trim().parse::<usize>().unwrap_or(0))
        .sum();
    if received != expected {
        return Err(format!(
            "curl received {received} bytes of pages, expected {expected}: {stderr:.300}"
        ));
    }
    Ok(Measurement {
        records: total,
        seconds,
        peak_rss_kib: 0,
        state_bytes: 0,
        journal_bytes: (0, 0),
    })
}

/// How long one run of the binary took and the most memory it held.
pub(crate) struct TimedRun {
    /// Wall-clock seconds, process start to exit.
    pub(crate) seconds: f64,
    /// Peak resident set size as `/usr/bin/time` reports it.
    pub(crate) peak_rss_kib: u64,
}

/// Runs `cannectors --quiet run --once <pipeline>` in `dir` under `/usr/bin/time`.
///
/// `CANNECTORS_BENCH_WRAPPER` (e.g. `perf record -e cpu-clock --call-graph dwarf -o perf.data`
/// or `strace -f -c -o syscalls.txt`) is put in front of the binary, to profile a run exactly as
/// it is measured.
pub(crate) fn run_pipeline(binary: &Path, pipeline: &Path, dir: &Path) -> Result<TimedRun, String> {
    let wrapper = std::env::var("CANNECTORS_BENCH_WRAPPER").unwrap_or_default();
    let started = Instant::now();
    let output = Command::new("/usr/bin/time")
        .args(["-f", "peak_rss_kib=%M"])
        .args(wrapper.split_whitespace())
        .arg(binary)
        .args(["--quiet", "run", "--once"])
        .arg(pipeline)
        .current_dir(dir)
        .output()
        .map_err(|e| format!("cannot start /usr/bin/time {}: {e}", binary.display()))?;
    let seconds = started.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        return Err(format!("the pipeline run failed: {stderr}"));
    }
    let peak_rss_kib = stderr
        .lines()
        .find_map(|line| line.strip_prefix("peak_rss_kib="))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| format!("no peak RSS in the output of /usr/bin/time: {stderr}"))?;
    Ok(TimedRun {
        seconds,
        peak_rss_kib,
    })
}

/// The number of lines of a file the output wrote, one record each.
pub(crate) fn count_lines(path: &Path) -> Result<usize, String> {
    Ok(std::fs::read(path)
        .map_err(|e| format!("no output file {}: {e}", path.display()))?
        .iter()
        .filter(|b| **b == b'\n')
        .count())
}

/// A new empty directory for one run; the caller removes it.
pub(crate) fn scratch_dir() -> Result<std::path::PathBuf, String> {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "cannectors-bench-{}-{}",
        std::process::id(),
        RUNS.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(dir)
}

/// The short name of a series in `CANNECTORS_BENCH_HTTP_SERIES`.
fn series_key(workload: Option<Workload>) -> &'static str {
    match workload {
        Some(Workload::Plain) => "plain",
        Some(Workload::Lookback) => "lookback",
        Some(Workload::Filtered) => "filtered",
        Some(Workload::Gathered) => "gathered",
        Some(Workload::PerPage) => "per-page",
        None => "raw",
    }
}

/// The series `CANNECTORS_BENCH_HTTP_SERIES` (comma-separated: plain, lookback, filtered,
/// gathered, per-page, raw) limits the bench to; every series when it is not set.
fn series_filter() -> Result<Option<Vec<String>>, String> {
    let Ok(only) = std::env::var("CANNECTORS_BENCH_HTTP_SERIES") else {
        return Ok(None);
    };
    let names: Vec<String> = only.split(',').map(|n| n.trim().to_owned()).collect();
    let known = [
        "plain", "lookback", "filtered", "gathered", "per-page", "raw",
    ];
    match names.iter().find(|n| !known.contains(&n.as_str())) {
        Some(unknown) => Err(format!(
            "CANNECTORS_BENCH_HTTP_SERIES names `{unknown}`, which is no series; use any of {}",
            known.join(", ")
        )),
        None => Ok(Some(names)),
    }
}

/// Runs the HTTP benchmark and prints a Markdown table: the plain and lookback workloads at
/// 10,000 and 1,000,000 records, then the filtered one, the one with `batchSize: 10000` and the
/// raw page fetch at 1,000,000; then the gathered run's rate beside the plain run's and the raw
/// fetch's.
///
/// `only` names the workloads to run (`plain`, `lookback`, `filtered`, `gathered`, `raw`), to
/// repeat one of them while working on it; empty runs them all.
pub(crate) fn http(binary: &Path, runs: usize, only: &[String]) -> Result<(), String> {
    const KNOWN: [&str; 6] = [
        "plain", "lookback", "filtered", "gathered", "per-page", "raw",
    ];
    if let Some(unknown) = only.iter().find(|name| !KNOWN.contains(&name.as_str())) {
        return Err(format!(
            "unknown workload `{unknown}`; the workloads are {}",
            KNOWN.join(", ")
        ));
    }
    // The workloads named on the command line, else those of CANNECTORS_BENCH_HTTP_SERIES,
    // else all of them.
    let only = match (only.is_empty(), series_filter()?) {
        (false, _) => Some(only.to_vec()),
        (true, from_env) => from_env,
    };
    let selected = |workload: Option<Workload>| {
        only.as_ref()
            .is_none_or(|only| only.iter().any(|name| name == series_key(workload)))
    };
    println!(
        "| workload | records | run | seconds | records/s | peak RSS (MiB) | state file (KiB) | \
         journal in use + other (KiB) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    let mut best_rates = Vec::new();
    for (workload, total) in [
        (Some(Workload::Plain), 10_000),
        (Some(Workload::Lookback), 10_000),
        (Some(Workload::Plain), 1_000_000),
        (Some(Workload::Lookback), 1_000_000),
        (Some(Workload::Filtered), 1_000_000),
        (Some(Workload::Gathered), 1_000_000),
        (Some(Workload::PerPage), 1_000_000),
        (None, 1_000_000),
    ] {
        if !selected(workload) {
            continue;
        }
        let name = workload.map_or("raw fetch (curl)", Workload::name);
        let mut best: Option<Measurement> = None;
        for run in 1..=runs {
            let m = match workload {
                Some(workload) => run_once(binary, total, workload)?,
                None => raw_fetch(total)?,
            };
            println!(
                "| {name} | {} | {run} | {:.3} | {:.0} | {:.1} | {:.1} | {} |",
                m.records,
                m.seconds,
                m.records as f64 / m.seconds,
                m.peak_rss_kib as f64 / 1024.0,
                m.state_bytes as f64 / 1024.0,
                m.journals()
            );
            if best.as_ref().is_none_or(|b| m.seconds < b.seconds) {
                best = Some(m);
            }
        }
        if let Some(b) = best {
            let rate = b.records as f64 / b.seconds;
            println!(
                "| {name} | {} | best | {:.3} | **{rate:.0}** | {:.1} | {:.1} | {} |",
                b.records,
                b.seconds,
                b.peak_rss_kib as f64 / 1024.0,
                b.state_bytes as f64 / 1024.0,
                b.journals()
            );
            best_rates.push((name, total, rate));
        }
    }
    let rate_of = |name: &str| {
        best_rates
            .iter()
            .find(|(n, total, _)| *n == name && *total == 1_000_000)
            .map(|(_, _, rate)| *rate)
    };
    let raw = rate_of("raw fetch (curl)");
    let per_page = rate_of(Workload::PerPage.name());
    println!();
    for workload in [Workload::Plain, Workload::Gathered, Workload::Lookback] {
        let Some(rate) = rate_of(workload.name()) else {
            continue;
        };
        let mut against = Vec::new();
        if let Some(per_page) = per_page {
            against.push(format!("{:.2}x a page a delivery", rate / per_page));
        }
        if let Some(raw) = raw {
            against.push(format!("{:.0}% of the raw fetch rate", 100.0 * rate / raw));
        }
        if workload == Workload::Lookback
            && let Some(plain) = rate_of(Workload::Plain.name())
        {
            against.push(format!("{:.2}x the plain run", rate / plain));
        }
        if !against.is_empty() {
            println!(
                "{} at 1,000,000 records: {}",
                workload.name(),
                against.join(", ")
            );
        }
    }
    Ok(())
}
