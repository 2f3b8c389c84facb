//! `store_for`: the one place a pipeline's configuration becomes a state store, and the store
//! the executor loads from and commits to.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use cannectors_connector::{Batch, BoxError, BoxFuture, Checkpoint, Record, Sink, Source};
use cannectors_runtime::{Executor, RunOptions, store_for};
use serde_json::json;

fn pipeline(state_persistence: &str) -> cannectors_config::Pipeline {
    let yaml = format!(
        "name: orders\ninput: {{type: httpPolling, endpoint: 'http://127.0.0.1:9/x'{state_persistence}}}\n\
         output: {{type: stdout}}\n"
    );
    cannectors_config::parse_str(&yaml, "orders.yaml", &|_| None)
        .unwrap()
        .pipeline
}

#[test]
fn the_store_is_named_after_the_pipeline_in_its_storage_path() {
    let dir = tempfile::tempdir().unwrap();
    let configured = pipeline(&format!(
        ", statePersistence: {{id: {{field: id, queryParam: after}}, storagePath: '{}'}}",
        dir.path().display()
    ));
    let store = store_for(&configured).unwrap();
    assert_eq!(store.pipeline(), "orders");
    assert_eq!(
        store.location(),
        dir.path().join("orders.json").display().to_string()
    );
}

#[test]
fn without_a_storage_path_the_store_is_in_the_default_directory_of_the_working_directory() {
    let cwd = std::env::current_dir().unwrap();
    for settings in [
        "",
        ", statePersistence: {id: {field: id, queryParam: after}}",
    ] {
        let store = store_for(&pipeline(settings)).unwrap();
        assert_eq!(
            store.location(),
            cwd.join(".cannectors-state/orders.json")
                .display()
                .to_string()
        );
    }
}

struct OnePage(Option<Vec<Record>>);

impl Source for OnePage {
    fn next_batch(&mut self) -> BoxFuture<'_, Result<Option<Batch>, BoxError>> {
        let page = self.0.take();
        Box::pin(async move {
            Ok(page.map(|records| Batch {
                records,
                checkpoint: Checkpoint::Advance,
                greatest: None,
                keys: None,
            }))
        })
    }
}

struct Accept;

impl Sink for Accept {
    fn write<'a>(&'a mut self, _: &'a [Record]) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async { Ok(()) })
    }
}

#[tokio::test]
async fn what_the_executor_commits_is_what_the_configured_store_loads_with_its_writer() {
    let dir = tempfile::tempdir().unwrap();
    let configured = pipeline(&format!(
        ", statePersistence: {{id: {{field: id, queryParam: after}}, storagePath: '{}'}}",
        dir.path().display()
    ));
    let pipeline_file = dir.path().join("orders.yaml");
    std::fs::write(&pipeline_file, "name: orders").unwrap();
    let executor = Executor::new(&configured)
        .unwrap()
        .with_pipeline_file(&pipeline_file);
    let mut source = OnePage(Some(vec![Record::from(json!({"id": 41}))]));
    executor
        .run_with(&mut source, &mut Accept, &RunOptions::default())
        .await
        .unwrap();

    let state = store_for(&configured)
        .unwrap()
        .load()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(state.id.unwrap().to_string(), "41");
    assert_eq!(
        state.pipeline_file.as_deref(),
        Some(pipeline_file.canonicalize().unwrap().as_path())
    );
}
