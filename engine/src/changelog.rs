//! Row kinds as Flink names them, carried in a batch's trailing `__op`
//! column, and the passage between batches and differential updates.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Int8Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;

use crate::error::EngineError;

pub const OP_COLUMN: &str = "__op";

/// Flink's `RowKind` byte values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i8)]
pub enum RowKind {
    Insert = 0,
    UpdateBefore = 1,
    UpdateAfter = 2,
    Delete = 3,
}

impl RowKind {
    pub fn from_i8(value: i8) -> Option<Self> {
        match value {
            0 => Some(RowKind::Insert),
            1 => Some(RowKind::UpdateBefore),
            2 => Some(RowKind::UpdateAfter),
            3 => Some(RowKind::Delete),
            _ => None,
        }
    }

    /// Flink's print prefix: `+I`, `-U`, `+U`, `-D`.
    pub fn short(self) -> &'static str {
        match self {
            RowKind::Insert => "+I",
            RowKind::UpdateBefore => "-U",
            RowKind::UpdateAfter => "+U",
            RowKind::Delete => "-D",
        }
    }

    /// What the row does to a table: adds it or takes it away.
    pub fn diff(self) -> isize {
        match self {
            RowKind::Insert | RowKind::UpdateAfter => 1,
            RowKind::UpdateBefore | RowKind::Delete => -1,
        }
    }
}

pub fn op_field() -> Field {
    Field::new(OP_COLUMN, DataType::Int8, false)
}

/// Whether batches of `schema` are a changelog.
pub fn is_changelog(schema: &Schema) -> bool {
    schema
        .fields()
        .last()
        .is_some_and(|f| f.name() == OP_COLUMN)
}

/// `schema` with the `__op` column after its own.
pub fn with_op(schema: &Schema) -> SchemaRef {
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(op_field());
    Arc::new(Schema::new(fields))
}

/// Each row's multiplicity change: from `__op` in a changelog, `+1` for
/// every row of an append-only batch.
pub fn diffs(batch: &RecordBatch) -> Result<Vec<isize>, EngineError> {
    if !is_changelog(&batch.schema()) {
        return Ok(vec![1; batch.num_rows()]);
    }
    let ops = batch
        .column(batch.num_columns() - 1)
        .as_any()
        .downcast_ref::<Int8Array>()
        .ok_or_else(|| EngineError::Plan("__op must be TINYINT".into()))?;
    (0..ops.len())
        .map(|i| {
            RowKind::from_i8(ops.value(i))
                .map(RowKind::diff)
                .ok_or_else(|| EngineError::Runtime(format!("unknown row kind {}", ops.value(i))))
        })
        .collect()
}

/// The kinds of a batch's rows, if it is a changelog.
pub fn kinds(batch: &RecordBatch) -> Option<Vec<RowKind>> {
    if !is_changelog(&batch.schema()) {
        return None;
    }
    let ops = batch
        .column(batch.num_columns() - 1)
        .as_any()
        .downcast_ref::<Int8Array>()?;
    Some(
        (0..ops.len())
            .map(|i| RowKind::from_i8(ops.value(i)).unwrap_or(RowKind::Insert))
            .collect(),
    )
}

pub fn op_array(kinds: &[RowKind]) -> ArrayRef {
    Arc::new(Int8Array::from_iter_values(kinds.iter().map(|k| *k as i8)))
}

/// Pairs one time's updates of keyed rows into row kinds: a key that loses
/// a row and gains one is updated (`-U` then `+U`), one that only gains is
/// inserted, one that only loses is deleted. `updates` are
/// `(key, row, diff)`, sorted by key.
pub fn pair_updates<K: PartialEq, V: Clone>(updates: &[(K, V, isize)]) -> Vec<(V, RowKind)> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < updates.len() {
        let mut end = start;
        while end < updates.len() && updates[end].0 == updates[start].0 {
            end += 1;
        }
        let group = &updates[start..end];
        let retracts = group.iter().any(|u| u.2 < 0);
        let adds = group.iter().any(|u| u.2 > 0);
        for (_, row, diff) in group.iter().filter(|u| u.2 < 0) {
            let kind = if adds {
                RowKind::UpdateBefore
            } else {
                RowKind::Delete
            };
            out.extend(std::iter::repeat_n(
                (row.clone(), kind),
                diff.unsigned_abs(),
            ));
        }
        for (_, row, diff) in group.iter().filter(|u| u.2 > 0) {
            let kind = if retracts {
                RowKind::UpdateAfter
            } else {
                RowKind::Insert
            };
            out.extend(std::iter::repeat_n((row.clone(), kind), *diff as usize));
        }
        start = end;
    }
    out
}

/// `((key, value), time, diff)`: the updates differential works on.
pub type Updates = Vec<((Vec<u8>, Vec<u8>), crate::time::Watermark, isize)>;

/// Turns each batch into differential updates with `encode` (given the
/// batch and the time it travels at), kept for checkpoints in a
/// checkpointed job (see `updating::replay`).
pub fn to_updates<'scope, F>(
    input: timely::dataflow::Stream<'scope, crate::time::Watermark, crate::batch::Batch>,
    name: &str,
    encode: F,
    context: std::sync::Arc<crate::context::JobContext>,
) -> timely::dataflow::Stream<'scope, crate::time::Watermark, Updates>
where
    F: Fn(&RecordBatch, crate::time::Watermark) -> Result<Updates, EngineError> + 'static,
{
    use timely::container::CapacityContainerBuilder;
    use timely::dataflow::channels::pact::Pipeline;
    use timely::dataflow::operators::generic::Operator;
    let recorder_context = context.clone();
    let updates = input.unary::<CapacityContainerBuilder<Updates>, _, _, _>(
        Pipeline,
        name,
        move |_cap, _info| {
            move |input, output| {
                input.for_each(|cap, data| {
                    let Some(batch) = data.take() else { return };
                    let time = cap.least().copied().unwrap_or(crate::time::Watermark::MIN);
                    match encode(&batch, time) {
                        Ok(mut updates) if !updates.is_empty() => {
                            output.session(&cap).give_container(&mut updates)
                        }
                        Ok(_) => {}
                        Err(error) => context.fail(error),
                    }
                });
            }
        },
    );
    crate::updating::replay::recorded_updates(updates, recorder_context)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_that_changes_its_row_is_updated_others_inserted_or_deleted() {
        let updates = [(1, "a1", -1), (1, "a2", 1), (2, "b", 1), (3, "c", -1)];
        assert_eq!(
            pair_updates(&updates),
            [
                ("a1", RowKind::UpdateBefore),
                ("a2", RowKind::UpdateAfter),
                ("b", RowKind::Insert),
                ("c", RowKind::Delete),
            ]
        );
    }
}
