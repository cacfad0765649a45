//! `agg(...) OVER (PARTITION BY ... ORDER BY <time attribute> <frame>)`:
//! Flink's OVER aggregation. What Flink refuses in streaming mode (an order
//! that is not a time attribute ascending, a FOLLOWING bound, different
//! windows in one SELECT) is refused here too, at the construct.

use std::sync::Arc;

use datafusion::logical_expr::expr::{
    AggregateFunction, NullTreatment, WindowFunction, WindowFunctionDefinition,
};
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::{
    AggregateUDF, Expr, WindowFrame, WindowFrameBound, WindowFrameUnits,
};
use datafusion::physical_expr::aggregate::LoweredAggregateBuilder;
use datafusion::scalar::ScalarValue;
use runnel_engine::changelog::is_changelog;
use runnel_engine::over::{Frame, OverAggregate};

use super::{Node, Planned, Planner};
use crate::error::SqlError;

/// Whether a window node computes aggregates (not only `ROW_NUMBER()`,
/// which is top-N and deduplication).
pub(crate) fn is_over_aggregation(window: &datafusion::logical_expr::Window) -> bool {
    window.window_expr.iter().any(|expr| {
        matches!(expr.clone().unalias(), Expr::WindowFunction(f) if f.fun.name() != "row_number")
    })
}

/// Window functions that are aggregates over the frame in Flink.
const FRAME_AGGREGATES: [&str; 2] = ["first_value", "last_value"];

impl Planner<'_> {
    pub(crate) fn over_aggregate(
        &self,
        window: &datafusion::logical_expr::Window,
        input: Planned,
    ) -> Result<Planned, SqlError> {
        let refuse = |message: &str| self.reject(message, &["OVER"]);
        if is_changelog(&input.schema) {
            return Err(refuse(
                "an OVER aggregation over an updating input is not supported (Flink's OVER takes an append-only input)",
            ));
        }
        let mut functions: Vec<(Arc<AggregateUDF>, WindowFunction)> = Vec::new();
        for expr in &window.window_expr {
            let Expr::WindowFunction(f) = expr.clone().unalias() else {
                return Err(refuse("unsupported OVER expression"));
            };
            let name = f.fun.name().to_string();
            let udf = match &f.fun {
                WindowFunctionDefinition::AggregateUDF(udf) => udf.clone(),
                WindowFunctionDefinition::WindowUDF(_)
                    if FRAME_AGGREGATES.contains(&name.as_str()) =>
                {
                    datafusion::execution::FunctionRegistry::udaf(self.context, &name)?
                }
                WindowFunctionDefinition::WindowUDF(_) => {
                    let upper = name.to_uppercase();
                    return Err(self.reject(
                        &format!(
                            "{upper}() OVER a frame is not supported: OVER aggregations take aggregate functions, and ROW_NUMBER() only top-N and deduplication"
                        ),
                        &[&upper, "OVER"],
                    ));
                }
            };
            functions.push((udf, *f));
        }
        let first = &functions[0].1.params;
        if functions.iter().any(|(_, f)| {
            f.params.partition_by != first.partition_by
                || f.params.order_by != first.order_by
                || f.params.window_frame != first.window_frame
        }) {
            return Err(refuse(
                "all OVER aggregates of one SELECT must use the same window (PARTITION BY, ORDER BY and frame), as in Flink",
            ));
        }
        if functions.iter().any(|(_, f)| f.params.filter.is_some()) {
            return Err(self.reject(
                "FILTER (WHERE ...) is not supported in OVER aggregations",
                &["FILTER", "OVER"],
            ));
        }
        let input_df = window.input.schema();
        let mut partition = Vec::new();
        for expr in &first.partition_by {
            let Expr::Column(column) = expr else {
                return Err(self.reject(
                    "PARTITION BY of an OVER window must list columns",
                    &["PARTITION", "OVER"],
                ));
            };
            partition.push(input_df.index_of_column(column)?);
        }
        let time_column = match first.order_by.as_slice() {
            [sort] if sort.asc => match &sort.expr {
                Expr::Column(column) => input_df
                    .index_of_column(column)
                    .ok()
                    .filter(|_| self.is_time_attribute(&column.name)),
                _ => None,
            },
            _ => None,
        };
        let Some(time_column) = time_column else {
            return Err(self.reject(
                "an OVER window must be ORDER BY one time attribute ascending (a column with a WATERMARK, or PROCTIME()), as in Flink",
                &["ORDER", "OVER"],
            ));
        };
        let frame = self.frame(&first.window_frame)?;
        let physical_input = input.schema.clone();
        let state = self.context.state();
        let planning = PhysicalPlanningContext::default();
        let mut aggregates = Vec::new();
        for (udf, function) in &functions {
            // Flink's FIRST_VALUE and LAST_VALUE pass over NULLs.
            let null_treatment = match FRAME_AGGREGATES.contains(&udf.name()) {
                true => function
                    .params
                    .null_treatment
                    .or(Some(NullTreatment::IgnoreNulls)),
                false => function.params.null_treatment,
            };
            let call = Expr::AggregateFunction(AggregateFunction::new_udf(
                udf.clone(),
                function.params.args.clone(),
                function.params.distinct,
                None,
                Vec::new(),
                null_treatment,
            ));
            let lowered = LoweredAggregateBuilder::new(
                &call,
                input_df,
                physical_input.as_ref(),
                state.execution_props(),
                &planning,
            )
            .build()?;
            aggregates.push(lowered.aggregate);
        }
        let schema = Arc::new(window.schema.as_arrow().clone());
        let describe = format!(
            "{} per [{}] by {} {}",
            aggregates
                .iter()
                .map(|a| a.name().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            partition
                .iter()
                .map(|&i| input.schema.field(i).name().as_str())
                .collect::<Vec<_>>()
                .join(", "),
            input.schema.field(time_column).name(),
            match frame {
                Frame::Rows { preceding: None } => "ROWS UNBOUNDED PRECEDING".to_string(),
                Frame::Rows { preceding: Some(n) } => format!("ROWS {n} PRECEDING"),
                Frame::Range { preceding: None } => "RANGE UNBOUNDED PRECEDING".to_string(),
                Frame::Range {
                    preceding: Some(ms),
                } => format!("RANGE {ms} ms PRECEDING"),
            }
        );
        let spec = Arc::new(OverAggregate {
            partition,
            time_column,
            frame,
            aggregates,
            output_schema: schema.clone(),
            ttl: self.state_ttl()?,
        });
        Ok(Planned::new(
            Node::OverAggregate {
                input: Box::new(input.node),
                spec,
                describe,
            },
            schema,
        ))
    }

    fn frame(&self, frame: &WindowFrame) -> Result<Frame, SqlError> {
        let refuse = |message: &str| self.reject(message, &["ROWS", "RANGE", "GROUPS", "OVER"]);
        if frame.end_bound != WindowFrameBound::CurrentRow {
            return Err(self.reject(
                "an OVER frame must end at CURRENT ROW on a stream (FOLLOWING rows are not supported, as in Flink)",
                &["FOLLOWING", "ROWS", "RANGE", "OVER"],
            ));
        }
        let preceding = match &frame.start_bound {
            WindowFrameBound::Preceding(value) if value.is_null() => None,
            WindowFrameBound::Preceding(value) => Some(value.clone()),
            WindowFrameBound::CurrentRow | WindowFrameBound::Following(_) => {
                return Err(refuse(
                    "an OVER frame must start at UNBOUNDED PRECEDING or n PRECEDING, as in Flink",
                ));
            }
        };
        match frame.units {
            WindowFrameUnits::Rows => {
                let rows = match preceding {
                    None => None,
                    Some(value) => Some(
                        match value.cast_to(&datafusion::arrow::datatypes::DataType::UInt64)? {
                            ScalarValue::UInt64(Some(n)) => n,
                            _ => return Err(refuse("ROWS ... PRECEDING takes a count of rows")),
                        },
                    ),
                };
                Ok(Frame::Rows { preceding: rows })
            }
            WindowFrameUnits::Range => {
                let millis = match preceding {
                    None => None,
                    Some(value) => Some(interval_millis(&value).ok_or_else(|| {
                        refuse("RANGE ... PRECEDING on a time attribute takes a day-to-second interval, such as INTERVAL '1' MINUTE")
                    })?),
                };
                Ok(Frame::Range { preceding: millis })
            }
            WindowFrameUnits::Groups => Err(refuse(
                "GROUPS frames are not supported (Flink has ROWS and RANGE)",
            )),
        }
    }
}

/// A RANGE bound's interval in milliseconds; months have no fixed length.
fn interval_millis(value: &ScalarValue) -> Option<i64> {
    match value {
        ScalarValue::IntervalDayTime(Some(v)) => {
            Some(i64::from(v.days) * 86_400_000 + i64::from(v.milliseconds))
        }
        ScalarValue::IntervalMonthDayNano(Some(v)) if v.months == 0 => {
            Some(i64::from(v.days) * 86_400_000 + v.nanoseconds / 1_000_000)
        }
        ScalarValue::DurationMillisecond(Some(v)) => Some(*v),
        ScalarValue::DurationSecond(Some(v)) => Some(v * 1000),
        ScalarValue::DurationMicrosecond(Some(v)) => Some(v / 1000),
        ScalarValue::DurationNanosecond(Some(v)) => Some(v / 1_000_000),
        _ => None,
    }
    .filter(|&ms| ms >= 0)
}
