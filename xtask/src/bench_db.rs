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

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::bench::{count_lines, run_pipeline, scratch_dir};
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

/// Runs the database benchmark and prints a Markdown table.
pub(crate) fn db(binary: &Path, runs: usize) -> Result<(), String> {
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
    for table in &tables {
        eprintln!("bench db: filling {}", table.name());
        fill(&url, table)?;
    }
    println!("load average before: {load_before}");
    println!();
    println!(
        "| table | rows | run | cannectors s | cannectors rows/s | psql s | psql rows/s | ratio | peak RSS (MiB) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for table in &tables {
        let mut best: Option<Row> = None;
        for run in 1..=runs {
            let psql = copy_with_psql(&url, table)?;
            let (seconds, peak_rss_kib) = run_cannectors(binary, &url, table)?;
            let row = Row {
                seconds,
                psql,
                peak_rss_kib,
            };
            println!("{}", row.line(table, &run.to_string()));
            best = Some(match best {
                None => row,
                // The best of each column on its own: both sides suffer from the same noise,
                // and the fastest run of each is the closest to what it can do.
                Some(b) => Row {
                    seconds: b.seconds.min(row.seconds),
                    psql: b.psql.min(row.psql),
                    peak_rss_kib: b.peak_rss_kib.max(row.peak_rss_kib),
                },
            });
        }
        if let Some(b) = best {
            println!("{}", b.line(table, "best"));
        }
    }
    println!();
    println!("load average after: {}", load_average());
    println!("(best: fastest run of each side; peak RSS: the largest of the runs)");
    drop(cluster);
    Ok(())
}

struct Row {
    seconds: f64,
    psql: f64,
    peak_rss_kib: u64,
}

impl Row {
    fn line(&self, table: &Table, run: &str) -> String {
        let rows = table.rows;
        let rate = rows as f64 / self.seconds;
        let psql_rate = rows as f64 / self.psql;
        format!(
            "| {} | {rows} | {run} | {:.2} | {rate:.0} | {:.2} | {psql_rate:.0} | {:.2} | {:.1} |",
            table.kind,
            self.seconds,
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

/// Seconds and peak RSS of one cannectors run over the whole table, its output checked.
fn run_cannectors(binary: &Path, url: &str, table: &Table) -> Result<(f64, u64), String> {
    let dir = scratch_dir()?;
    let pipeline = dir.join("bench.yaml");
    std::fs::write(
        &pipeline,
        format!(
            r#"name: bench-db
input:
  type: database
  connectionString: {url}
  query: >-
    SELECT {columns} FROM {name}
    WHERE (updated_at, id) > (COALESCE($1::timestamptz, '-infinity'), COALESCE($2::bigint, 0))
    ORDER BY updated_at, id LIMIT {limit}
  statePersistence:
    timestamp: {{enabled: true, field: updated_at}}
    id: {{enabled: true, field: id}}
    storagePath: ./state
output: {{type: file, path: out.jsonl}}
"#,
            columns = table.columns(),
            name = table.name(),
            limit = table.limit,
        ),
    )
    .map_err(|e| format!("{}: {e}", pipeline.display()))?;
    let run = run_pipeline(binary, &pipeline, &dir)?;
    let checked = if table.wide() {
        check_wide_output(&dir, table.rows)
    } else {
        count_lines(&dir.join("out.jsonl")).and_then(|lines| {
            if lines == table.rows {
                Ok(())
            } else {
                Err(format!(
                    "expected {} records in the output file, found {lines}",
                    table.rows
                ))
            }
        })
    };
    let _ = std::fs::remove_dir_all(&dir);
    checked?;
    Ok((run.seconds, run.peak_rss_kib))
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
fn check_wide_output(dir: &Path, rows: usize) -> Result<(), String> {
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
    let state_path = dir.join("state/bench-db.json");
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
