//! ORDER BY an event-time attribute: for any worker count and any arrival
//! order within the watermark's bound, the rows come out in (time, id)
//! order, every row once; with a LIMIT, the first of them.

use std::sync::{Arc, Mutex};

use datafusion::arrow::record_batch::RecordBatch;
use proptest::prelude::*;
use runnel_engine::EngineError;
use runnel_engine::connector::SinkProvider;
use runnel_engine::sink::BatchSink;
use runnel_engine::time::Watermark;

use crate::support::{assert_none_late, run_into, timestamp};

/// Rows as they arrive, in arrival order.
#[derive(Clone, Default)]
struct InOrder(Arc<Mutex<Vec<String>>>);

impl SinkProvider for InOrder {
    fn sink(&self, _worker: usize, _peers: usize) -> Result<Box<dyn BatchSink>, EngineError> {
        Ok(Box::new(self.clone()))
    }
}

impl BatchSink for InOrder {
    fn write(&mut self, batch: RecordBatch, _time: Watermark) -> Result<(), EngineError> {
        let text = runnel_connectors::print::render_rows("", &batch);
        self.0
            .lock()
            .unwrap()
            .extend(text.lines().map(|l| l[3..l.len() - 1].to_string()));
        Ok(())
    }
}

fn sorted_output(rows: &[(i64, i64)], workers: usize, limit: Option<usize>) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rows.jsonl");
    let text: String = rows
        .iter()
        .map(|(id, ts)| format!("{{\"id\": {id}, \"ts\": \"{}\"}}\n", timestamp(*ts)))
        .collect();
    std::fs::write(&path, text).unwrap();
    let script = format!(
        "CREATE TABLE t (id BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) \
         WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
         SELECT id FROM t ORDER BY ts, id{}",
        path.display(),
        limit.map_or(String::new(), |l| format!(" LIMIT {l}"))
    );
    let out = InOrder::default();
    let context = run_into(&script, workers, Arc::new(out.clone()));
    assert_none_late(&context);
    out.0.lock().unwrap().clone()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(8))]

    #[test]
    fn rows_come_out_in_event_time_order(
        jitter in proptest::collection::vec(0i64..900, 9000..20000),
        workers in 1usize..=3,
        limit in proptest::option::of(1usize..30000),
    ) {
        // Times rise by 1 ms a row, each moved back by under the 1 s bound:
        // out of order, never late.
        let rows: Vec<(i64, i64)> = jitter
            .iter()
            .enumerate()
            .map(|(i, j)| (i as i64, 1_586_937_600_000 + i as i64 - j))
            .collect();
        let mut expected: Vec<(i64, i64)> = rows.iter().map(|(id, ts)| (*ts, *id)).collect();
        expected.sort_unstable();
        let mut expected: Vec<String> = expected.iter().map(|(_, id)| id.to_string()).collect();
        if let Some(limit) = limit {
            expected.truncate(limit);
        }
        let got = sorted_output(&rows, workers, limit);
        let difference = crate::support::difference(&got, &expected);
        prop_assert!(difference.is_none(), "{}", difference.unwrap_or_default());
    }
}
