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
use runnel_engine::changelog::{is_changelog, with_op};
use runnel_engine::rank::dedup::Deduplicate;
use runnel_engine::updating::top_n::TopN;

use crate::error::SqlError;
use crate::plan::{Node, Planned, Planner, TopNOperator};

/// A physical sort expression and its direction.
type SortExpr = (
    Arc<dyn PhysicalExpr>,
    datafusion::arrow::compute::SortOptions,
);

impl Planner<'_> {
    /// ORDER BY expressions as physical expressions with their directions.
    fn sort_exprs(
        &self,
        order_by: &[datafusion::logical_expr::SortExpr],
        input_df: &datafusion::common::DFSchema,
    ) -> Result<Vec<SortExpr>, SqlError> {
        order_by
            .iter()
            .map(|sort| {
                let physical = self
                    .context
                    .state()
                    .create_physical_expr(sort.expr.clone(), input_df)?;
                let options = datafusion::arrow::compute::SortOptions {
                    descending: !sort.asc,
                    nulls_first: sort.nulls_first,
                };
                Ok((physical, options))
            })
            .collect()
    }

    /// Top-N over a whole stream (or an updating input): a changelog.
    #[allow(clippy::too_many_arguments)]
    fn updating_top_n(
        &self,
        order_by: &[datafusion::logical_expr::SortExpr],
        input_df: &datafusion::common::DFSchema,
        partition: Vec<usize>,
        limit: Option<u64>,
        input: Planned,
        schema: SchemaRef,
    ) -> Result<Planned, SqlError> {
        let order = self.sort_exprs(order_by, input_df)?;
        let output_schema = with_op(&schema);
        let describe = format!(
            "{} per [{}]{}",
            match limit {
                Some(n) => format!("first {n}"),
                None => "all rows numbered".to_string(),
            },
            partition
                .iter()
                .map(|&i| input.schema.field(i).name().as_str())
                .collect::<Vec<_>>()
                .join(", "),
            if is_changelog(&input.schema) {
                " of an updating input"
            } else {
                ""
            }
        );
        let spec = Arc::new(TopN {
            partition,
            order,
            limit: limit.map(|n| n as usize),
            input_schema: input.schema.clone(),
            output_schema: output_schema.clone(),
            ttl: self.state_ttl()?,
        });
        let operator = TopNOperator::for_input(is_changelog(&input.schema), spec.limit);
        Ok(Planned::new(
            Node::TopN {
                input: Box::new(input.node),
                spec,
                operator,
                describe,
            },
            output_schema,
        ))
    }

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
            let rank_name = schema.field(schema.fields().len() - 1).name().clone();
            let limit = self
                .rank_limits
                .borrow()
                .iter()
                .rev()
                .find(|(name, _)| *name == rank_name)
                .map(|(_, n)| *n);
            // The first row by a time column of an append-only input never
            // changes once the watermark passes it: no changelog needed.
            let first_by_time = match function.params.order_by.as_slice() {
                [sort] if sort.asc && limit == Some(1) && !is_changelog(&input.schema) => {
                    match &sort.expr {
                        Expr::Column(c) => input_df.index_of_column(c).ok().filter(|&i| {
                            matches!(input.schema.field(i).data_type(), DataType::Timestamp(_, _))
                        }),
                        _ => None,
                    }
                }
                _ => None,
            };
            if let Some(time) = first_by_time {
                return self.deduplicate(time, key_columns, input, schema);
            }
            return self.updating_top_n(
                &function.params.order_by,
                input_df,
                key_columns,
                limit,
                input,
                schema,
            );
        }
        let order = self.sort_exprs(&function.params.order_by, input_df)?;
        let input_schema = input.schema.clone();
        let out = schema.clone();
        let keys = key_columns.clone();
        // Every row of a window travels at its `window_end - 1`, so one
        // complete time is a set of whole windows.
        let f: runnel_engine::rank::closed_time::ClosedTimeFn =
            Arc::new(move |batches: Vec<RecordBatch>| {
                let batch = datafusion::arrow::compute::concat_batches(&input_schema, &batches)?;
                Ok(Some(rank_rows(&batch, &keys, &order, &out)?))
            });
        let node = Node::PerClosedTime {
            input: Box::new(input.node),
            name: "WindowTopN".into(),
            key_columns,
            f,
        };
        Ok(Planned::new(node, schema))
    }

    /// `ROW_NUMBER() OVER (PARTITION BY k ORDER BY ts ASC)` cut to `rn = 1`
    /// over an append-only stream: keeps the first row of each key.
    fn deduplicate(
        &self,
        time: usize,
        key_columns: Vec<usize>,
        input: Planned,
        schema: SchemaRef,
    ) -> Result<Planned, SqlError> {
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
            window_output: None,
        })
    }
}

/// Whether `predicate` keeps only rows whose `rank` column is 1: `rn = 1`,
/// `rn <= 1` or `rn < 2`, alone or ANDed with other conditions.
pub(crate) fn keeps_first_row_only(predicate: &Expr, rank: &str) -> bool {
    rank_limits(predicate)
        .iter()
        .any(|(column, n)| column == rank && *n == 1)
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

/// The `rn <= N` (or `rn < N + 1`, `rn = 1`) limits a filter's conjuncts
/// put on columns: each column's name and N.
pub(crate) fn rank_limits(predicate: &Expr) -> Vec<(String, u64)> {
    datafusion::logical_expr::utils::split_conjunction(predicate)
        .into_iter()
        .filter_map(|conjunct| {
            let Expr::BinaryExpr(binary) = conjunct else {
                return None;
            };
            let (column, op, value) = match (binary.left.as_ref(), binary.right.as_ref()) {
                (Expr::Column(c), Expr::Literal(v, _)) => (c, binary.op, v),
                (Expr::Literal(v, _), Expr::Column(c)) => (c, binary.op.swap()?, v),
                _ => return None,
            };
            let n = u64::try_from(integer(value)?).ok()?;
            let limit = match op {
                Operator::LtEq => n,
                Operator::Lt => n.checked_sub(1)?,
                Operator::Eq if n == 1 => 1,
                _ => return None,
            };
            Some((column.name.clone(), limit))
        })
        .collect()
}
