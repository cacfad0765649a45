//! Window table functions: the placeholder's scan, window aggregation,
//! and window columns given to rows that are not aggregated.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, new_null_array};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::logical_expr::Expr;
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::physical_expr::aggregate::LoweredAggregateBuilder;
use datafusion::physical_expr::expressions::Column;
use runnel_engine::stateless::BatchFn;
use runnel_engine::window::assign::{WindowAssign, WindowColumn};
use runnel_engine::window::kind::WindowKind;
use runnel_engine::window::state::WindowAggregate;

use super::{Node, Planned, Planner, ROWTIME, Windowing};
use crate::catalog::quoted;
use crate::error::SqlError;
use runnel_engine::changelog::is_changelog;

impl Planner<'_> {
    /// Gives un-aggregated window table function rows their window columns
    /// and re-times them to their window's end.
    pub(crate) fn materialize(&self, planned: Planned) -> Result<Planned, SqlError> {
        let Some(windowing) = planned.windowing else {
            return Ok(planned);
        };
        if matches!(windowing.kind, WindowKind::Session { .. }) {
            return Err(self.reject(
                "SESSION windows must be aggregated (GROUP BY window_start, window_end, ...)",
                &["SESSION"],
            ));
        }
        let width = planned.schema.fields().len() - 1;
        let columns = (0..width)
            .map(
                |i| match windowing.columns.iter().position(|c| *c == Some(i)) {
                    Some(0) => WindowColumn::Start,
                    Some(1) => WindowColumn::End,
                    Some(_) => WindowColumn::Time,
                    None => WindowColumn::Input(i),
                },
            )
            .collect();
        let fields: Vec<Field> = planned.schema.fields()[..width]
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let filled = windowing.columns.contains(&Some(i));
                f.as_ref().clone().with_nullable(!filled && f.is_nullable())
            })
            .collect();
        let schema = Arc::new(Schema::new(fields));
        let spec = Arc::new(WindowAssign {
            kind: windowing.kind,
            time: windowing.rowtime,
            columns,
            schema: schema.clone(),
        });
        Ok(Planned {
            node: Node::WindowAssign {
                input: Box::new(planned.node),
                spec,
            },
            schema,
            windowing: None,
            rank: planned.rank,
            window_output: None,
        })
    }
    /// A scan of a window call's placeholder: the called table's rows, the
    /// window columns as typed nulls (the aggregate computes the real ones),
    /// and the time column carried at the end as `__rowtime`.
    pub(super) async fn window_scan(
        &self,
        placeholder: &str,
        projection: Option<Vec<usize>>,
        projected: &Schema,
    ) -> Result<Planned, SqlError> {
        let call = self
            .catalog
            .window(self.windows, placeholder)
            .cloned()
            .ok_or_else(|| SqlError::Plan(format!("unknown window call {placeholder}")))?;
        let frame = self.context.table(quoted(&call.table)).await?;
        let plan = frame.into_optimized_plan()?;
        let input = Box::pin(self.translate(&plan)).await?;
        if input.windowing.is_some() {
            return Err(SqlError::at(
                "a window call over another window call must aggregate first",
                call.position,
            ));
        }
        if is_changelog(&input.schema) {
            return Err(SqlError::at(
                "a window table function over an updating query is not supported",
                call.position,
            ));
        }
        let time_index = input.schema.index_of(&call.time_column).map_err(|_| {
            SqlError::at(
                format!(
                    "Column '{}' not found in table '{}'",
                    call.time_column, call.table
                ),
                call.position,
            )
        })?;
        if let Some(table) = self.catalog.tables.get(&call.table) {
            let proctime = table
                .computed
                .iter()
                .any(|(name, sql)| *name == call.time_column && crate::functions::is_proctime(sql));
            let rowtime = table
                .watermark
                .as_ref()
                .is_some_and(|w| w.column == call.time_column);
            if !(proctime || rowtime) {
                return Err(SqlError::at(
                    format!(
                        "DESCRIPTOR({}) must be a time attribute of '{}': declare WATERMARK FOR {} AS ... (event time) or make it a PROCTIME() column",
                        call.time_column, call.table, call.time_column
                    ),
                    call.position,
                ));
            }
        }
        let time_type = input.schema.field(time_index).data_type().clone();
        if !matches!(time_type, DataType::Timestamp(_, _) | DataType::Int64) {
            return Err(SqlError::at(
                format!(
                    "DESCRIPTOR({}) must be a TIMESTAMP column, not {time_type}",
                    call.time_column
                ),
                call.position,
            ));
        }
        let width = input.schema.fields().len();
        let indices: Vec<usize> = projection.unwrap_or_else(|| (0..width + 3).collect());
        let window_columns = [0, 1, 2].map(|k| indices.iter().position(|&i| i == width + k));
        let mut fields: Vec<Field> = projected
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        fields.push(Field::new(ROWTIME, time_type, true));
        let schema = Arc::new(Schema::new(fields));
        let out = schema.clone();
        let f: BatchFn = Arc::new(move |batch: RecordBatch| {
            let rows = batch.num_rows();
            let mut columns: Vec<ArrayRef> = indices
                .iter()
                .map(|&i| {
                    if i < width {
                        batch.column(i).clone()
                    } else {
                        new_null_array(&DataType::Timestamp(TimeUnit::Millisecond, None), rows)
                    }
                })
                .collect();
            columns.push(batch.column(time_index).clone());
            // The window columns are placeholders and declared non-null.
            let options = datafusion::arrow::record_batch::RecordBatchOptions::new()
                .with_row_count(Some(rows));
            Ok(Some(RecordBatch::try_new_with_options(
                relaxed(&out),
                columns,
                &options,
            )?))
        });
        let windowing = Windowing {
            kind: call.kind,
            function: call.function,
            partition: call.partition.clone(),
            rowtime: schema.fields().len() - 1,
            columns: window_columns,
        };
        Ok(Planned {
            node: Node::Map {
                input: Box::new(input.node),
                name: call.function.to_string(),
                f,
            },
            schema: relaxed(&schema),
            windowing: Some(windowing),
            rank: None,
            window_output: None,
        })
    }

    pub(super) fn window_aggregate(
        &self,
        aggregate: &datafusion::logical_expr::Aggregate,
        input: Planned,
    ) -> Result<Planned, SqlError> {
        let Some(windowing) = input.windowing else {
            return Err(self.reject(
                "GROUP BY without a window (an updating aggregate) is not supported yet; group by window_start, window_end of a window table function",
                &["GROUP"],
            ));
        };
        let input_df = aggregate.input.schema();
        let mut keys = Vec::new();
        // For each output column of DataFusion's aggregate, the column of ours.
        let mut order = Vec::new();
        let (mut has_start, mut has_end) = (false, false);
        let mut key_columns: Vec<Option<String>> = Vec::new();
        for (i, expr) in aggregate.group_expr.iter().enumerate() {
            match expr {
                Expr::Column(c) if c.name == "window_start" => {
                    has_start = true;
                    order.push(0);
                }
                Expr::Column(c) if c.name == "window_end" => {
                    has_end = true;
                    order.push(1);
                }
                Expr::Column(c) if c.name == "window_time" => {
                    return Err(self.reject(
                        "GROUP BY window_time is not supported; group by window_start, window_end",
                        &["GROUP"],
                    ));
                }
                Expr::GroupingSet(_) => {
                    return Err(self.reject(
                        "GROUPING SETS, CUBE and ROLLUP are not supported",
                        &["GROUP"],
                    ));
                }
                other => {
                    key_columns.push(match other {
                        Expr::Column(c) => Some(c.name.clone()),
                        _ => None,
                    });
                    let physical = self
                        .context
                        .state()
                        .create_physical_expr(other.clone(), input_df)?;
                    let name = aggregate.schema.field(i).name().clone();
                    order.push(2 + keys.len());
                    keys.push((physical, name));
                }
            }
        }
        if !(has_start && has_end) {
            return Err(self.reject(
                "a window aggregation must GROUP BY window_start and window_end",
                &["GROUP"],
            ));
        }
        if matches!(windowing.kind, WindowKind::Session { .. }) {
            // Sessions are kept per partition key, so the groups must be exactly those keys.
            let mut grouped: Vec<Option<String>> = key_columns.clone();
            grouped.sort();
            let mut partition: Vec<Option<String>> =
                windowing.partition.iter().cloned().map(Some).collect();
            partition.sort();
            if grouped != partition {
                return Err(self.reject(
                    &format!(
                        "a SESSION window aggregation must GROUP BY window_start, window_end and exactly its PARTITION BY columns ({})",
                        windowing.partition.join(", ")
                    ),
                    &["GROUP"],
                ));
            }
        }
        let physical_input = input.schema.clone();
        let mut aggregates = Vec::new();
        let mut filters = Vec::new();
        for expr in &aggregate.aggr_expr {
            let state = self.context.state();
            let planning = PhysicalPlanningContext::default();
            let lowered = LoweredAggregateBuilder::new(
                expr,
                input_df,
                physical_input.as_ref(),
                state.execution_props(),
                &planning,
            )
            .build()?;
            let (function, filter) = (lowered.aggregate, lowered.filter);
            if !lowered.order_bys.is_empty() {
                return Err(
                    self.reject("aggregates with ORDER BY are not supported yet", &["ORDER"])
                );
            }
            order.push(2 + keys.len() + aggregates.len());
            aggregates.push(function);
            filters.push(filter);
        }
        let describe = format!(
            "{}({} ms) keys [{}] aggregates [{}]",
            windowing.function,
            match windowing.kind {
                WindowKind::Tumble { size } => size.to_string(),
                WindowKind::Hop { slide, size } => format!("{slide}, {size}"),
                WindowKind::Cumulate { step, max } => format!("{step}, {max}"),
                WindowKind::Session { gap } => gap.to_string(),
            },
            keys.iter()
                .map(|(_, n)| n.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            aggregates
                .iter()
                .map(|a| a.name().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        );
        let spec = Arc::new(WindowAggregate {
            window: windowing.kind,
            time: Arc::new(Column::new(ROWTIME, windowing.rowtime)),
            keys,
            aggregates,
            filters,
            input_schema: physical_input,
        });
        let schema = Arc::new(aggregate.schema.as_arrow().clone());
        let node = Node::WindowAggregate {
            input: Box::new(input.node),
            spec,
            describe,
        };
        let identity = order.iter().enumerate().all(|(i, &o)| i == o);
        let window_output = match (
            order.iter().position(|&o| o == 0),
            order.iter().position(|&o| o == 1),
        ) {
            (Some(start), Some(end)) => Some([start, end]),
            _ => None,
        };
        let out = schema.clone();
        // Our operator emits window_start, window_end, keys, aggregates;
        // DataFusion's schema has the GROUP BY order and its own names.
        let f: BatchFn = Arc::new(move |batch: RecordBatch| {
            let columns: Vec<ArrayRef> = if identity {
                batch.columns().to_vec()
            } else {
                order.iter().map(|&i| batch.column(i).clone()).collect()
            };
            Ok(Some(RecordBatch::try_new(out.clone(), columns)?))
        });
        Ok(Planned {
            node: Node::Map {
                input: Box::new(node),
                name: "WindowOutput".into(),
                f,
            },
            schema,
            windowing: None,
            rank: None,
            window_output,
        })
    }
}

/// The same schema with every field nullable, for batches that carry
/// placeholder nulls.
pub(super) fn relaxed(schema: &SchemaRef) -> SchemaRef {
    Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect::<Vec<_>>(),
    ))
}

/// Names of the window columns a windowed plan carries.
pub(super) fn window_column_names(windowing: &Windowing, schema: &SchemaRef) -> Vec<String> {
    windowing
        .columns
        .iter()
        .flatten()
        .map(|&i| schema.field(i).name().clone())
        .collect()
}

pub(super) fn references_window_columns(
    expr: &Expr,
    windowing: &Windowing,
    schema: &SchemaRef,
) -> bool {
    let names = window_column_names(windowing, schema);
    expr.column_refs().iter().any(|c| names.contains(&c.name))
}

/// Whether a projection computes something from window columns, which hold
/// placeholders until filled: passing them through is fine.
pub(super) fn computes_on_window_columns(
    exprs: &[Expr],
    windowing: &Windowing,
    schema: &SchemaRef,
) -> bool {
    exprs.iter().any(|e| {
        !matches!(e.clone().unalias(), Expr::Column(_))
            && references_window_columns(e, windowing, schema)
    })
}

/// Whether an aggregate groups by both window columns of its input.
pub(super) fn groups_by_window(
    aggregate: &datafusion::logical_expr::Aggregate,
    schema: &SchemaRef,
    [start, end]: [usize; 2],
) -> bool {
    let grouped = |i: usize| {
        let name = schema.field(i).name();
        aggregate
            .group_expr
            .iter()
            .any(|e| matches!(e, Expr::Column(c) if c.name == *name))
    };
    grouped(start) && grouped(end)
}
