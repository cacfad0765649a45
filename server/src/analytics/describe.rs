//! A job as JSON: what it is, how it stands, and its live figures per
//! source (rows read, watermark, each shard's position and lag) and sink.

use std::sync::atomic::Ordering;

use serde_json::{Value, json};

use super::manager::ManagedJob;

fn time(ms: Option<u64>) -> Value {
    ms.and_then(|ms| chrono::DateTime::from_timestamp_millis(ms as i64))
        .map_or(Value::Null, |t| {
            json!(t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        })
}

fn watermark(ms: i64) -> Value {
    match ms {
        i64::MIN => Value::Null,
        i64::MAX => json!("end of input"),
        ms => time(u64::try_from(ms).ok()),
    }
}

/// `detailed` adds the SQL, the plan and the figures.
pub fn job_json(job: &ManagedJob, detailed: bool) -> Value {
    let snapshot = job.snapshot();
    let definition = &snapshot.definition;
    let mut value = json!({
        "id": definition.id,
        "name": definition.name,
        "status": definition.status.as_str(),
        "error": definition.error,
        "parallelism": definition.parallelism,
        "restarts": definition.restarts,
        "created": time(Some(definition.created_ms)),
        "started": time(definition.started_ms),
        "ended": time(definition.ended_ms),
    });
    if !detailed {
        return value;
    }
    value["sql"] = json!(definition.sql);
    value["plan"] = json!(job.plan);
    value["columns"] = json!(job.columns);
    value["from_savepoint"] = json!(definition.from_savepoint);
    let Some(context) = &snapshot.context else {
        value["sources"] = json!([]);
        value["sinks"] = json!([]);
        return value;
    };
    let figures = context.operator_figures();
    let sources: Vec<Value> = job
        .sources()
        .iter()
        .map(|(table, provider)| {
            let own = figures
                .iter()
                .find(|f| f.name == format!("Source({table})"));
            let shards: Vec<Value> = provider
                .positions()
                .into_iter()
                .map(|p| {
                    json!({
                        "shard_id": p.part,
                        "sequence_number": p.position,
                        "millis_behind_latest": p.millis_behind,
                        "finished": p.finished,
                    })
                })
                .collect();
            let mut source = json!({
                "table": table,
                "rows_read": own.map_or(0, |f| f.rows),
                "watermark": own.map_or(Value::Null, |f| watermark(f.watermark)),
            });
            if !shards.is_empty() {
                source["shards"] = json!(shards);
            }
            source
        })
        .collect();
    let sinks: Vec<Value> = figures
        .iter()
        .filter_map(|f| {
            let inner = f.name.strip_prefix("Sink(")?.strip_suffix(')')?;
            let table = inner.split_once(": ").map_or(inner, |(_, t)| t);
            Some(json!({
                "table": table,
                "rows_written": f.rows,
                "watermark": watermark(f.watermark),
            }))
        })
        .collect();
    value["sources"] = json!(sources);
    value["sinks"] = json!(sinks);
    value["rows_in"] = json!(context.records_in.load(Ordering::Relaxed));
    value["rows_out"] = json!(context.records_out.load(Ordering::Relaxed));
    value["state_rows"] = json!(context.state_rows.load(Ordering::Relaxed));
    value["late_rows"] = json!(context.late_records.load(Ordering::Relaxed));
    if let Some(coordinator) = context.checkpoints.get() {
        value["checkpoints"] = checkpoints_json(coordinator);
    }
    value
}

/// The checkpoint configuration, the newest completed checkpoints and the
/// failed ones, as Flink's checkpoint statistics show them.
fn checkpoints_json(coordinator: &runnel_engine::checkpoint::Coordinator) -> Value {
    let config = coordinator.config();
    let (failed, last_failure) = coordinator.failures();
    let completed: Vec<Value> = coordinator
        .history()
        .iter()
        .rev()
        .take(10)
        .map(|c| {
            json!({
                "id": c.id,
                "time": time(Some(c.taken_at_ms.max(0) as u64)),
                "duration_ms": c.duration_ms,
                "drain_ms": c.drain_ms,
                "paused_ms": c.paused_ms,
                "commit_ms": c.commit_ms,
                "bytes": c.bytes,
                "states": c.states,
                "incremental_states": c.deltas,
                "records_committed": c.records_committed,
            })
        })
        .collect();
    json!({
        "interval_ms": config.interval.as_millis() as u64,
        "mode": match config.mode {
            runnel_engine::checkpoint::Mode::ExactlyOnce => "EXACTLY_ONCE",
            runnel_engine::checkpoint::Mode::AtLeastOnce => "AT_LEAST_ONCE",
        },
        "incremental": config.incremental,
        "restored_from": coordinator.restored_from(),
        "completed": completed,
        "failed": failed,
        "last_failure": last_failure,
    })
}
