//! The exactly-once path through the binary: a database pipeline whose source table, destination
//! table and PostgreSQL state store are in one database, run by processes SIGKILLed at random
//! moments, again and again. After the kills and one clean run the destination holds every
//! source row exactly once: no loss, and no duplicate (the destination has no key that would
//! hide one).
//!
//! The delays are random but seeded; the seed is printed, and `CANNECTORS_KILL_SEED=N` replays
//! a failing loop.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use cannectors_test_support::postgres::{self, fresh_schema_blocking as fresh_schema};

use crate::support::{Workspace, output_within};

/// Source rows: enough that the killed runs leave work for the clean one, however fast the
/// machine.
const ROWS: i64 = 200_000;

/// The least kills that land while the process runs.
const KILLS: usize = 20;

/// A kill comes this long after the process started, or after its first batch was
/// committed, at most.
const LONGEST_DELAY_MS: u64 = 500;

/// Every query result of 50 rows is a transaction of its own (`batchSize: 1`), so that the
/// 200,000 rows take enough transactions for the kills to land between and inside them.
fn pipeline(url: &str) -> String {
    format!(
        r#"
name: events
input:
  type: database
  connectionString: "{url}"
  query: "SELECT id, name FROM events WHERE id > COALESCE($1::bigint, 0) ORDER BY id LIMIT 50"
  statePersistence:
    id: {{field: id}}
    store: postgres
    connectionString: "{url}"
    leaseTtlMs: 1000
    leaseRenewMs: 300
output:
  type: database
  connectionString: "{url}"
  query: "INSERT INTO delivered (id, name) VALUES ($1, $2)"
  parameters: [record.id, record.name]
  batchSize: 1
"#
    )
}

fn client(schema: &str) -> (tokio_postgres::Client, tokio::runtime::Runtime) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = runtime.block_on(async {
        let (client, connection) =
            tokio_postgres::connect(&postgres::url_in_schema(schema), tokio_postgres::NoTls)
                .await
                .unwrap();
        tokio::spawn(connection);
        client
    });
    (client, runtime)
}

/// Waits until no process holds the pipeline's lease (a killed one's expires after the TTL),
/// checking every 20 ms, for at most 10 seconds.
fn wait_for_free_lease(client: &tokio_postgres::Client, runtime: &tokio::runtime::Runtime) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let held: bool = runtime.block_on(async {
            // The first run creates the store's table.
            let created: bool = client
                .query_one("SELECT to_regclass('cannectors_state') IS NOT NULL", &[])
                .await
                .unwrap()
                .get(0);
            created
                && client
                    .query_opt(
                        "SELECT coalesce(lease_until > now(), false) FROM cannectors_state \
                     WHERE pipeline = 'events'",
                        &[],
                    )
                    .await
                    .unwrap()
                    .is_some_and(|row| row.get(0))
        });
        if !held {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the lease was not free within 10 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts a run; the receiver gets a message once the process logged its first committed
/// batch, and is closed when the process exits.
fn start(
    ws: &Workspace,
) -> (
    Child,
    mpsc::Receiver<()>,
    std::thread::JoinHandle<Vec<String>>,
) {
    let mut command: Command = ws.command(&["run", "events.yaml", "--once"]);
    let mut child = command
        .env("RUST_LOG", "info,cannectors_runtime=debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start cannectors");
    let stderr = child.stderr.take().unwrap();
    let (committed, first_commit) = mpsc::channel();
    let logged = std::thread::spawn(move || {
        let mut logged = Vec::new();
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if line.contains("batch committed") {
                let _ = committed.send(());
            }
            logged.push(line);
        }
        logged
    });
    (child, first_commit, logged)
}

#[test]
fn sigkilled_at_random_moments_the_destination_still_gets_every_row_exactly_once() {
    let schema = "e2e_exactly_once_kills";
    fresh_schema(
        schema,
        &format!(
            "CREATE TABLE events (id bigint PRIMARY KEY, name text NOT NULL);
             INSERT INTO events SELECT n, 'event ' || n FROM generate_series(1, {ROWS}) n;
             CREATE TABLE delivered (id bigint NOT NULL, name text NOT NULL);"
        ),
    );
    let url = postgres::url_in_schema(schema);
    let ws = Workspace::new();
    ws.write("events.yaml", &pipeline(&url));
    let validated = ws.run(&["validate", "events.yaml"]);
    assert!(
        validated.stdout.contains("delivery: exactly once"),
        "{validated:?}"
    );

    let seed = std::env::var("CANNECTORS_KILL_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |now| now.as_nanos() as u64)
        });
    println!("kill loop seed: {seed} (CANNECTORS_KILL_SEED={seed} replays it)");
    let mut random = fastrand::Rng::with_seed(seed);
    let (client, runtime) = client(schema);

    let deadline = Instant::now() + Duration::from_secs(240);
    let mut kills = 0;
    let mut delays = Vec::new();
    for _ in 0..3 * KILLS {
        if kills == KILLS {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{kills} kills in 4 minutes (seed {seed})"
        );
        wait_for_free_lease(&client, &runtime);
        let delay = Duration::from_millis(random.u64(0..LONGEST_DELAY_MS));
        let (mut child, first_commit, logged) = start(&ws);
        // One kill in four comes soon after the start (connecting, taking the lease, the first
        // batch); the others at a random moment after the first commit, however long the
        // start took on a loaded machine.
        if random.u8(0..4) != 0 {
            let _ = first_commit.recv_timeout(Duration::from_secs(30));
        }
        std::thread::sleep(delay);
        // A process that already ended (it found nothing new) is not a kill.
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            kills += 1;
            delays.push(delay.as_millis());
        }
        let status = child.wait().unwrap();
        let logged = logged.join().unwrap();
        if status.code().is_some() {
            println!("ended by itself ({status}): {:?}", logged.last());
        }
    }
    println!("killed after (ms): {delays:?}");
    assert_eq!(kills, KILLS, "seed {seed}");
    let (copied, committed): (i64, Option<i64>) = runtime.block_on(async {
        let copied = client
            .query_one("SELECT count(*) FROM delivered", &[])
            .await
            .unwrap()
            .get(0);
        let committed = client
            .query_opt(
                "SELECT (state->>'id')::bigint FROM cannectors_state WHERE pipeline = 'events'",
                &[],
            )
            .await
            .unwrap()
            .and_then(|row| row.get(0));
        (copied, committed)
    });
    println!("after the kills: {copied} rows delivered, state at id {committed:?}");
    assert!(
        copied > 0 && copied < ROWS,
        "the killed runs delivered some rows and left work for the clean run (seed {seed})"
    );

    wait_for_free_lease(&client, &runtime);
    let last = output_within(
        ws.command(&["run", "events.yaml", "--once"]),
        Duration::from_secs(240),
    );
    assert_eq!(last.code, Some(0), "{last:?}");

    let (delivered, distinct, missing_or_changed): (i64, i64, i64) = runtime.block_on(async {
        let counts = client
            .query_one("SELECT count(*), count(DISTINCT id) FROM delivered", &[])
            .await
            .unwrap();
        let differing = client
            .query_one(
                "SELECT count(*) FROM events e FULL JOIN delivered d USING (id) \
                 WHERE e.id IS NULL OR d.id IS NULL OR e.name <> d.name",
                &[],
            )
            .await
            .unwrap();
        (counts.get(0), counts.get(1), differing.get(0))
    });
    assert_eq!(
        (delivered, distinct, missing_or_changed),
        (ROWS, ROWS, 0),
        "every source row once, none missing, none twice (seed {seed})"
    );
}
