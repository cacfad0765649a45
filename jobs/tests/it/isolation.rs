//! A job whose operator panics fails with the panic's message; the
//! process, and a job running beside it, go on.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use runnel_connectors::Connectors;
use runnel_engine::EngineError;
use runnel_engine::connector::{ConnectorFactory, SinkProvider, SourceProvider};
use runnel_engine::source::{BatchReader, Poll};
use runnel_jobs::{Cluster, JobError};

/// Every connector Runnel has, and `'connector' = 'panics'`, whose reader
/// panics on its first poll.
struct WithPanics(Connectors);

struct Panics;

struct PanickingReader;

impl BatchReader for PanickingReader {
    fn poll(&mut self) -> Result<Poll, EngineError> {
        panic!("a reader that panics");
    }
}

impl SourceProvider for Panics {
    fn reader(&self, _worker: usize, _peers: usize) -> Result<Box<dyn BatchReader>, EngineError> {
        Ok(Box::new(PanickingReader))
    }
}

impl ConnectorFactory for WithPanics {
    fn source(
        &self,
        options: BTreeMap<String, String>,
        schema: SchemaRef,
    ) -> Result<Arc<dyn SourceProvider>, EngineError> {
        if options.get("connector").map(String::as_str) == Some("panics") {
            return Ok(Arc::new(Panics));
        }
        self.0.source(options, schema)
    }

    fn sink(
        &self,
        options: BTreeMap<String, String>,
        schema: SchemaRef,
    ) -> Result<Arc<dyn SinkProvider>, EngineError> {
        self.0.sink(options, schema)
    }
}

#[test]
fn a_panicking_operator_fails_its_job_alone() {
    let connectors = Arc::new(WithPanics(Connectors::default()));
    let steady = runnel_jobs::submit_blocking(
        "CREATE TABLE n (id BIGINT) WITH ('connector' = 'datagen', 'rows-per-second' = '1000');
         CREATE TABLE out_table (id BIGINT) WITH ('connector' = 'blackhole');
         INSERT INTO out_table SELECT id FROM n;",
        connectors.clone(),
    )
    .unwrap();
    let steady = runnel_jobs::start(
        steady,
        Cluster::local(1),
        runnel_connectors::results_sink("blackhole").unwrap(),
        "steady",
        None,
    )
    .unwrap();
    for workers in [1, 3] {
        let broken = runnel_jobs::submit_blocking(
            "CREATE TABLE p (a BIGINT) WITH ('connector' = 'panics'); SELECT a + 1 FROM p",
            connectors.clone(),
        )
        .unwrap();
        let broken = runnel_jobs::start(
            broken,
            Cluster::local(workers),
            runnel_connectors::results_sink("blackhole").unwrap(),
            "broken",
            None,
        )
        .unwrap();
        let error = broken.wait().err().unwrap();
        assert!(matches!(error, JobError::Failed(_)));
        assert!(
            error.to_string().contains("a reader that panics"),
            "{error}"
        );
    }
    assert!(!steady.is_finished());
    steady.stop();
    steady.wait().unwrap();
}
