//! INSERT's cast of a query's rows to the sink table's columns.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use runnel_engine::stateless::BatchFn;

use crate::error::SqlError;
use runnel_engine::changelog::{is_changelog, with_op};

use super::window::relaxed;

/// Casts a query's output to a sink table's columns, as INSERT does.
pub fn cast_to(schema: SchemaRef, target: SchemaRef) -> Result<BatchFn, SqlError> {
    if is_changelog(&schema) && !is_changelog(&target) {
        let data = Arc::new(Schema::new(
            schema.fields()[..schema.fields().len() - 1].to_vec(),
        ));
        let cast = cast_to(data, target.clone())?;
        let out = with_op(&relaxed(&target));
        return Ok(Arc::new(move |batch: RecordBatch| {
            let op = batch.column(batch.num_columns() - 1).clone();
            let data = batch.project(&(0..batch.num_columns() - 1).collect::<Vec<_>>())?;
            let Some(cast) = cast(data)? else {
                return Ok(None);
            };
            let mut columns = cast.columns().to_vec();
            columns.push(op);
            Ok(Some(RecordBatch::try_new(out.clone(), columns)?))
        }));
    }
    if schema.fields().len() != target.fields().len() {
        return Err(SqlError::invalid(format!(
            "the query has {} columns but the sink table has {}",
            schema.fields().len(),
            target.fields().len()
        )));
    }
    for (from, to) in schema.fields().iter().zip(target.fields()) {
        if !datafusion::arrow::compute::can_cast_types(from.data_type(), to.data_type()) {
            return Err(SqlError::invalid(format!(
                "cannot write column {} of type {} into {} of type {}",
                from.name(),
                from.data_type(),
                to.name(),
                to.data_type()
            )));
        }
    }
    let target = relaxed(&target);
    Ok(Arc::new(move |batch: RecordBatch| {
        let columns = batch
            .columns()
            .iter()
            .zip(target.fields())
            .map(|(c, f)| {
                if c.data_type() == f.data_type() {
                    Ok(c.clone())
                } else {
                    cast(c, f.data_type())
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(runnel_engine::batch::with_rows(
            target.clone(),
            columns,
            batch.num_rows(),
        )?))
    }))
}
