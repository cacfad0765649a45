//! What a source table adds to its connector: the idle timeout of its
//! watermark (`SET 'table.exec.source.idle-timeout'`) and the table its
//! late rows go to (`'late-rows.table'`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use runnel_engine::EngineError;
use runnel_engine::connector::SinkProvider;
use runnel_engine::sink::BatchSink;
use runnel_engine::stateless::BatchFn;
use runnel_engine::time::Watermark;

use crate::catalog::Catalog;
use crate::error::SqlError;
use crate::front::ddl::TableDef;
use crate::plan::{Planner, cast_to};

pub const IDLE_TIMEOUT: &str = "table.exec.source.idle-timeout";
pub const LATE_ROWS_TABLE: &str = "late-rows.table";
pub const STATE_TTL: &str = "table.exec.state.ttl";

/// A sink for a source's late rows, cast to the late table's columns.
#[derive(Clone)]
pub struct LateRowsSink {
    pub table: String,
    provider: Arc<dyn SinkProvider>,
    cast: BatchFn,
}

impl LateRowsSink {
    pub fn sink(&self, worker: usize, peers: usize) -> Result<Box<dyn BatchSink>, EngineError> {
        Ok(Box::new(CastingSink {
            inner: self.provider.sink(worker, peers)?,
            cast: self.cast.clone(),
        }))
    }
}

struct CastingSink {
    inner: Box<dyn BatchSink>,
    cast: BatchFn,
}

impl BatchSink for CastingSink {
    fn write(&mut self, batch: RecordBatch, time: Watermark) -> Result<(), EngineError> {
        match (self.cast)(batch)? {
            Some(batch) => self.inner.write(batch, time),
            None => Ok(()),
        }
    }

    fn watermark(&mut self, watermark: Option<Watermark>) -> Result<(), EngineError> {
        self.inner.watermark(watermark)
    }
}

impl Planner<'_> {
    /// The connector's own options (without Runnel's) and the late-rows sink.
    pub(crate) fn source_options(
        &self,
        table: &TableDef,
        schema: &SchemaRef,
    ) -> Result<(BTreeMap<String, String>, Option<LateRowsSink>), SqlError> {
        let mut options = Catalog::source_options(table);
        let Some(name) = options.remove(LATE_ROWS_TABLE) else {
            return Ok((options, None));
        };
        let at = |message: String| SqlError::at(message, table.position);
        let late = self.catalog.tables.get(&name).ok_or_else(|| {
            at(format!(
                "table '{}': '{LATE_ROWS_TABLE}' names '{name}', which is not a table",
                table.name
            ))
        })?;
        let target = Catalog::sink_schema(late)?;
        let provider = self
            .connectors
            .sink(late.options.clone(), target.clone())
            .map_err(|e| at(format!("table '{name}': {e}")))?;
        let cast = cast_to(schema.clone(), target)
            .map_err(|e| at(format!("late rows of '{}' into '{name}': {e}", table.name)))?;
        Ok((
            options,
            Some(LateRowsSink {
                table: name,
                provider,
                cast,
            }),
        ))
    }

    pub(crate) fn idle_timeout(&self) -> Result<Option<Duration>, SqlError> {
        self.duration_setting(IDLE_TIMEOUT)
    }

    /// How long a regular join keeps rows; `None` is forever (Flink's 0).
    pub(crate) fn state_ttl(&self) -> Result<Option<Duration>, SqlError> {
        self.duration_setting(STATE_TTL)
    }

    fn duration_setting(&self, key: &str) -> Result<Option<Duration>, SqlError> {
        match self.catalog.settings.get(key) {
            None => Ok(None),
            Some(text) => {
                let timeout = parse_duration(text).ok_or_else(|| {
                    SqlError::invalid(format!(
                        "'{key}' must be a duration such as '5 s' or '500 ms', not '{text}'"
                    ))
                })?;
                // Flink's default 0 means never idle.
                Ok((!timeout.is_zero()).then_some(timeout))
            }
        }
    }
}

/// Flink's durations: a number and an optional unit (`ms`, `s`, `min`, `h`,
/// `d`, spelled short or long); no unit is milliseconds.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let number: u64 = text[..split].parse().ok()?;
    let millis_per = match text[split..].trim().to_ascii_lowercase().as_str() {
        "" | "ms" | "milli" | "millis" | "millisecond" | "milliseconds" => 1,
        "s" | "sec" | "secs" | "second" | "seconds" => 1_000,
        "min" | "m" | "minute" | "minutes" => 60_000,
        "h" | "hour" | "hours" => 3_600_000,
        "d" | "day" | "days" => 86_400_000,
        _ => return None,
    };
    Some(Duration::from_millis(number.checked_mul(millis_per)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_flink_writes_them() {
        assert_eq!(parse_duration("5 s"), Some(Duration::from_secs(5)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("2 min"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("1000"), Some(Duration::from_secs(1)));
        assert_eq!(parse_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_duration("soon"), None);
        assert_eq!(parse_duration("5 fortnights"), None);
    }
}
