//! Throughput of the file sink: batches of 1,000 records of about 200 bytes, appended and
//! fsynced as in a real run.

// A benchmark stops loudly on a broken setup; criterion's macros generate undocumented items.
#![allow(clippy::expect_used, missing_docs)]

use cannectors_connector::{Record, Sink};
use cannectors_output::FileSink;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn batch(size: usize) -> Vec<Record> {
    (0..size)
        .map(|i| {
            Record::from(serde_json::json!({
                "id": i,
                "updated_at": "2026-01-01T00:00:00.000Z",
                "email": format!("user{i}@example.com"),
                "name": "Ada Lovelace",
                "status": "active",
                "score": 12.5,
                "tags": ["alpha", "beta"],
                "note": "a short free text field of moderate length",
            }))
        })
        .collect()
}

fn file_sink(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("bench.jsonl");
    let mut sink = FileSink::open_path(&path).expect("the output file opens");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .expect("a tokio runtime");
    let records = batch(1_000);

    let mut group = c.benchmark_group("file_sink");
    group.throughput(Throughput::Elements(records.len() as u64));
    group.bench_function("append_and_sync_1000_records", |b| {
        b.iter(|| {
            runtime
                .block_on(sink.write(&records))
                .expect("the batch is written")
        });
    });
    group.finish();
}

criterion_group!(benches, file_sink);
criterion_main!(benches);
