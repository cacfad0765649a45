//! Window aggregation throughput over in-memory batches: records/s per
//! worker for a tumbling COUNT and a hopping MAX grouped by a BIGINT key
//! with 10K distinct keys, at 1 and 2 workers. Prints a table.
//!
//! cargo bench -p runnel-engine --bench window [-- ROWS]

use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::functions_aggregate::count::count_udaf;
use datafusion::functions_aggregate::min_max::max_udaf;
use datafusion::logical_expr::AggregateUDF;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::aggregate::AggregateExprBuilder;
use datafusion::physical_expr::expressions::{col, lit};
use runnel_engine::context::JobContext;
use runnel_engine::runtime::{Cluster, run};
use runnel_engine::sink::{BlackholeSink, sink};
use runnel_engine::source::{EventTime, MemoryReader, source};
use runnel_engine::window::kind::WindowKind;
use runnel_engine::window::operator::window_aggregate;
use runnel_engine::window::state::WindowAggregate;
use timely::dataflow::ProbeHandle;

const KEYS: u64 = 10_000;
const BATCH_ROWS: usize = 8192;
/// Event time advances one millisecond per this many rows (1M events/s).
const ROWS_PER_MS: u64 = 1000;

fn main() {
    let rows: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10_000_000);
    let schema = Arc::new(Schema::new(vec![
        Field::new("k", DataType::Int64, false),
        Field::new("ts", DataType::Int64, false),
        Field::new("v", DataType::Int64, false),
    ]));
    let batches = Arc::new(generate(&schema, rows));
    println!("{rows} rows, {KEYS} keys, batches of {BATCH_ROWS}, release build");
    println!(
        "{:<34} {:>7} {:>10} {:>9} {:>16} {:>20}",
        "query", "workers", "wall s", "cpu s", "records/s", "records/s/worker"
    );
    let count_star = |s: &SchemaRef| aggregate(count_udaf(), lit(1i64), s, "cnt");
    let max_v = |s: &SchemaRef| aggregate(max_udaf(), col("v", s).expect("v"), s, "max_v");
    for (name, window, agg) in [
        (
            "TUMBLE(1 s) COUNT(*) GROUP BY k",
            WindowKind::tumble(1000).expect("tumble"),
            &count_star as &dyn Fn(&SchemaRef) -> _,
        ),
        (
            "HOP(1 s, 5 s) MAX(v) GROUP BY k",
            WindowKind::hop(1000, 5000).expect("hop"),
            &max_v,
        ),
    ] {
        for workers in [1, 2] {
            let spec = Arc::new(WindowAggregate {
                window,
                time: col("ts", &schema).expect("ts"),
                keys: vec![(col("k", &schema).expect("k"), "k".into())],
                aggregates: vec![agg(&schema)],
                filters: vec![None],
                input_schema: schema.clone(),
            });
            let cpu_before = process_cpu_seconds();
            let started = Instant::now();
            let context = Arc::new(JobContext::default());
            let input = batches.clone();
            run(
                &Cluster::local(workers),
                context.clone(),
                move |worker, context| {
                    let reader = Box::new(MemoryReader::new(
                        input.clone(),
                        worker.index(),
                        worker.peers(),
                    ));
                    let event_time = EventTime {
                        expr: spec.time.clone(),
                        max_out_of_orderness: 0,
                        processing_time: false,
                        idle_timeout: None,
                        drop_after: None,
                    };
                    let spec = spec.clone();
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
                        sink(
                            windows,
                            "blackhole",
                            Box::new(BlackholeSink),
                            context,
                            &probe,
                        );
                        Ok(probe)
                    })
                },
            )
            .expect("job");
            let wall = started.elapsed().as_secs_f64();
            let cpu = process_cpu_seconds() - cpu_before;
            let late = context
                .late_records
                .load(std::sync::atomic::Ordering::Relaxed);
            let rate = rows as f64 / wall;
            println!(
                "{name:<34} {workers:>7} {wall:>10.3} {cpu:>9.2} {rate:>16.0} {:>20.0}{}",
                rate / workers as f64,
                if late > 0 {
                    format!("  ({late} late)")
                } else {
                    String::new()
                }
            );
        }
    }
}

fn aggregate(
    fun: Arc<AggregateUDF>,
    arg: Arc<dyn PhysicalExpr>,
    schema: &SchemaRef,
    name: &str,
) -> Arc<datafusion::physical_expr::aggregate::AggregateFunctionExpr> {
    Arc::new(
        AggregateExprBuilder::new(fun, vec![arg])
            .schema(schema.clone())
            .alias(name)
            .build()
            .expect("aggregate"),
    )
}

/// Keys from a fixed-seed xorshift; event time increasing, as a source
/// partition delivers it.
fn generate(schema: &SchemaRef, rows: usize) -> Vec<RecordBatch> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..rows)
        .step_by(BATCH_ROWS)
        .map(|first| {
            let n = BATCH_ROWS.min(rows - first);
            let keys: Vec<i64> = (0..n).map(|_| (next() % KEYS) as i64).collect();
            let times: Vec<i64> = (first..first + n)
                .map(|i| (i as u64 / ROWS_PER_MS) as i64)
                .collect();
            let values: Vec<i64> = (0..n).map(|_| (next() % 1_000_000) as i64).collect();
            let columns: Vec<ArrayRef> = vec![
                Arc::new(Int64Array::from(keys)),
                Arc::new(Int64Array::from(times)),
                Arc::new(Int64Array::from(values)),
            ];
            RecordBatch::try_new(schema.clone(), columns).expect("batch")
        })
        .collect()
}

/// User + system CPU of this process, from /proc/self/stat (clock ticks of
/// 1/100 s, the Linux USER_HZ).
fn process_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat.rsplit(')').next().unwrap_or_default();
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // Fields 14 and 15 of stat are utime and stime; after the name they sit at 11 and 12.
    (ticks(11) + ticks(12)) / 100.0
}
