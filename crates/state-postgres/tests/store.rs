//! The PostgreSQL store against a real server (`cargo xtask pg -- cargo test -p
//! cannectors-state-postgres`): each test works in a schema of its own, where the store creates
//! its tables on first use.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;
use std::time::Duration;

use cannectors_state::{State, StateError, StateStore};
use cannectors_state_postgres::{PgLease, PgStore};
use cannectors_test_support::postgres;
use chrono::{DateTime, TimeDelta, Utc};
use tokio_postgres::Client;

/// A fresh schema `name` and a connection whose search path is that schema.
async fn schema(name: &str) -> Client {
    postgres::fresh_schema(name, "").await
}

fn store(schema: &str, pipeline: &str) -> PgStore {
    PgStore::new(pipeline, &postgres::url_in_schema(schema)).unwrap()
}

/// A store whose leases last `ttl` and are never renewed in the test's time: a holder that
/// stopped answering, as seen by the others.
fn silent_holder(schema: &str, pipeline: &str, ttl: Duration) -> PgStore {
    store(schema, pipeline)
        .with_lease_ttl(ttl)
        .with_renewal(Duration::from_secs(3600))
        .with_owner("silent-replica")
}

fn state(timestamp: &str) -> State {
    State::seed(Some(timestamp), None, None).unwrap()
}

async fn row_state(client: &Client, pipeline: &str) -> Option<String> {
    client
        .query_one(
            "SELECT state::text FROM cannectors_state WHERE pipeline = $1",
            &[&pipeline],
        )
        .await
        .unwrap()
        .get(0)
}

/// Waits until `condition` holds, checking every 20 ms, for at most 10 seconds.
async fn eventually<F: Future<Output = bool>>(mut condition: impl FnMut() -> F) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !condition().await {
        assert!(tokio::time::Instant::now() < deadline, "not within 10 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn lease_expired(store: &PgStore) -> bool {
    !store.lease().await.unwrap().unwrap().held
}

#[tokio::test]
async fn the_cursors_are_read_without_the_identities_and_the_state_with_them() {
    let _client = schema("state_pg_cursors").await;
    let store = store("state_pg_cursors", "events");
    assert_eq!(store.load_cursors().await.unwrap(), None);
    let mut lock = store.lock().await.unwrap();
    let mut state = state("2026-01-01T10:00:00Z");
    let at = DateTime::parse_from_rfc3339("2026-01-01T09:59:00Z")
        .unwrap()
        .to_utc();
    for identity in 0..100 {
        state.identities.insert(at, identity);
    }
    lock.commit(&state).await.unwrap();

    let cursors = store.load_cursors().await.unwrap().unwrap();
    assert_eq!(cursors.timestamp, state.timestamp);
    assert!(cursors.identities.is_empty());
    assert_eq!(
        store.load().await.unwrap().unwrap().identities,
        state.identities
    );
    lock.release().await.unwrap();
}

#[tokio::test]
async fn a_commit_is_loaded_back_as_the_state_crate_encodes_it() {
    let client = schema("state_pg_round_trip").await;
    let store = store("state_pg_round_trip", "events").with_owner("replica-a");
    assert_eq!(store.load().await.unwrap(), None);
    let mut lock = store.lock().await.unwrap();
    assert_eq!(
        store.load().await.unwrap(),
        None,
        "a lease alone is no state"
    );

    let mut committed = State::seed(Some("2026-01-01T10:00:00Z"), Some("42"), Some("7")).unwrap();
    lock.commit(&committed).await.unwrap();
    let loaded = store.load().await.unwrap().unwrap();
    assert_eq!(loaded.timestamp, committed.timestamp);
    assert_eq!(loaded.id, committed.id);
    assert_eq!(loaded.offset, Some(7));
    assert_eq!(loaded.pipeline.as_deref(), Some("events"));
    assert!(loaded.updated_at.is_some());

    committed.offset = Some(8);
    lock.commit(&committed).await.unwrap();
    let text = row_state(&client, "events").await.unwrap();
    let stored: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(stored["offset"], 8);
    assert_eq!(stored["timestamp"], "2026-01-01T10:00:00Z");
    lock.release().await.unwrap();

    let lease = store.lease().await.unwrap().unwrap();
    assert_eq!(
        (lease.owner.as_deref(), lease.epoch, lease.held),
        (Some("replica-a"), 1, false)
    );
}

#[tokio::test]
async fn stores_starting_together_create_the_tables_once() {
    let client = schema("state_pg_start_together").await;
    let stores: Vec<PgStore> = (0..6)
        .map(|n| store("state_pg_start_together", &format!("pipeline-{n}")))
        .collect();
    let loads = stores.iter().map(|store| store.load());
    for loaded in futures_util::future::join_all(loads).await {
        assert_eq!(loaded.unwrap(), None);
    }
    let version: i64 = client
        .query_one(
            "SELECT version FROM cannectors_schema_version WHERE component = 'state'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(version, PgStore::schema_version());
}

#[tokio::test]
async fn of_two_owners_taking_the_lease_at_once_exactly_one_wins() {
    schema("state_pg_two_owners").await;
    let a = store("state_pg_two_owners", "orders").with_owner("replica-a");
    let b = store("state_pg_two_owners", "orders").with_owner("replica-b");
    // Connected and migrated first, so that the two acquisitions race each other.
    a.load().await.unwrap();
    b.load().await.unwrap();
    let (first, second) = tokio::join!(a.lock(), b.lock());
    let (winner, loser, _lock, error) = match (first, second) {
        (Ok(lock), Err(error)) => ("replica-a", "replica-b", lock, error),
        (Err(error), Ok(lock)) => ("replica-b", "replica-a", lock, error),
        (first, second) => panic!("exactly one must win: {first:?} / {second:?}"),
    };
    match &error {
        StateError::Held { owner, .. } => assert_eq!(owner, winner),
        other => panic!("expected Held, got {other:?}"),
    }
    let message = error.to_string();
    assert!(
        message.starts_with(&format!(
            "pipeline `orders` is running elsewhere: {winner} holds its lease in table \
             cannectors_state of postgres://"
        )),
        "{message}"
    );
    assert!(message.contains(" until 20"), "{message}");
    assert!(!message.contains(loser), "{message}");
    let lease = a.lease().await.unwrap().unwrap();
    assert_eq!(
        (lease.owner.as_deref(), lease.epoch, lease.held),
        (Some(winner), 1, true)
    );
}

#[tokio::test]
async fn an_expired_lease_is_taken_over_with_the_next_epoch() {
    schema("state_pg_expiry").await;
    let silent = silent_holder("state_pg_expiry", "orders", Duration::from_millis(600));
    let _stalled = silent.lock().await.unwrap();
    let other = store("state_pg_expiry", "orders").with_owner("replica-b");
    assert!(matches!(other.lock().await, Err(StateError::Held { .. })));

    eventually(|| lease_expired(&other)).await;
    let _taken = other.lock().await.unwrap();
    let lease = other.lease().await.unwrap().unwrap();
    assert_eq!(
        (lease.owner.as_deref(), lease.epoch, lease.held),
        (Some("replica-b"), 2, true)
    );
}

#[tokio::test]
async fn a_commit_of_a_fenced_owner_is_refused_and_leaves_the_row_as_it_was() {
    let client = schema("state_pg_fenced").await;
    let silent = silent_holder("state_pg_fenced", "orders", Duration::from_millis(600));
    let mut stale = silent.lock().await.unwrap();
    stale.commit(&state("2026-01-01T00:00:00Z")).await.unwrap();

    let other = store("state_pg_fenced", "orders").with_owner("replica-b");
    eventually(|| lease_expired(&other)).await;
    let mut current = other.lock().await.unwrap();
    current
        .commit(&state("2026-02-01T00:00:00Z"))
        .await
        .unwrap();
    let before = row_state(&client, "orders").await;

    let error = stale
        .commit(&state("2026-01-02T00:00:00Z"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, StateError::Fenced { epoch: 1, .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().starts_with(
            "pipeline `orders` lost its lease in table cannectors_state of postgres://"
        ),
        "{error}"
    );
    assert!(
        error.to_string().ends_with(
            "another process took it over (this process held epoch 1, which is no longer \
             current); nothing more is committed or delivered by this run"
        ),
        "{error}"
    );
    assert!(matches!(
        stale.reset().await,
        Err(StateError::Fenced { .. })
    ));
    assert_eq!(row_state(&client, "orders").await, before);
    // The stale guard giving its lease back does not free the new holder's.
    stale.release().await.unwrap();
    assert!(other.lease().await.unwrap().unwrap().held);
    current
        .commit(&state("2026-02-02T00:00:00Z"))
        .await
        .unwrap();
}

#[tokio::test]
async fn renewal_keeps_a_lease_alive_past_its_ttl() {
    schema("state_pg_renewal").await;
    let holder = store("state_pg_renewal", "orders")
        .with_lease_ttl(Duration::from_millis(1500))
        .with_owner("replica-a");
    assert_eq!(holder.renew_every(), Duration::from_millis(500));
    let mut lock = holder.lock().await.unwrap();
    let other = store("state_pg_renewal", "orders").with_owner("replica-b");
    // Three TTLs: without renewal the lease would have expired twice over.
    let deadline = tokio::time::Instant::now() + Duration::from_millis(4500);
    while tokio::time::Instant::now() < deadline {
        match other.lock().await {
            Err(StateError::Held { owner, .. }) => assert_eq!(owner, "replica-a"),
            other => panic!("the renewed lease must stay held: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    lock.commit(&state("2026-01-01T00:00:00Z")).await.unwrap();
    assert_eq!(holder.lease().await.unwrap().unwrap().epoch, 1);
}

#[tokio::test]
async fn a_released_lease_is_taken_at_once_and_a_dropped_one_soon_after() {
    schema("state_pg_release").await;
    let a = store("state_pg_release", "orders").with_owner("replica-a");
    let b = store("state_pg_release", "orders").with_owner("replica-b");
    a.lock().await.unwrap().release().await.unwrap();
    let lock = b.lock().await.unwrap();
    assert!(matches!(a.lock().await, Err(StateError::Held { .. })));
    drop(lock);
    eventually(|| async { a.lock().await.is_ok() }).await;
    assert_eq!(a.lease().await.unwrap().unwrap().epoch, 3);
}

#[tokio::test]
async fn a_corrupt_row_stops_with_the_pipeline_and_the_table_named_and_is_never_overwritten() {
    let client = schema("state_pg_corrupt").await;
    let store = store("state_pg_corrupt", "orders");
    store.lock().await.unwrap().release().await.unwrap();
    client
        .batch_execute(
            "UPDATE cannectors_state SET state = '{\"timestamps\": \"2026-01-01T00:00:00Z\"}' \
             WHERE pipeline = 'orders'",
        )
        .await
        .unwrap();
    let before = row_state(&client, "orders").await;

    let error = store.load().await.unwrap_err();
    let message = error.to_string();
    assert!(
        matches!(error, StateError::CorruptRecord { .. }),
        "{error:?}"
    );
    assert!(
        message
            .starts_with("the state of pipeline `orders` in table cannectors_state of postgres://"),
        "{message}"
    );
    assert!(message.contains("unknown key `timestamps`"), "{message}");
    assert!(
        message.ends_with(
            "Nothing was changed: fix it by hand, or remove it to start over from scratch"
        ),
        "{message}"
    );
    let mut lock = store.lock().await.unwrap();
    let refused = lock
        .commit(&state("2026-03-01T00:00:00Z"))
        .await
        .unwrap_err();
    assert_eq!(refused.to_string(), message);
    assert_eq!(row_state(&client, "orders").await, before);

    assert!(lock.reset().await.unwrap(), "reset removes a bad state");
    assert_eq!(store.load().await.unwrap(), None);
}

#[tokio::test]
async fn an_unreachable_store_is_a_clear_error() {
    // A port nothing listens on: connecting is refused at once.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let store = PgStore::new(
        "orders",
        &format!("postgres://app:secret@127.0.0.1:{port}/app?connect_timeout=2"),
    )
    .unwrap();
    for error in [
        store.load().await.unwrap_err(),
        store.lock().await.unwrap_err(),
    ] {
        let message = error.to_string();
        assert!(matches!(error, StateError::Unavailable { .. }), "{error:?}");
        assert!(
            message.starts_with(&format!(
                "cannot use the state store table cannectors_state of \
                 postgres://app@127.0.0.1:{port}/app for pipeline `orders`: cannot connect: "
            )),
            "{message}"
        );
        assert!(message.ends_with("; nothing was changed"), "{message}");
        assert!(!message.contains("secret"), "{message}");
    }
}

#[tokio::test]
async fn tables_of_a_newer_version_are_refused() {
    let client = schema("state_pg_newer").await;
    store("state_pg_newer", "orders").load().await.unwrap();
    client
        .batch_execute("UPDATE cannectors_schema_version SET version = 99")
        .await
        .unwrap();
    let error = store("state_pg_newer", "orders").load().await.unwrap_err();
    assert!(matches!(
        error,
        StateError::SchemaTooNew {
            found: 99,
            known: 2,
            ..
        }
    ));
    assert!(
        error.to_string().ends_with(
            "has schema version 99, newer than version 2 that this program knows; run a newer \
             version of the program (nothing was changed)"
        ),
        "{error}"
    );
}

#[tokio::test]
async fn the_store_connects_with_verified_tls_when_the_url_asks_for_it() {
    let client = schema("state_pg_tls").await;
    let url = format!(
        "{}&sslmode=verify-full&sslrootcert={}&application_name=state_pg_tls_probe",
        postgres::url_in_schema("state_pg_tls"),
        postgres::ca_file()
    );
    let store = PgStore::new("orders", &url).unwrap();
    let mut lock = store.lock().await.unwrap();
    lock.commit(&state("2026-01-01T00:00:00Z")).await.unwrap();
    let row = client
        .query_one(
            "SELECT bool_and(s.ssl), count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a \
             USING (pid) WHERE a.application_name = 'state_pg_tls_probe'",
            &[],
        )
        .await
        .unwrap();
    let (encrypted, connections): (bool, i64) = (row.get(0), row.get(1));
    assert_eq!((encrypted, connections), (true, 1));
}

#[tokio::test]
async fn a_server_certificate_that_cannot_be_verified_is_refused_with_the_way_out() {
    schema("state_pg_tls_unverified").await;
    // The test CA is not among the Mozilla roots.
    let url = format!(
        "{}&sslmode=require",
        postgres::url_in_schema("state_pg_tls_unverified")
    );
    let error = PgStore::new("orders", &url)
        .unwrap()
        .load()
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, StateError::Unavailable { .. }), "{error:?}");
    assert!(message.contains("invalid peer certificate"), "{message}");
    assert!(
        message.contains(
            "add sslrootcert=/path/to/ca.pem to the connection string; nothing was changed"
        ),
        "{message}"
    );
}

#[tokio::test]
async fn a_row_changed_by_hand_between_two_commits_is_checked_again_before_it_is_replaced() {
    let client = schema("state_pg_changed").await;
    let store = store("state_pg_changed", "orders");
    let mut lock = store.lock().await.unwrap();
    lock.commit(&state("2026-01-01T00:00:00Z")).await.unwrap();
    lock.commit(&state("2026-01-02T00:00:00Z")).await.unwrap();
    client
        .batch_execute("UPDATE cannectors_state SET state = '[]' WHERE pipeline = 'orders'")
        .await
        .unwrap();

    let error = lock
        .commit(&state("2026-01-03T00:00:00Z"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, StateError::CorruptRecord { .. }),
        "{error:?}"
    );
    assert_eq!(row_state(&client, "orders").await.as_deref(), Some("[]"));

    // Fixed by hand: the next commit goes through.
    client
        .batch_execute(
            "UPDATE cannectors_state SET state = '{\"offset\": 1}' WHERE pipeline = 'orders'",
        )
        .await
        .unwrap();
    lock.commit(&state("2026-01-04T00:00:00Z")).await.unwrap();
    lock.commit(&state("2026-01-05T00:00:00Z")).await.unwrap();
    let loaded = store.load().await.unwrap().unwrap();
    assert_eq!(
        loaded.timestamp.unwrap().to_rfc3339_utc(),
        "2026-01-05T00:00:00Z"
    );
}

#[tokio::test]
async fn a_lease_written_by_hand_without_an_owner_still_keeps_others_out() {
    let client = schema("state_pg_no_owner").await;
    let store = store("state_pg_no_owner", "orders");
    store.load().await.unwrap();
    client
        .batch_execute(
            "INSERT INTO cannectors_state (pipeline, lease_until, epoch) \
             VALUES ('orders', now() + interval '1 minute', 5)",
        )
        .await
        .unwrap();
    match store.lock().await {
        Err(StateError::Held { owner, .. }) => assert_eq!(owner, "an unnamed process"),
        other => panic!("expected Held, got {other:?}"),
    }
}

fn tick(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

#[tokio::test]
async fn a_tick_one_process_took_is_refused_to_the_others_and_the_next_tick_is_not() {
    schema("state_pg_ticks").await;
    let a = store("state_pg_ticks", "orders").with_owner("replica-a");
    let b = store("state_pg_ticks", "orders").with_owner("replica-b");
    let due = tick("2026-05-04T10:00:05Z");
    // A run that ended well before the other process woke up for the same tick.
    a.lock_for_tick(due).await.unwrap().release().await.unwrap();
    assert_eq!(b.lease().await.unwrap().unwrap().last_tick, Some(due));

    let error = b.lock_for_tick(due).await.unwrap_err();
    match &error {
        StateError::TickTaken { owner, tick, .. } => {
            assert_eq!((owner.as_str(), *tick), ("replica-a", due));
        }
        other => panic!("expected TickTaken, got {other:?}"),
    }
    assert!(
        error.to_string().starts_with(
            "the run of pipeline `orders` due at 2026-05-04T10:00:05.000Z was already taken by \
             replica-a (recorded in table cannectors_state of postgres://"
        ),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .ends_with("); each tick runs on one process only"),
        "{error}"
    );
    // An earlier tick, from a process whose clock runs behind, is refused too.
    assert!(matches!(
        b.lock_for_tick(tick("2026-05-04T10:00:04Z")).await,
        Err(StateError::TickTaken { .. })
    ));
    assert_eq!(b.lease().await.unwrap().unwrap().epoch, 1, "nothing taken");

    let next = b.lock_for_tick(tick("2026-05-04T10:00:06Z")).await.unwrap();
    next.release().await.unwrap();
    assert_eq!(b.lease().await.unwrap().unwrap().epoch, 2);
    // A run outside the schedule (`run --once`) does not look at ticks, nor move them.
    a.lock().await.unwrap().release().await.unwrap();
    assert!(matches!(
        a.lock_for_tick(tick("2026-05-04T10:00:06Z")).await,
        Err(StateError::TickTaken { .. })
    ));
}

#[tokio::test]
async fn a_tick_whose_lease_is_still_held_is_held_not_taken() {
    schema("state_pg_tick_held").await;
    let a = store("state_pg_tick_held", "orders").with_owner("replica-a");
    let b = store("state_pg_tick_held", "orders").with_owner("replica-b");
    let due = tick("2026-05-04T10:00:05Z");
    let _running = a.lock_for_tick(due).await.unwrap();
    match b.lock_for_tick(due).await {
        Err(StateError::Held { owner, .. }) => assert_eq!(owner, "replica-a"),
        other => panic!("expected Held, got {other:?}"),
    }
}

#[tokio::test]
async fn a_tick_far_ahead_of_the_database_clock_keeps_nobody_from_theirs() {
    schema("state_pg_tick_ahead").await;
    let ahead = store("state_pg_tick_ahead", "orders").with_owner("clock-a-day-ahead");
    let other = store("state_pg_tick_ahead", "orders").with_owner("replica-b");
    let now = Utc::now();
    ahead
        .lock_for_tick(now + TimeDelta::days(1))
        .await
        .unwrap()
        .release()
        .await
        .unwrap();
    other
        .lock_for_tick(now)
        .await
        .unwrap()
        .release()
        .await
        .unwrap();
    assert_eq!(other.lease().await.unwrap().unwrap().epoch, 2);
}

#[tokio::test]
async fn tables_of_version_1_are_upgraded_and_keep_their_rows() {
    let client = schema("state_pg_upgrade").await;
    // The tables as the first version of the program made them, with a committed state.
    client
        .batch_execute(
            "CREATE TABLE cannectors_schema_version (component text PRIMARY KEY, \
                 version bigint NOT NULL, migrated_at timestamptz NOT NULL DEFAULT now()); \
             INSERT INTO cannectors_schema_version (component, version) VALUES ('state', 1); \
             CREATE TABLE cannectors_state (pipeline text PRIMARY KEY, state jsonb, owner text, \
                 lease_until timestamptz, epoch bigint NOT NULL DEFAULT 0, \
                 updated_at timestamptz); \
             INSERT INTO cannectors_state (pipeline, state, owner, epoch) \
                 VALUES ('orders', '{\"id\": 41}', 'replica-a', 3);",
        )
        .await
        .unwrap();
    let store = store("state_pg_upgrade", "orders").with_owner("replica-b");
    let loaded = store.load().await.unwrap().unwrap();
    assert_eq!(loaded.id, State::seed(None, Some("41"), None).unwrap().id);
    store
        .lock_for_tick(tick("2026-05-04T10:00:05Z"))
        .await
        .unwrap()
        .release()
        .await
        .unwrap();
    assert_eq!(store.lease().await.unwrap().unwrap().epoch, 4);
    let version: i64 = client
        .query_one(
            "SELECT version FROM cannectors_schema_version WHERE component = 'state'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(version, 2);
}

/// The lease behind a lock taken from a [`PgStore`].
fn lease(lock: &mut Box<dyn cannectors_state::StateLock>) -> &mut PgLease {
    lock.as_any_mut()
        .and_then(|any| any.downcast_mut::<PgLease>())
        .unwrap()
}

async fn rows_of(client: &Client) -> i64 {
    client
        .query_one("SELECT count(*) FROM delivered", &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn a_commit_inside_a_transaction_is_durable_with_it_and_only_with_it() {
    let mut client = schema("state_pg_commit_in").await;
    client
        .batch_execute("CREATE TABLE delivered (id bigint)")
        .await
        .unwrap();
    let store = store("state_pg_commit_in", "events");
    let mut lock = store.lock().await.unwrap();
    lock.commit(&state("2026-01-01T00:00:00Z")).await.unwrap();

    // Rolled back: neither the row nor the state.
    let tx = client.transaction().await.unwrap();
    tx.execute("INSERT INTO delivered VALUES (1)", &[])
        .await
        .unwrap();
    lease(&mut lock)
        .commit_in(&tx, &state("2026-01-02T00:00:00Z"))
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(rows_of(&client).await, 0);
    assert!(
        row_state(&client, "events")
            .await
            .unwrap()
            .contains("2026-01-01T00:00:00Z")
    );

    // Committed: both; and a plain commit after the rolled-back one still lands.
    let tx = client.transaction().await.unwrap();
    tx.execute("INSERT INTO delivered VALUES (1)", &[])
        .await
        .unwrap();
    lease(&mut lock)
        .commit_in(&tx, &state("2026-01-03T00:00:00Z"))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(rows_of(&client).await, 1);
    let loaded = store.load().await.unwrap().unwrap();
    assert_eq!(loaded, {
        let mut expected = state("2026-01-03T00:00:00Z");
        expected.pipeline = loaded.pipeline.clone();
        expected.updated_at = loaded.updated_at;
        expected
    });
    lock.commit(&state("2026-01-04T00:00:00Z")).await.unwrap();
    assert!(
        row_state(&client, "events")
            .await
            .unwrap()
            .contains("2026-01-04T00:00:00Z")
    );
}

#[tokio::test]
async fn a_fenced_commit_inside_a_transaction_writes_nothing_and_the_batch_rolls_back() {
    let mut client = schema("state_pg_commit_in_fenced").await;
    client
        .batch_execute("CREATE TABLE delivered (id bigint)")
        .await
        .unwrap();
    let silent = silent_holder(
        "state_pg_commit_in_fenced",
        "orders",
        Duration::from_millis(600),
    );
    let mut stale = silent.lock().await.unwrap();
    stale.commit(&state("2026-01-01T00:00:00Z")).await.unwrap();
    let other = store("state_pg_commit_in_fenced", "orders").with_owner("replica-b");
    eventually(|| lease_expired(&other)).await;
    let mut current = other.lock().await.unwrap();
    current
        .commit(&state("2026-02-01T00:00:00Z"))
        .await
        .unwrap();
    let before = row_state(&client, "orders").await;

    let tx = client.transaction().await.unwrap();
    tx.execute("INSERT INTO delivered VALUES (1)", &[])
        .await
        .unwrap();
    let error = lease(&mut stale)
        .commit_in(&tx, &state("2026-01-02T00:00:00Z"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, StateError::Fenced { epoch: 1, .. }),
        "{error:?}"
    );
    tx.rollback().await.unwrap();
    assert_eq!(rows_of(&client).await, 0);
    assert_eq!(row_state(&client, "orders").await, before);
}
