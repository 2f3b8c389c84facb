//! `cargo xtask bench db`: the end-to-end database benchmark of docs/performance.md.
//!
//! A throwaway PostgreSQL cluster holds two kinds of tables, filled server-side:
//! - narrow: 6 columns of scalars (100,000 and 1,000,000 rows), read 10,000 rows a query;
//! - wide: 1,000,000 rows of a realistic table (`id bigserial`, `updated_at timestamptz`,
//!   `name text`, `amount numeric(12,2)`, `tags text[]`, `payload jsonb` with four keys; about
//!   210 bytes of JSON a row), read 5,000 rows a query.
//!
//! The release binary reads each with a keyset cursor to the file output under `/usr/bin/time`
//! (peak RSS); in the same run `psql`'s `\copy` of `row_to_json` over the same table sets the
//! practical limit the rate is compared with (to /dev/null for the narrow tables, as the first
//! series did; to a file for the wide one, as the cannectors run writes one). Every run checks
//! its output: the number of records, and for the wide table every line byte for byte and the
//! cursor committed in the state file.
//!
//! `CANNECTORS_BENCH_DB_TABLES=wide` (or `narrow`) runs one kind only.
//!
//! Each table is read in several series, which differ in where the state is kept and where the
//! records go (`CANNECTORS_BENCH_DB_SERIES=file,pg-store,at-least-once,exactly-once`, the
//! default, or a part of it):
//! - `file`: the file store, the file output (the first series);
//! - `pg-store`: the PostgreSQL store in the same cluster, the file output;
//! - `at-least-once`: the PostgreSQL store, a database output into another schema (so another
//!   database target: the state is committed after each batch, on the store's connection);
//! - `exactly-once`: the PostgreSQL store and the database output on the same database, each
//!   batch and its state one transaction.
//!
//! The database-output series are compared with psql running `INSERT INTO ... SELECT` of the same
//! table on the server, the practical limit of writing the rows. Every run logs how long each
//! commit took (the executor's `commit_us`, or on the exactly-once path the state's statements
//! inside the transaction, `state_commit_us`); their sum over the run time is the commit's
//! share.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use crate::bench::{count_lines, scratch_dir};
use crate::postgres::Cluster;

/// One table of the benchmark.
struct Table {
    /// `narrow` or `wide`.
    kind: &'static str,
    rows: usize,
    /// The rows a query reads (the `LIMIT` of the keyset query).
    limit: usize,
}

impl Table {
    fn name(&self) -> String {
        format!("{}_{}", self.kind, self.rows)
    }

    fn wide(&self) -> bool {
        self.kind == "wide"
    }

    fn columns(&self) -> &'static str {
        if self.wide() {
            "id, updated_at, name, amount, tags, payload"
        } else {
            "id, updated_at, name, email, amount, active"
        }
    }
}

/// The tables: the small narrow one shows whether peak RSS grows with the table.
const TABLES: [Table; 3] = [
    Table {
        kind: "narrow",
        rows: 100_000,
        limit: 10_000,
    },
    Table {
        kind: "narrow",
        rows: 1_000_000,
        limit: 10_000,
    },
    Table {
        kind: "wide",
        rows: 1_000_000,
        limit: 5_000,
    },
];

/// Where a run keeps its state and delivers its records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Series {
    FileStore,
    PgStore,
    AtLeastOnce,
    ExactlyOnce,
}

const SERIES: [Series; 4] = [
    Series::FileStore,
    Series::PgStore,
    Series::AtLeastOnce,
    Series::ExactlyOnce,
];

/// The schema of the database outputs' tables (and, on the exactly-once path, of the store).
const OUT_SCHEMA: &str = "bench_out";

impl Series {
    fn key(self) -> &'static str {
        match self {
            Series::FileStore => "file",
            Series::PgStore => "pg-store",
            Series::AtLeastOnce => "at-least-once",
            Series::ExactlyOnce => "exactly-once",
        }
    }

    /// Whether the records go to a database table rather than a file.
    fn into_database(self) -> bool {
        matches!(self, Series::AtLeastOnce | Series::ExactlyOnce)
    }
}

/// Runs the database benchmark and prints a Markdown table.
pub(crate) fn db(binary: &Path, runs: usize) -> Result<(), String> {
    let wanted = std::env::var("CANNECTORS_BENCH_DB_SERIES").unwrap_or_default();
    let series: Vec<Series> = SERIES
        .into_iter()
        .filter(|s| wanted.is_empty() || wanted.split(',').any(|key| key.trim() == s.key()))
        .collect();
    if series.is_empty() {
        return Err(format!(
            "CANNECTORS_BENCH_DB_SERIES=`{wanted}` names no series; use file, pg-store, \
             at-least-once, exactly-once or several, separated by commas"
        ));
    }
    let only = std::env::var("CANNECTORS_BENCH_DB_TABLES").unwrap_or_default();
    let tables: Vec<&Table> = TABLES
        .iter()
        .filter(|t| only.is_empty() || only.split(',').any(|kind| kind.trim() == t.kind))
        .collect();
    if tables.is_empty() {
        return Err(format!(
            "CANNECTORS_BENCH_DB_TABLES=`{only}` names no table kind; use narrow, wide or both"
        ));
    }
    // Taken before the cluster and the fill add their own load: what else runs on the machine.
    let load_before = load_average();
    let cluster = Cluster::start()?;
    let url = cluster.url();
    psql(&url, &[&format!("CREATE SCHEMA {OUT_SCHEMA}")])?;
    for table in &tables {
        eprintln!("bench db: filling {}", table.name());
        fill(&url, table)?;
    }
    println!("load average before: {load_before}");
    println!();
    println!(
        "| table | rows | series | run | cannectors s | cannectors rows/s | commit s | commit share | psql s | psql rows/s | ratio | peak RSS (MiB) |"
    );
    println!("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for table in &tables {
        for &series in &series {
            let mut best: Option<Row> = None;
            for run in 1..=runs {
                let psql = if series.into_database() {
                    insert_with_psql(&url, table)?
                } else {
                    copy_with_psql(&url, table)?
                };
                let measured = run_cannectors(binary, &url, table, series)?;
                let row = Row { psql, ..measured };
                println!("{}", row.line(table, series, &run.to_string()));
                best = Some(match best {
                    None => row,
                    // The best of each column on its own: both sides suffer from the same
                    // noise, and the fastest run of each is the closest to what it can do.
                    Some(b) => Row {
                        seconds: b.seconds.min(row.seconds),
                        commit: b.commit.min(row.commit),
                        psql: b.psql.min(row.psql),
                        peak_rss_kib: b.peak_rss_kib.max(row.peak_rss_kib),
                    },
                });
            }
            if let Some(b) = best {
                println!("{}", b.line(table, series, "best"));
            }
        }
    }
    println!();
    println!("load average after: {}", load_average());
    println!(
        "(best: fastest run of each side, and the smallest commit time; commit share: of that \
         run's time, or for best, of the best time; peak RSS: the largest of the runs)"
    );
    drop(cluster);
    Ok(())
}

struct Row {
    seconds: f64,
    /// Seconds spent committing state, summed over the run.
    commit: f64,
    psql: f64,
    peak_rss_kib: u64,
}

impl Row {
    fn line(&self, table: &Table, series: Series, run: &str) -> String {
        let rows = table.rows;
        let rate = rows as f64 / self.seconds;
        let psql_rate = rows as f64 / self.psql;
        format!(
            "| {} | {rows} | {} | {run} | {:.2} | {rate:.0} | {:.3} | {:.1} % | {:.2} | {psql_rate:.0} | {:.2} | {:.1} |",
            table.kind,
            series.key(),
            self.seconds,
            self.commit,
            100.0 * self.commit / self.seconds,
            self.psql,
            rate / psql_rate,
            self.peak_rss_kib as f64 / 1024.0
        )
    }
}

/// Creates and fills one table with generate_series, with the index the keyset query walks.
/// Three rows share each timestamp, so that the id half of the cursor matters.
fn fill(url: &str, table: &Table) -> Result<(), String> {
    let name = table.name();
    let rows = table.rows;
    let (create, insert) = if table.wide() {
        (
            format!(
                "CREATE TABLE {name} (id bigserial PRIMARY KEY, updated_at timestamptz NOT NULL, \
                 name text NOT NULL, amount numeric(12,2) NOT NULL, tags text[] NOT NULL, \
                 payload jsonb NOT NULL)"
            ),
            // Ids given, so that row i is the i-th record whatever the sequence did before.
            format!(
                "INSERT INTO {name} SELECT i, \
                 timestamptz '2026-01-01 00:00:00+00' + (i / 3) * interval '1237 microseconds', \
                 'customer-' || lpad(i::text, 7, '0'), ((i::bigint * 7919) % 10000000) / 100.0, \
                 ARRAY['tier-' || i % 4, 'region-' || i % 7], \
                 jsonb_build_object('sku', 'SKU-' || lpad((i % 100000)::text, 6, '0'), \
                 'quantity', i % 50, 'unit_price', (((i::bigint * 31) % 100000) / 100.0)::numeric(10,2), \
                 'warehouse', 'warehouse-' || i % 12 || '-north') \
                 FROM generate_series(1, {rows}) AS i"
            ),
        )
    } else {
        (
            format!(
                "CREATE TABLE {name} (id bigint PRIMARY KEY, updated_at timestamptz NOT NULL, \
                 name text NOT NULL, email text NOT NULL, amount numeric(12,2) NOT NULL, \
                 active bool NOT NULL)"
            ),
            format!(
                "INSERT INTO {name} SELECT i, \
                 timestamptz '2026-01-01 00:00:00+00' + (i / 3) * interval '1237 microseconds', \
                 'customer-' || lpad(i::text, 7, '0'), 'user' || i || '@example.com', \
                 ((i::bigint * 7919) % 10000000) / 100.0, i % 5 <> 0 \
                 FROM generate_series(1, {rows}) AS i"
            ),
        )
    };
    psql(
        url,
        &[
            &create,
            &insert,
            &format!("CREATE INDEX ON {name} (updated_at, id)"),
            &format!("VACUUM ANALYZE {name}"),
        ],
    )
}

/// Runs each command with `psql -c` (each in its own transaction, as VACUUM needs).
fn psql(url: &str, commands: &[&str]) -> Result<(), String> {
    let mut command = Command::new("psql");
    command.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url]);
    for sql in commands {
        command.args(["-c", sql]);
    }
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot start psql (install postgresql-client): {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "psql failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// The text `psql -tA` prints for one query.
fn psql_value(url: &str, sql: &str) -> Result<String, String> {
    let output = Command::new("psql")
        .args([
            "-X",
            "-q",
            "-tA",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            url,
            "-c",
            sql,
        ])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot start psql (install postgresql-client): {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    } else {
        Err(format!(
            "psql failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// The table a database output of the benchmark writes `table` into, emptied: no key, so
/// that a record written twice would show.
fn empty_destination(url: &str, table: &Table) -> Result<String, String> {
    let destination = format!("{OUT_SCHEMA}.dest_{}", table.name());
    psql(
        url,
        &[&format!(
            "DROP TABLE IF EXISTS {destination}; \
             CREATE TABLE {destination} (LIKE {} INCLUDING DEFAULTS)",
            table.name()
        )],
    )?;
    Ok(destination)
}

/// Seconds `psql` takes to copy every row of the table into an empty table of the same
/// columns, on the server: the practical limit of a database output.
fn insert_with_psql(url: &str, table: &Table) -> Result<f64, String> {
    let destination = empty_destination(url, table)?;
    let started = Instant::now();
    psql(
        url,
        &[&format!(
            "INSERT INTO {destination} SELECT * FROM {}",
            table.name()
        )],
    )?;
    Ok(started.elapsed().as_secs_f64())
}

/// Seconds `psql` takes to copy every row of the table as JSON, to /dev/null for the narrow
/// tables and to a file for the wide one.
fn copy_with_psql(url: &str, table: &Table) -> Result<f64, String> {
    let dir = scratch_dir()?;
    let target = if table.wide() {
        dir.join("psql.jsonl").display().to_string()
    } else {
        "/dev/null".to_owned()
    };
    let started = Instant::now();
    let copied = psql(
        url,
        &[&format!(
            "\\copy (SELECT row_to_json(t) FROM {} t) TO '{target}'",
            table.name()
        )],
    );
    let seconds = started.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&dir);
    copied.map(|()| seconds)
}

/// The URL of the benchmark's cluster with `schema` first in the search path.
fn in_schema(url: &str, schema: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}options=-c%20search_path%3D{schema}")
}

/// One run of the release binary over the whole table in `series`, its output checked: time,
/// commit time and peak RSS (`psql` is left at zero).
fn run_cannectors(binary: &Path, url: &str, table: &Table, series: Series) -> Result<Row, String> {
    // A new pipeline name for every run: a state left in the PostgreSQL store by the run before
    // is never resumed.
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let pipeline_name = format!("bench-db-{}", RUNS.fetch_add(1, Ordering::Relaxed));
    let dir = scratch_dir()?;
    let pipeline = dir.join("bench.yaml");
    let out_url = in_schema(url, OUT_SCHEMA);
    let store = match series {
        Series::FileStore => "    storagePath: ./state\n".to_owned(),
        Series::PgStore | Series::AtLeastOnce => {
            format!("    store: postgres\n    connectionString: \"{url}\"\n")
        }
        Series::ExactlyOnce => {
            format!("    store: postgres\n    connectionString: \"{out_url}\"\n")
        }
    };
    let destination = if series.into_database() {
        Some(empty_destination(url, table)?)
    } else {
        None
    };
    let output = match &destination {
        None => "output: {type: file, path: out.jsonl}\n".to_owned(),
        Some(destination) => {
            let columns = table.columns();
            let count = columns.split(", ").count();
            let placeholders: Vec<String> = (1..=count).map(|n| format!("${n}")).collect();
            let parameters: Vec<String> =
                columns.split(", ").map(|c| format!("record.{c}")).collect();
            let unqualified = destination.trim_start_matches(&format!("{OUT_SCHEMA}."));
            format!(
                "output:\n  type: database\n  connectionString: \"{out_url}\"\n  query: \"INSERT \
                 INTO {unqualified} ({columns}) VALUES ({})\"\n  parameters: [{}]\n",
                placeholders.join(", "),
                parameters.join(", ")
            )
        }
    };
    std::fs::write(
        &pipeline,
        format!(
            r#"name: {pipeline_name}
input:
  type: database
  connectionString: "{url}"
  query: >-
    SELECT {columns} FROM {name}
    WHERE (updated_at, id) > (COALESCE($1::timestamptz, '-infinity'), COALESCE($2::bigint, 0))
    ORDER BY updated_at, id LIMIT {limit}
  statePersistence:
    timestamp: {{enabled: true, field: updated_at}}
    id: {{enabled: true, field: id}}
{store}{output}"#,
            columns = table.columns(),
            name = table.name(),
            limit = table.limit,
        ),
    )
    .map_err(|e| format!("{}: {e}", pipeline.display()))?;
    let run = run_logging_commits(binary, &pipeline, &dir)?;
    let checked = match (&destination, series) {
        (Some(destination), _) => check_destination(url, destination, table.rows),
        (None, Series::FileStore) if table.wide() => {
            check_wide_output(&dir, &pipeline_name, table.rows)
        }
        (None, _) => count_lines(&dir.join("out.jsonl")).and_then(|lines| {
            if lines == table.rows {
                Ok(())
            } else {
                Err(format!(
                    "expected {} records in the output file, found {lines}",
                    table.rows
                ))
            }
        }),
    };
    let _ = std::fs::remove_dir_all(&dir);
    checked?;
    if series != Series::FileStore {
        let schema = if series == Series::ExactlyOnce {
            OUT_SCHEMA
        } else {
            "public"
        };
        let committed = psql_value(
            url,
            &format!(
                "SELECT state->>'id' FROM {schema}.cannectors_state WHERE pipeline = '{pipeline_name}'"
            ),
        )?;
        if committed != table.rows.to_string() {
            return Err(format!(
                "the PostgreSQL store holds id {committed:?} for {pipeline_name}, not the last \
                 row's {}",
                table.rows
            ));
        }
    }
    Ok(run)
}

/// Every row of the table once in the database output's table.
fn check_destination(url: &str, destination: &str, rows: usize) -> Result<(), String> {
    let counts = psql_value(
        url,
        &format!("SELECT count(*) || ' ' || count(DISTINCT id) FROM {destination}"),
    )?;
    if counts == format!("{rows} {rows}") {
        Ok(())
    } else {
        Err(format!(
            "{destination} holds {counts} (rows, distinct ids), not {rows} rows each once"
        ))
    }
}

/// Runs `cannectors run --once <pipeline>` in `dir` under `/usr/bin/time`, logging each commit
/// with its duration at debug level (a line a batch), and sums the commits' durations.
/// `CANNECTORS_BENCH_WRAPPER` goes in front of the binary, as for the other benchmarks.
fn run_logging_commits(binary: &Path, pipeline: &Path, dir: &Path) -> Result<Row, String> {
    let wrapper = std::env::var("CANNECTORS_BENCH_WRAPPER").unwrap_or_default();
    let started = Instant::now();
    let output = Command::new("/usr/bin/time")
        .args(["-f", "peak_rss_kib=%M"])
        .args(wrapper.split_whitespace())
        .arg(binary)
        .args(["run", "--once"])
        .arg(pipeline)
        .env(
            "RUST_LOG",
            "warn,cannectors_runtime=debug,cannectors_database=debug",
        )
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
        .ok_or_else(|| format!("no peak RSS in the output of /usr/bin/time: {stderr:.2000}"))?;
    let micros: u64 = stderr
        .split_whitespace()
        .filter_map(|word| {
            word.strip_prefix("commit_us=")
                .or_else(|| word.strip_prefix("state_commit_us="))
        })
        .filter_map(|value| value.parse::<u64>().ok())
        .sum();
    Ok(Row {
        seconds,
        commit: micros as f64 / 1e6,
        psql: 0.0,
        peak_rss_kib,
    })
}

/// The microseconds after 2026-01-01T00:00:00Z of row `i`'s `updated_at`, as `fill` sets it.
fn wide_micros(i: usize) -> usize {
    (i / 3) * 1237
}

/// `updated_at` of row `i` as a record holds it (the fill keeps every row within the first
/// hour of 2026-01-01).
fn wide_timestamp(i: usize) -> String {
    let micros = wide_micros(i);
    let seconds = micros / 1_000_000;
    let fraction = micros % 1_000_000;
    let fraction = if fraction == 0 {
        String::new()
    } else if fraction.is_multiple_of(1000) {
        format!(".{:03}", fraction / 1000)
    } else {
        format!(".{fraction:06}")
    };
    format!(
        "2026-01-01T00:{:02}:{:02}{fraction}Z",
        seconds / 60,
        seconds % 60
    )
}

/// Hundredths as a record holds an exact decimal: the shortest number (`79.1`, `79`).
fn cents(value: usize) -> String {
    match (value % 100, value % 10) {
        (0, _) => format!("{}", value / 100),
        (c, 0) => format!("{}.{}", value / 100, c / 10),
        (c, _) => format!("{}.{c:02}", value / 100),
    }
}

/// Hundredths as a jsonb number is written back: as [`cents`], but whole values keep one
/// zero after the point (`100.00` reads as a double and prints as `100.0`).
fn json_cents(value: usize) -> String {
    if value.is_multiple_of(100) {
        format!("{}.0", value / 100)
    } else {
        cents(value)
    }
}

/// Row `i` of the wide table as a record: the payload's keys in jsonb's order (shorter keys
/// first), without the whitespace PostgreSQL writes.
fn wide_record(i: usize) -> String {
    format!(
        concat!(
            r#"{{"id":{i},"updated_at":"{ts}","name":"customer-{i:07}","amount":{amount},"#,
            r#""tags":["tier-{tier}","region-{region}"],"#,
            r#""payload":{{"sku":"SKU-{sku:06}","quantity":{quantity},"warehouse":"warehouse-{wh}-north","unit_price":{price}}}}}"#
        ),
        i = i,
        ts = wide_timestamp(i),
        amount = cents((i * 7919) % 10_000_000),
        tier = i % 4,
        region = i % 7,
        sku = i % 100_000,
        quantity = i % 50,
        wh = i % 12,
        price = json_cents((i * 31) % 100_000),
    )
}

/// Every record of the wide table, in order, byte for byte, and the cursor of the last one
/// committed.
fn check_wide_output(dir: &Path, pipeline: &str, rows: usize) -> Result<(), String> {
    let path = dir.join("out.jsonl");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("no readable output file {}: {e}", path.display()))?;
    let mut lines = text.lines();
    for i in 1..=rows {
        match lines.next() {
            Some(line) if line == wide_record(i) => {}
            Some(line) => {
                return Err(format!(
                    "line {i} of the output file is not row {i}:\n  got  {line:.300}\n  want {:.300}",
                    wide_record(i)
                ));
            }
            None => {
                return Err(format!(
                    "expected {rows} records in the output file, found {}",
                    i - 1
                ));
            }
        }
    }
    if let Some(extra) = lines.next() {
        return Err(format!(
            "the output file holds more than the {rows} rows of the table: {extra:.200}"
        ));
    }
    let state_path = dir.join("state").join(format!("{pipeline}.json"));
    let state = std::fs::read_to_string(&state_path)
        .map_err(|e| format!("no readable state file {}: {e}", state_path.display()))?;
    let id = format!("\"id\": {rows}");
    let timestamp = format!("\"timestamp\": \"{}\"", wide_timestamp(rows));
    if !state.contains(&id) || !state.contains(&timestamp) {
        return Err(format!(
            "the state file does not hold the last row's cursor ({timestamp}, {id}): {state}"
        ));
    }
    Ok(())
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "unknown".to_owned())
}
