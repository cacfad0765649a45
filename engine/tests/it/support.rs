//! Running small windowed jobs, and the batch oracle they are checked against.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Int64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::util::display::array_value_to_string;
use datafusion::logical_expr::AggregateUDF;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::aggregate::{AggregateExprBuilder, AggregateFunctionExpr};
use datafusion::physical_expr::expressions::col;
use datafusion::prelude::SessionContext;
use runnel_engine::context::JobContext;
use runnel_engine::runtime::{Cluster, run};
use runnel_engine::sink::{CollectSink, sink};
use runnel_engine::source::{EventTime, MemoryReader, source};
use runnel_engine::window::kind::WindowKind;
use runnel_engine::window::operator::window_aggregate;
use runnel_engine::window::state::WindowAggregate;
use timely::dataflow::ProbeHandle;

/// A row of the test stream: key, event time (ms), value.
pub type Row = (i64, i64, i64);

pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("k", DataType::Int64, false),
        Field::new("ts", DataType::Int64, false),
        Field::new("v", DataType::Int64, false),
    ]))
}

pub fn batch_of(rows: &[Row]) -> RecordBatch {
    let column = |f: fn(&Row) -> i64| {
        Arc::new(Int64Array::from(rows.iter().map(f).collect::<Vec<_>>())) as ArrayRef
    };
    RecordBatch::try_new(
        schema(),
        vec![column(|r| r.0), column(|r| r.1), column(|r| r.2)],
    )
    .expect("batch")
}

fn aggregate(fun: Arc<AggregateUDF>, name: &str, distinct: bool) -> Arc<AggregateFunctionExpr> {
    let schema = schema();
    let mut arg: Arc<dyn PhysicalExpr> = col("v", &schema).expect("v");
    if fun.name() == "avg" {
        // DataFusion's type coercion does this for SQL: AVG works on floats.
        arg = datafusion::physical_expr::expressions::cast(arg, &schema, DataType::Float64)
            .expect("cast");
    }
    Arc::new(
        AggregateExprBuilder::new(fun, vec![arg])
            .schema(schema)
            .alias(name)
            .with_distinct(distinct)
            .build()
            .expect("aggregate"),
    )
}

/// `COUNT(v), SUM(v), MAX(v), MIN(v), AVG(v), COUNT(DISTINCT v)` per key and window.
pub fn spec(window: WindowKind) -> WindowAggregate {
    use datafusion::functions_aggregate::{
        average::avg_udaf,
        count::count_udaf,
        min_max::{max_udaf, min_udaf},
        sum::sum_udaf,
    };
    let schema = schema();
    let aggregates = vec![
        aggregate(count_udaf(), "cnt", false),
        aggregate(sum_udaf(), "total", false),
        aggregate(max_udaf(), "hi", false),
        aggregate(min_udaf(), "lo", false),
        aggregate(avg_udaf(), "mean", false),
        aggregate(count_udaf(), "distinct_values", true),
    ];
    WindowAggregate {
        window,
        time: col("ts", &schema).expect("ts"),
        keys: vec![(col("k", &schema).expect("k"), "k".to_string())],
        filters: vec![None; aggregates.len()],
        aggregates,
        input_schema: schema,
    }
}

pub struct JobOutput {
    pub rows: Vec<String>,
    pub late_records: u64,
}

/// Runs the window aggregation over `batches` (in this arrival order, dealt
/// round-robin to the workers) and returns its rows, sorted.
pub fn run_windowed(
    batches: Vec<RecordBatch>,
    window: WindowKind,
    workers: usize,
    bound: i64,
) -> JobOutput {
    let batches = Arc::new(batches);
    let spec = Arc::new(spec(window));
    let collector = CollectSink::default();
    let context = Arc::new(JobContext::default());
    let output = collector.clone();
    run(
        &Cluster::local(workers),
        context.clone(),
        move |worker, context| {
            let (index, peers) = (worker.index(), worker.peers());
            let reader = Box::new(MemoryReader::new(batches.clone(), index, peers));
            let sink = Box::new(output.clone());
            windowed_dataflow(worker, context, reader, spec.clone(), bound, sink)
        },
    )
    .expect("job runs");
    let late_records = context
        .late_records
        .load(std::sync::atomic::Ordering::Relaxed);
    let mut rows = Vec::new();
    for (time, batch) in collector.take() {
        let ends = batch.column(1);
        for row in 0..batch.num_rows() {
            let end = datafusion::arrow::compute::cast(&ends.slice(row, 1), &DataType::Int64)
                .expect("cast");
            let end = end
                .as_any()
                .downcast_ref::<Int64Array>()
                .expect("int")
                .value(0);
            // Rows travel no later than their window_time; fixed windows
            // emit exactly then, sessions fired together at the earliest.
            if matches!(window, WindowKind::Session { .. }) {
                assert!(
                    time < end,
                    "session row at {time} after its window_time {}",
                    end - 1
                );
            } else {
                assert_eq!(
                    time,
                    end - 1,
                    "a window's rows are emitted at window_end - 1"
                );
            }
        }
        rows.extend(render(&batch, true));
    }
    rows.sort();
    JobOutput { rows, late_records }
}

/// One worker's windowed job: `reader`'s rows, their event time
/// `spec.time` bounded by `bound`, aggregated by `spec` into `out`.
pub fn windowed_dataflow(
    worker: &mut timely::worker::Worker,
    context: Arc<JobContext>,
    reader: Box<dyn runnel_engine::source::BatchReader>,
    spec: Arc<WindowAggregate>,
    bound: i64,
    out: Box<dyn runnel_engine::sink::BatchSink>,
) -> Result<ProbeHandle<i64>, runnel_engine::EngineError> {
    let event_time = EventTime {
        expr: spec.time.clone(),
        max_out_of_orderness: bound,
        processing_time: false,
        idle_timeout: None,
        drop_after: None,
    };
    worker.dataflow::<i64, _, _>(move |scope| {
        let stream = source(
            scope,
            "memory",
            reader,
            Some(event_time),
            None,
            context.clone(),
        );
        let windows = window_aggregate(stream, spec, context.clone())?;
        let probe = ProbeHandle::new();
        sink(windows, "out", out, context, &probe);
        Ok(probe)
    })
}

/// Every window a row belongs to, worked out independently of the engine's
/// window code.
pub fn windows_of(window: WindowKind, ts: i64) -> Vec<(i64, i64)> {
    match window {
        WindowKind::Tumble { size } => {
            let start = ts.div_euclid(size) * size;
            vec![(start, start + size)]
        }
        WindowKind::Hop { slide, size } => {
            let mut out = Vec::new();
            let mut start = ts.div_euclid(slide) * slide;
            while start > ts - size {
                out.push((start, start + size));
                start -= slide;
            }
            out
        }
        WindowKind::Session { .. } => unreachable!("sessions depend on every row; see sessions_of"),
        WindowKind::Cumulate { step, max } => {
            let start = ts.div_euclid(max) * max;
            (1..=max / step)
                .map(|j| (start, start + j * step))
                .filter(|&(_, end)| ts < end)
                .collect()
        }
    }
}

/// Each row's session, per key: rows at most `gap` apart chain together
/// (Flink merges session windows that touch).
fn sessions_of(rows: &[Row], gap: i64) -> Vec<(i64, i64)> {
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by_key(|&i| (rows[i].0, rows[i].1));
    let mut assigned = vec![(0, 0); rows.len()];
    let mut group: Vec<usize> = Vec::new();
    let flush = |group: &mut Vec<usize>, assigned: &mut Vec<(i64, i64)>| {
        if let (Some(&first), Some(&last)) = (group.first(), group.last()) {
            for &i in group.iter() {
                assigned[i] = (rows[first].1, rows[last].1 + gap);
            }
        }
        group.clear();
    };
    for &i in &order {
        if let Some(&last) = group.last()
            && (rows[last].0 != rows[i].0 || rows[i].1 > rows[last].1 + gap)
        {
            flush(&mut group, &mut assigned);
        }
        group.push(i);
    }
    flush(&mut group, &mut assigned);
    assigned
}

/// The same aggregation computed in batch by DataFusion over every row.
pub fn oracle(rows: &[Row], window: WindowKind) -> Vec<String> {
    let mut starts = Vec::new();
    let mut ends = Vec::new();
    let mut keys = Vec::new();
    let mut values = Vec::new();
    let sessions = match window {
        WindowKind::Session { gap } => Some(sessions_of(rows, gap)),
        _ => None,
    };
    for (row, &(k, ts, v)) in rows.iter().enumerate() {
        let windows = match &sessions {
            Some(sessions) => vec![sessions[row]],
            None => windows_of(window, ts),
        };
        for (start, end) in windows {
            starts.push(start);
            ends.push(end);
            keys.push(k);
            values.push(v);
        }
    }
    let expanded = RecordBatch::try_from_iter(vec![
        ("ws", Arc::new(Int64Array::from(starts)) as ArrayRef),
        ("we", Arc::new(Int64Array::from(ends)) as ArrayRef),
        ("k", Arc::new(Int64Array::from(keys)) as ArrayRef),
        ("v", Arc::new(Int64Array::from(values)) as ArrayRef),
    ])
    .expect("expanded batch");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let batches = runtime.block_on(async {
        let context = SessionContext::new();
        context.register_batch("t", expanded).expect("register");
        let frame = context
            .sql("SELECT ws, we, k, COUNT(v), SUM(v), MAX(v), MIN(v), AVG(v), COUNT(DISTINCT v) FROM t GROUP BY ws, we, k")
            .await
            .expect("plan");
        frame.collect().await.expect("collect")
    });
    let mut out: Vec<String> = batches.iter().flat_map(|b| render(b, false)).collect();
    out.sort();
    out
}

/// Rows as text, window columns as integers, so that the engine's
/// TIMESTAMP(3) windows and the oracle's BIGINT ones compare equal.
pub fn render(batch: &RecordBatch, windows_are_timestamps: bool) -> Vec<String> {
    let columns: Vec<ArrayRef> = batch
        .columns()
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if windows_are_timestamps && i < 2 {
                datafusion::arrow::compute::cast(c, &DataType::Int64).expect("cast window")
            } else {
                c.clone()
            }
        })
        .collect();
    (0..batch.num_rows())
        .map(|row| {
            columns
                .iter()
                .map(|c| array_value_to_string(c.as_ref(), row).expect("display"))
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect()
}

/// Rows as text, each after its row kind (`+I` for an append-only batch),
/// the `__op` column left out.
pub fn render_changes(batch: &RecordBatch) -> Vec<String> {
    let kinds = runnel_engine::changelog::kinds(batch);
    let data = match kinds {
        Some(_) => batch
            .project(&(0..batch.num_columns() - 1).collect::<Vec<_>>())
            .expect("project"),
        None => batch.clone(),
    };
    render(&data, false)
        .into_iter()
        .enumerate()
        .map(|(i, row)| {
            let kind = kinds
                .as_ref()
                .map_or(runnel_engine::changelog::RowKind::Insert, |k| k[i]);
            format!("{} {row}", kind.short())
        })
        .collect()
}

/// The table a changelog leaves, sorted; an error names a row taken away
/// that was not there.
pub fn apply_changes(changes: &[String]) -> Result<Vec<String>, String> {
    let mut table: std::collections::BTreeMap<&str, usize> = Default::default();
    for change in changes {
        let (kind, row) = change
            .split_once(' ')
            .ok_or_else(|| format!("no row kind in '{change}'"))?;
        match kind {
            "+I" | "+U" => *table.entry(row).or_default() += 1,
            "-U" | "-D" => match table.get_mut(row) {
                Some(n) if *n > 1 => *n -= 1,
                Some(_) => {
                    table.remove(row);
                }
                None => return Err(format!("'{change}' takes away a row that is not there")),
            },
            other => return Err(format!("unknown row kind {other}")),
        }
    }
    Ok(table
        .into_iter()
        .flat_map(|(row, n)| std::iter::repeat_n(row.to_string(), n))
        .collect())
}

/// Holds rows until a checkpoint takes them, as an exactly-once sink
/// does; each row rendered by `render` as one record.
pub struct HeldRows {
    held: Vec<runnel_engine::checkpoint::OutputRecord>,
    render: fn(&RecordBatch) -> Vec<String>,
}

impl HeldRows {
    pub fn new(render: fn(&RecordBatch) -> Vec<String>) -> Self {
        HeldRows {
            held: Vec::new(),
            render,
        }
    }
}

impl runnel_engine::sink::BatchSink for HeldRows {
    fn write(
        &mut self,
        batch: RecordBatch,
        _time: runnel_engine::time::Watermark,
    ) -> Result<(), runnel_engine::EngineError> {
        let rows = (self.render)(&batch);
        self.held.extend(
            rows.into_iter()
                .map(|row| runnel_engine::checkpoint::OutputRecord {
                    partition_key: String::new(),
                    explicit_hash_key: None,
                    data: row.into_bytes(),
                }),
        );
        Ok(())
    }

    fn checkpoint_output(
        &mut self,
        _checkpoint: u64,
    ) -> Result<Vec<runnel_engine::checkpoint::SinkOutput>, runnel_engine::EngineError> {
        Ok(vec![runnel_engine::checkpoint::SinkOutput {
            stream: "out".into(),
            records: std::mem::take(&mut self.held),
        }])
    }
}
