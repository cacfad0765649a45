//! `ROW_NUMBER() OVER (PARTITION BY ... ORDER BY ...)`: window top-N when
//! the partition includes `window_start, window_end` (rows of a window
//! aggregation or of a window table function), deduplication (keep the
//! first row by a time column) over a whole stream.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::logical_expr::{Expr, Operator};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::scalar::ScalarValue;
use runnel_engine::dedup::Deduplicate;

use crate::error::SqlError;
use crate::planner::{Node, Planned, Planner};

impl Planner<'_> {
    pub(crate) fn row_number(
        &self,
        window: &datafusion::logical_expr::Window,
        input: Planned,
    ) -> Result<Planned, SqlError> {
        let unsupported = |message: &str| self.reject(message, &["OVER", "ROW_NUMBER"]);
        let [expr] = window.window_expr.as_slice() else {
            return Err(unsupported(
                "only one OVER function per SELECT is supported",
            ));
        };
        let Expr::WindowFunction(function) = expr.clone().unalias() else {
            return Err(unsupported("unsupported OVER expression"));
        };
        if function.fun.name() != "row_number" {
            return Err(unsupported(
                "only ROW_NUMBER() OVER (...) is supported (top-N and deduplication)",
            ));
        }
        let input_df = window.input.schema();
        let mut key_columns = Vec::new();
        let mut names = Vec::new();
        for partition in &function.params.partition_by {
            let Expr::Column(column) = partition else {
                return Err(unsupported("PARTITION BY must list columns"));
            };
            key_columns.push(input_df.index_of_column(column)?);
            names.push(column.name.clone());
        }
        let schema = Arc::new(window.schema.as_arrow().clone());
        let per_window =
            names.iter().any(|n| n == "window_start") && names.iter().any(|n| n == "window_end");
        if !per_window {
            return self.deduplicate(
                &function.params.order_by,
                input_df,
                key_columns,
                input,
                schema,
            );
        }
        let mut order = Vec::new();
        for sort in &function.params.order_by {
            let physical = self
                .context
                .state()
                .create_physical_expr(sort.expr.clone(), input_df)?;
            let options = datafusion::arrow::compute::SortOptions {
                descending: !sort.asc,
                nulls_first: sort.nulls_first,
            };
            order.push((physical, options));
        }
        let input_schema = input.schema.clone();
        let out = schema.clone();
        let keys = key_columns.clone();
        // Every row of a window travels at its `window_end - 1`, so one
        // complete time is a set of whole windows.
        let f: runnel_engine::complete::CompleteFn = Arc::new(move |batches: Vec<RecordBatch>| {
            let batch = datafusion::arrow::compute::concat_batches(&input_schema, &batches)?;
            Ok(Some(rank_rows(&batch, &keys, &order, &out)?))
        });
        let node = Node::Complete {
            input: Box::new(input.node),
            name: "WindowTopN".into(),
            key_columns,
            f,
        };
        Ok(Planned::new(node, schema))
    }

    /// `ROW_NUMBER() OVER (PARTITION BY k ORDER BY ts ASC)` over a whole
    /// stream: keeps the first row of each key; a filter above must keep
    /// only `rn = 1`.
    fn deduplicate(
        &self,
        order_by: &[datafusion::logical_expr::SortExpr],
        input_df: &datafusion::common::DFSchema,
        key_columns: Vec<usize>,
        input: Planned,
        schema: SchemaRef,
    ) -> Result<Planned, SqlError> {
        let unsupported = |message: &str| self.reject(message, &["OVER", "ROW_NUMBER"]);
        let general = "ROW_NUMBER() over a whole stream is supported only as deduplication (PARTITION BY keys ORDER BY a time column ASC, then WHERE rn = 1); an updating top-N is not supported yet";
        let time_column = match order_by {
            [sort] => match &sort.expr {
                Expr::Column(column) => Some((input_df.index_of_column(column)?, sort.asc)),
                _ => None,
            },
            _ => None,
        }
        .filter(|(i, _)| {
            matches!(
                input.schema.field(*i).data_type(),
                DataType::Timestamp(_, _)
            )
        });
        let time = match time_column {
            Some((time, true)) => time,
            Some((_, false)) => {
                return Err(unsupported(
                    "keeping the last row per key (ORDER BY ... DESC) is an updating query, not supported yet; ORDER BY the time column ASC keeps the first",
                ));
            }
            None => return Err(unsupported(general)),
        };
        let describe = format!(
            "keep first by {} per [{}]",
            input.schema.field(time).name(),
            key_columns
                .iter()
                .map(|&i| input.schema.field(i).name().as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        let rank = schema.fields().len() - 1;
        let spec = Arc::new(Deduplicate {
            key_columns,
            time,
            output_schema: schema.clone(),
        });
        Ok(Planned {
            node: Node::Deduplicate {
                input: Box::new(input.node),
                spec,
                input_schema: input.schema,
                describe,
            },
            schema,
            windowing: None,
            rank: Some(rank),
        })
    }
}

/// Whether `predicate` keeps only rows whose `rank` column is 1: `rn = 1`,
/// `rn <= 1` or `rn < 2`, alone or ANDed with other conditions.
pub(crate) fn keeps_first_row_only(predicate: &Expr, rank: &str) -> bool {
    datafusion::logical_expr::utils::split_conjunction(predicate)
        .into_iter()
        .any(|conjunct| {
            let Expr::BinaryExpr(binary) = conjunct else {
                return false;
            };
            let (column, op, value) = match (binary.left.as_ref(), binary.right.as_ref()) {
                (Expr::Column(c), Expr::Literal(v, _)) => (c, binary.op, v),
                (Expr::Literal(v, _), Expr::Column(c)) => match binary.op.swap() {
                    Some(op) => (c, op, v),
                    None => return false,
                },
                _ => return false,
            };
            let Some(n) = integer(value) else {
                return false;
            };
            column.name == rank
                && matches!(
                    (op, n),
                    (Operator::Eq, 1) | (Operator::LtEq, 1) | (Operator::Lt, 2)
                )
        })
}

fn integer(value: &ScalarValue) -> Option<i128> {
    match value.cast_to(&DataType::Int64).ok()? {
        ScalarValue::Int64(Some(n)) => Some(n as i128),
        _ => None,
    }
}
/// Sorts `batch` by its partition columns and `order`, and appends each
/// row's ROW_NUMBER within its partition.
pub(crate) fn rank_rows(
    batch: &RecordBatch,
    partition: &[usize],
    order: &[(
        Arc<dyn PhysicalExpr>,
        datafusion::arrow::compute::SortOptions,
    )],
    schema: &SchemaRef,
) -> Result<RecordBatch, runnel_engine::EngineError> {
    use datafusion::arrow::compute::{SortColumn, lexsort_to_indices, take_record_batch};
    let rows = batch.num_rows();
    let mut columns: Vec<SortColumn> = partition
        .iter()
        .map(|&i| SortColumn {
            values: batch.column(i).clone(),
            options: None,
        })
        .collect();
    for (expr, options) in order {
        columns.push(SortColumn {
            values: expr.evaluate(batch)?.into_array(rows)?,
            options: Some(*options),
        });
    }
    let indices = lexsort_to_indices(&columns, None)?;
    let sorted = take_record_batch(batch, &indices)?;
    let keys: Vec<ArrayRef> = partition
        .iter()
        .map(|&i| sorted.column(i).clone())
        .collect();
    let mut numbers = Vec::with_capacity(rows);
    for range in datafusion::arrow::compute::partition(&keys)?.ranges() {
        numbers.extend(1..=range.len() as u64);
    }
    let mut out = sorted.columns().to_vec();
    out.push(Arc::new(datafusion::arrow::array::UInt64Array::from(
        numbers,
    )));
    Ok(RecordBatch::try_new(schema.clone(), out)?)
}
