//! Three replicas of `cannectors run DIR` sharing two pipelines through the PostgreSQL store,
//! on a one-second schedule, with the holder of a pipeline killed in the middle of a batch and
//! started again: each tick runs on one replica only, and every record reaches the destination,
//! once, but for the batch in flight at the kill.
//!
//! What each replica did is read from its JSON log: "lease taken" (with the tick) for a tick it
//! ran, "skipping this run" (with the tick) for one another replica held or had taken.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, mpsc};
use std::time::{Duration, Instant};

use cannectors_test_support::postgres::{self, fresh_schema_blocking as fresh_schema};
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::Value;

use crate::scheduler::{Running, http_get, records_after, sample};
use crate::state_postgres::client;
use crate::support::Workspace;
use crate::support::http::{Request, Response, Server};

const SCHEMA: &str = "e2e_pg_replicas";
const PIPELINES: [&str; 2] = ["alpha", "beta"];
/// Records per pipeline, two a run: a dozen runs of each.
const RECORDS: i64 = 24;
/// The batch of `alpha` whose delivery is held until its replica is killed.
const HELD_BATCH: [i64; 2] = [9, 10];

fn pipeline(name: &str, source: &Server, destination: &Server) -> String {
    format!(
        r#"
name: {name}
input:
  type: httpPolling
  schedule: "* * * * * *"
  endpoint: {source}
  retry: {{maxAttempts: 0}}
  statePersistence:
    id: {{field: id, queryParam: after_id}}
    store: postgres
    connectionString: "{store}"
    leaseTtlMs: 2000
    leaseRenewMs: 500
output:
  type: httpRequest
  endpoint: {destination}
  timeoutMs: 30000
  retry: {{maxAttempts: 0}}
"#,
        source = source.url(&format!("/{name}")),
        destination = destination.url(&format!("/{name}")),
        store = postgres::url_in_schema(SCHEMA),
    )
}

fn start_replica(ws: &Workspace) -> Running {
    Running::start(
        ws,
        &[
            "run",
            "pipelines",
            "--log-format",
            "json",
            "--verbose",
            "--metrics-addr",
            "127.0.0.1:0",
        ],
    )
}

/// The committed `id` cursor of each pipeline, by name.
fn committed_ids() -> BTreeMap<String, i64> {
    let (client, runtime) = client(SCHEMA);
    runtime.block_on(async {
        client
            .query(
                "SELECT pipeline, (state->>'id')::bigint FROM cannectors_state \
                 WHERE state ? 'id'",
                &[],
            )
            .await
            .map(|rows| rows.iter().map(|row| (row.get(0), row.get(1))).collect())
            .unwrap_or_default()
    })
}

/// The owner holding the lease of `pipeline` now, if any.
fn holder(pipeline: &str) -> Option<String> {
    let (client, runtime) = client(SCHEMA);
    runtime.block_on(async {
        client
            .query_opt(
                "SELECT owner FROM cannectors_state WHERE pipeline = $1 AND lease_until > now()",
                &[&pipeline],
            )
            .await
            .unwrap()
            .and_then(|row| row.get(0))
    })
}

/// The process id in an owner name (`HOST pid N`).
fn pid_of(owner: &str) -> u32 {
    owner.rsplit(" pid ").next().unwrap().parse().unwrap()
}

/// What one replica logged about one tick of one pipeline.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    /// It took the lease for the tick, with this epoch: it ran the tick.
    Ran { epoch: u64 },
    /// It skipped the tick: another replica held the lease or had taken the tick, or (on the
    /// holder) its previous run was still going.
    Skipped { message: String },
}

/// Every tick of `pipeline` in a JSON log, with what the replica did about it.
fn ticks(log: &str, pipeline: &str) -> Vec<(DateTime<Utc>, Seen)> {
    log.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["pipeline"] == pipeline)
        .filter_map(|line| {
            let tick = line["tick"].as_str()?.parse().ok()?;
            let message = line["message"].as_str()?.to_owned();
            let seen = if message == "lease taken" {
                Seen::Ran {
                    epoch: line["epoch"].as_u64()?,
                }
            } else if message.starts_with("skipping") {
                Seen::Skipped { message }
            } else {
                return None;
            };
            Some((tick, seen))
        })
        .collect()
}

/// The ids of the records in a delivery.
fn ids(body: &[u8]) -> Vec<i64> {
    serde_json::from_slice::<Vec<Value>>(body)
        .unwrap()
        .iter()
        .map(|record| record["id"].as_i64().unwrap())
        .collect()
}

/// The ids of each request a destination received for `pipeline`, in order.
fn batches(destination: &Server, pipeline: &str) -> Vec<Vec<i64>> {
    destination
        .requests()
        .iter()
        .filter(|request| request.path == format!("/{pipeline}"))
        .map(|request| ids(&request.body))
        .collect()
}

#[test]
fn three_replicas_run_each_tick_once_and_deliver_every_record_once_across_a_kill_of_the_holder() {
    fresh_schema(SCHEMA, "");
    let source =
        Server::start(|request: &Request| Response::json(&records_after(request, 2, RECORDS)));
    // The destination holds the answer to the first delivery of alpha's HELD_BATCH until the
    // test opened the gate, and tells the test when that delivery came.
    let (arrived, held) = mpsc::channel::<()>();
    let (open_gate, gate) = mpsc::channel::<()>();
    let (arrived, gate) = (Mutex::new(arrived), Mutex::new(gate));
    let gated = AtomicBool::new(false);
    let destination = Server::start(move |request: &Request| {
        if request.path == "/alpha"
            && ids(&request.body) == HELD_BATCH
            && !gated.swap(true, Ordering::SeqCst)
        {
            let _ = arrived.lock().unwrap().send(());
            let _ = gate.lock().unwrap().recv_timeout(Duration::from_secs(60));
        }
        Response::status(200, "ok")
    });
    let ws = Workspace::new();
    for name in PIPELINES {
        ws.write(
            &format!("pipelines/{name}.yaml"),
            &pipeline(name, &source, &destination),
        );
    }

    let mut replicas: Vec<Running> = (0..3).map(|_| start_replica(&ws)).collect();

    // alpha's fifth run is in flight, its delivery unanswered: kill the replica running it.
    held.recv_timeout(Duration::from_secs(60))
        .expect("alpha's batch 9-10 delivered within a minute");
    let owner = holder("alpha").expect("the lease of alpha is held while its batch is in flight");
    let killed = replicas
        .iter()
        .position(|replica| replica.pid() == pid_of(&owner))
        .unwrap_or_else(|| panic!("the holder {owner} is not one of the replicas"));
    let victim = replicas.remove(killed);
    victim.signal("KILL");
    let (code, killed_log) = victim.exit(Duration::from_secs(30));
    assert_eq!(code, None, "killed by a signal");
    open_gate.send(()).unwrap();
    // And started again, as a supervisor would.
    replicas.push(start_replica(&ws));

    // Every record committed, by the replicas left and the new one.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let ids = committed_ids();
        if PIPELINES
            .iter()
            .all(|name| ids.get(*name) == Some(&RECORDS))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not every record committed within 90 s: {ids:?}\n{}",
            replicas
                .iter()
                .map(Running::log)
                .collect::<Vec<_>>()
                .join("\n")
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // The metrics of each live replica: its own owner name, the lease as it last read it,
    // and the ticks it left to the others.
    let mut held_ticks = 0.0;
    for replica in &replicas {
        replica.wait_for_log("the metrics address", Duration::from_secs(20), |log| {
            log.contains("serving metrics on http://")
        });
        let log = replica.log();
        let address = log
            .split("serving metrics on http://")
            .nth(1)
            .and_then(|rest| rest.split("/metrics").next())
            .unwrap();
        let metrics = http_get(address, "/metrics");
        let me = format!(" pid {}\"}} 1", replica.pid());
        assert!(
            metrics
                .lines()
                .any(|line| line.starts_with("cannectors_replica_info{owner=\"")
                    && line.ends_with(&me)),
            "{metrics}"
        );
        for name in PIPELINES {
            let states: f64 = ["held_here", "held_elsewhere", "free"]
                .iter()
                .map(|state| {
                    sample(
                        &metrics,
                        &format!("cannectors_lease_state{{pipeline=\"{name}\",state=\"{state}\"}}"),
                    )
                })
                .sum();
            assert_eq!(states, 1.0, "one lease state at a time:\n{metrics}");
            assert!(
                metrics.contains(&format!(
                    "cannectors_lease_owner_info{{pipeline=\"{name}\",owner=\""
                )),
                "{metrics}"
            );
            held_ticks += sample(
                &metrics,
                &format!("cannectors_runs_total{{pipeline=\"{name}\",outcome=\"held\"}}"),
            );
        }
    }
    assert!(
        held_ticks > 0.0,
        "ticks are left to the replica running them"
    );

    let mut logs = vec![killed_log];
    for replica in replicas {
        replica.signal("TERM");
        let (code, log) = replica.exit(Duration::from_secs(30));
        assert_eq!(code, Some(0), "{log}");
        logs.push(log);
    }

    for name in PIPELINES {
        // Each tick: run by one replica at most, and by exactly one unless a lease was held
        // through it (the killed run's, until it expired).
        let mut by_tick: BTreeMap<DateTime<Utc>, Vec<Seen>> = BTreeMap::new();
        for log in &logs {
            for (tick, seen) in ticks(log, name) {
                by_tick.entry(tick).or_default().push(seen);
            }
        }
        let runs = |seen: &Vec<Seen>| {
            seen.iter()
                .filter(|seen| matches!(seen, Seen::Ran { .. }))
                .count()
        };
        let ran: Vec<DateTime<Utc>> = by_tick
            .iter()
            .filter(|(_, seen)| runs(seen) > 0)
            .map(|(tick, _)| *tick)
            .collect();
        for (tick, seen) in &by_tick {
            assert!(runs(seen) <= 1, "{name}: tick {tick} ran twice: {seen:?}");
        }
        assert!(
            ran.len() >= 12,
            "{name}: a dozen ticks at least: {by_tick:#?}"
        );
        let (first, last) = (ran[0], ran[ran.len() - 1]);
        let mut tick = first;
        let mut not_run = Vec::new();
        while tick <= last {
            match by_tick.get(&tick) {
                Some(seen) if runs(seen) == 1 => {}
                Some(seen) => {
                    assert!(
                        seen.iter().any(|seen| matches!(
                            seen,
                            Seen::Skipped { message } if message.contains("held by")
                        )),
                        "{name}: tick {tick} ran nowhere, and no lease held it: {seen:?}"
                    );
                    not_run.push(tick);
                }
                None => panic!("{name}: no replica saw the tick {tick}: {by_tick:#?}"),
            }
            tick += TimeDelta::seconds(1);
        }
        // The epochs of the runs: one per run, never shared by two.
        let epochs: Vec<u64> = by_tick
            .values()
            .flatten()
            .filter_map(|seen| match seen {
                Seen::Ran { epoch } => Some(*epoch),
                Seen::Skipped { .. } => None,
            })
            .collect();
        let distinct: BTreeSet<u64> = epochs.iter().copied().collect();
        assert_eq!(distinct.len(), epochs.len(), "{name}: {epochs:?}");

        // Every record delivered, once but for one batch in flight at the kill.
        let batches = batches(&destination, name);
        let mut counts: BTreeMap<i64, usize> = BTreeMap::new();
        for id in batches.iter().flatten() {
            *counts.entry(*id).or_default() += 1;
        }
        assert_eq!(
            counts.keys().copied().collect::<Vec<_>>(),
            (1..=RECORDS).collect::<Vec<_>>(),
            "{name}: every record: {batches:?}"
        );
        let twice: Vec<i64> = counts
            .iter()
            .filter(|(_, count)| **count > 1)
            .map(|(id, _)| *id)
            .collect();
        assert!(
            counts.values().all(|count| *count <= 2),
            "{name}: {batches:?}"
        );
        if name == "alpha" {
            assert_eq!(
                twice, HELD_BATCH,
                "{name}: the batch in flight, again: {batches:?}"
            );
        } else {
            assert!(
                twice.is_empty() || batches.contains(&twice),
                "{name}: at most the batch in flight at the kill, again: {batches:?}"
            );
        }
        eprintln!(
            "{name}: {} ticks run, {} held by a lease and run nowhere ({not_run:?}), {} deliveries",
            ran.len(),
            not_run.len(),
            batches.len()
        );
    }
}
