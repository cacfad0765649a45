//! How a planned job gets its sources and sinks: a provider is made once,
//! when the job is submitted (so bad options fail then), and makes one
//! reader or sink per worker when the dataflow is built.

use std::sync::Arc;

use crate::error::EngineError;
use crate::sink::BatchSink;
use crate::source::BatchReader;

/// The rows a query keeps of a source, as far as the planner can tell from
/// the filters above its scans: those whose top-level integer column
/// `column` equals one of `values` (Nexmark's views keep one `event_type`
/// each; a source several views read keeps theirs). The filters stay in
/// the plan, so a source may drop other rows early, or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeepOnly {
    pub column: usize,
    pub values: Vec<i64>,
    /// With event time, a row the query does not keep still moves the
    /// watermark and may be late, as it would without the pushdown: a
    /// source must then still read these columns (the event time's) of
    /// such a row and hand it over; the source operator counts its time
    /// and drops it (`keeps`). `None`: no event time, drop it outright.
    pub time_columns: Option<Vec<usize>>,
}

impl KeepOnly {
    /// Which rows of `batch` this keeps: `column` equal to one of `values`
    /// (a NULL equals nothing).
    pub fn keeps(
        &self,
        batch: &datafusion::arrow::record_batch::RecordBatch,
    ) -> Result<datafusion::arrow::array::BooleanArray, EngineError> {
        use datafusion::arrow::array::{Array, BooleanArray};
        use datafusion::arrow::compute::cast;
        use datafusion::arrow::datatypes::{DataType, Int64Type};
        let column = cast(batch.column(self.column), &DataType::Int64)?;
        let values = datafusion::arrow::array::AsArray::as_primitive::<Int64Type>(column.as_ref());
        Ok((0..values.len())
            .map(|row| Some(values.is_valid(row) && self.values.contains(&values.value(row))))
            .collect::<BooleanArray>())
    }
}

/// Nested fields no query reads, by top-level column: `(column, [child,
/// ...])`. A source may leave them unread (NULL), or read them anyway.
pub type UnusedFields = Vec<(usize, Vec<usize>)>;

/// Where a source stands in one part of what it reads (a stream's shard),
/// for a running job's figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcePosition {
    pub part: String,
    /// The last position read (a sequence number), if any.
    pub position: Option<String>,
    /// How far behind the newest record of the part the reader is.
    pub millis_behind: Option<u64>,
    /// Read to its end (a closed shard).
    pub finished: bool,
}

pub trait SourceProvider: Send + Sync {
    fn reader(&self, worker: usize, peers: usize) -> Result<Box<dyn BatchReader>, EngineError>;

    /// This source reading only the rows `keep` describes, if it can drop
    /// the others cheaper than the filter would.
    fn keep_only(&self, _keep: KeepOnly) -> Option<Arc<dyn SourceProvider>> {
        None
    }

    /// This source leaving `unused` fields unread, if it can save by it.
    fn skip_fields(&self, _unused: UnusedFields) -> Option<Arc<dyn SourceProvider>> {
        None
    }

    /// Where the source's readers are, part by part; empty for sources
    /// that have no parts worth reporting (files, generators).
    fn positions(&self) -> Vec<SourcePosition> {
        Vec::new()
    }

    /// Whether the batches are a changelog (a trailing `__op` column after
    /// the table's columns): the planner then treats every query over the
    /// table as updating, never taking an append-only path.
    fn produces_changelog(&self) -> bool {
        false
    }

    /// Whether its readers give positions to resume from
    /// (`BatchReader::checkpoint_position`); a checkpointed job whose
    /// source cannot is refused at submit.
    fn checkpointable(&self) -> bool {
        false
    }
}

/// The option under which a sink is given its table's `PARTITIONED BY`
/// columns (comma-separated); set by the SQL layer, never by users.
pub const PARTITION_KEYS: &str = "__partitioned-by";

/// The option under which a sink that writes by key (`jdbc`) is given its
/// table's PRIMARY KEY columns (comma-separated); set by the SQL layer.
pub const PRIMARY_KEY: &str = "__primary-key";

/// The option under which a source is given its table's metadata columns,
/// one `column<TAB>key` per line; set by the SQL layer, never by users.
pub const METADATA_COLUMNS: &str = "__metadata";

pub trait SinkProvider: Send + Sync {
    fn sink(&self, worker: usize, peers: usize) -> Result<Box<dyn BatchSink>, EngineError>;

    /// Whether the sink understands a changelog (rows with a `__op` kind);
    /// an append-only sink is refused an updating query at submit time.
    fn accepts_changelog(&self) -> bool {
        false
    }

    /// Whether, for a table with a PRIMARY KEY, the sink still wants each
    /// update's `-U` row. An upsert sink replaces by key and does not; a
    /// changelog format (debezium-json) does, as Flink writes it, or what
    /// it writes could not be read back as the same table.
    fn wants_update_before(&self) -> bool {
        false
    }

    /// Whether its sinks take part in checkpoints (`BatchSink::
    /// checkpoint_output`): exactly-once, at-least-once, or, for sinks
    /// whose output is only for watching (print, blackhole), as they are.
    /// A checkpointed job whose sink cannot is refused at submit.
    fn checkpointable(&self) -> bool {
        false
    }
}

/// Makes providers from a table's `WITH (...)` options; the connectors crate
/// implements it, the SQL planner calls it when a job is submitted.
pub trait ConnectorFactory: Send + Sync {
    fn source(
        &self,
        options: std::collections::BTreeMap<String, String>,
        schema: datafusion::arrow::datatypes::SchemaRef,
    ) -> Result<std::sync::Arc<dyn SourceProvider>, EngineError>;

    fn sink(
        &self,
        options: std::collections::BTreeMap<String, String>,
        schema: datafusion::arrow::datatypes::SchemaRef,
    ) -> Result<std::sync::Arc<dyn SinkProvider>, EngineError>;

    /// A table looked up by `keys` (lookup joins), if its connector can.
    fn lookup(
        &self,
        options: std::collections::BTreeMap<String, String>,
        schema: datafusion::arrow::datatypes::SchemaRef,
        keys: Vec<String>,
    ) -> Result<std::sync::Arc<dyn crate::join::lookup::LookupProvider>, EngineError> {
        let _ = (schema, keys);
        Err(EngineError::Plan(format!(
            "connector '{}' cannot be looked up (FOR SYSTEM_TIME AS OF a processing time)",
            options.get("connector").map_or("", String::as_str)
        )))
    }
}
