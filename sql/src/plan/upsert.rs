//! Upsert sinks: an INSERT of an updating query into a table with a
//! `PRIMARY KEY ... NOT ENFORCED` collapses the changelog to one row per
//! key, as Flink's sink upsert materializer does. The sink gets `+I`/`+U`
//! of each key's row and `-D` when the key is gone; `-U` rows are dropped,
//! since an upsert replaces by key, unless the sink writes a changelog
//! format (`SinkProvider::wants_update_before`).

use std::sync::Arc;

use datafusion::arrow::array::{AsArray, BooleanArray};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::datatypes::{Int8Type, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use runnel_engine::changelog::{RowKind, with_op};
use runnel_engine::stateless::BatchFn;
use runnel_engine::updating::top_n::TopN;

use crate::catalog::Catalog;
use crate::error::SqlError;
use crate::front::ddl::TableDef;
use crate::plan::{Node, TopNOperator};

/// Wraps `node` (a changelog in the sink's column order) so that it keeps
/// one row per primary key.
pub fn by_primary_key(
    node: Node,
    schema: SchemaRef,
    table: &TableDef,
    keep_update_before: bool,
) -> Result<(Node, SchemaRef), SqlError> {
    let columns = Catalog::sink_schema(table)?;
    let partition = table
        .primary_key
        .iter()
        .map(|key| {
            columns.index_of(key).map_err(|_| {
                SqlError::at(
                    format!(
                        "PRIMARY KEY column '{key}' is not a column of '{}'",
                        table.name
                    ),
                    table.position,
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let width = schema.fields().len() - 1;
    if partition.iter().any(|&i| i >= width) {
        return Err(SqlError::at(
            format!("the query has fewer columns than '{}'", table.name),
            table.position,
        ));
    }
    // Ranked with no order, ties broken by the row itself: a key with
    // several rows keeps one, the same on every run.
    let mut ranked_fields: Vec<_> = schema.fields()[..width].to_vec();
    ranked_fields.push(Arc::new(datafusion::arrow::datatypes::Field::new(
        "__rank",
        datafusion::arrow::datatypes::DataType::UInt64,
        false,
    )));
    let ranked = with_op(&Schema::new(ranked_fields));
    let spec = Arc::new(TopN {
        partition,
        order: Vec::new(),
        limit: Some(1),
        input_schema: schema.clone(),
        output_schema: ranked,
        // The sink's table, not a query's state: kept whole.
        ttl: None,
    });
    let operator = TopNOperator::for_input(true, spec.limit);
    let top = Node::TopN {
        input: Box::new(node),
        spec,
        operator,
        describe: format!("one row per primary key ({})", table.primary_key.join(", ")),
    };
    let out = schema.clone();
    let upserts: BatchFn = Arc::new(move |batch: RecordBatch| {
        let op = batch.column(batch.num_columns() - 1);
        let keep: BooleanArray = op
            .as_primitive::<Int8Type>()
            .iter()
            .map(|k| Some(keep_update_before || k != Some(RowKind::UpdateBefore as i8)))
            .collect();
        let mut columns = batch.columns()[..width].to_vec();
        columns.push(op.clone());
        let batch = RecordBatch::try_new(out.clone(), columns)?;
        Ok(Some(filter_record_batch(&batch, &keep)?))
    });
    Ok((
        Node::Map {
            input: Box::new(top),
            name: "Upsert".into(),
            f: upserts,
        },
        schema,
    ))
}
