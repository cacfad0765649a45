//! What DEFINE conditions and MEASURES read from a match: rows of one
//! pattern variable (or of all of them) counted from the first or the last,
//! and aggregates over them. An expression is planned over one column per
//! reference; evaluating it for many matches at once is one batch.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, BooleanArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::scalar::ScalarValue;

use crate::error::EngineError;
use crate::kept_rows::{RowRef, Rows};

#[derive(Clone, Debug, PartialEq)]
pub enum Reference {
    /// Column `column` of the `offset`-th last row of `variable` (of every
    /// variable when `None`). In a condition the row being tested is the
    /// last row of its own variable and of every variable.
    Last {
        variable: Option<usize>,
        column: usize,
        offset: usize,
    },
    /// The same, counted from the first row.
    First {
        variable: Option<usize>,
        column: usize,
        offset: usize,
    },
    /// Aggregate `aggregate` of the spec over the rows of `variable`.
    Aggregate {
        variable: Option<usize>,
        aggregate: usize,
    },
}

/// An expression over a match.
pub struct Expression {
    pub references: Vec<Reference>,
    /// One column per reference, in order.
    pub schema: SchemaRef,
    pub expr: Arc<dyn PhysicalExpr>,
}

impl Expression {
    /// The largest offset back from the tested row, when the expression
    /// reads only that row and the rows just before it in the match
    /// (`price < PREV(price)`): such a condition depends on a row and on
    /// how many rows precede it in the match, up to that offset, so it
    /// is evaluated for a whole firing's rows at once.
    pub fn local_reach(&self, variable: usize) -> Option<usize> {
        let mut reach = 0;
        for reference in &self.references {
            match reference {
                Reference::Last {
                    variable: v,
                    offset: 0,
                    ..
                } if v.is_none_or(|v| v == variable) => {}
                Reference::Last {
                    variable: None,
                    offset,
                    ..
                } => reach = reach.max(*offset),
                _ => return None,
            }
        }
        Some(reach)
    }
}

/// A row of a match and the variable it was taken as.
#[derive(Clone, Copy, Debug)]
pub struct Matched {
    pub row: RowRef,
    /// The row's place in its partition, in the order rows are matched.
    pub seq: u64,
    pub variable: u16,
}

/// The rows of a (partial) match and, for a condition, the row being
/// tested as a variable.
#[derive(Clone, Copy)]
pub struct MatchView<'a> {
    pub rows: &'a [Matched],
    pub current: Option<(RowRef, usize)>,
}

impl MatchView<'_> {
    fn rows_of(&self, variable: Option<usize>) -> impl DoubleEndedIterator<Item = RowRef> + '_ {
        let keep = move |v: usize| variable.is_none_or(|want| want == v);
        self.rows
            .iter()
            .filter(move |m| keep(m.variable as usize))
            .map(|m| m.row)
            .chain(
                self.current
                    .filter(move |&(_, v)| keep(v))
                    .map(|(row, _)| row),
            )
    }
}

/// What evaluating needs besides the matches.
pub struct Reading<'a> {
    pub rows: &'a Rows,
    pub input: &'a Schema,
    pub aggregates: &'a [Arc<AggregateFunctionExpr>],
}

impl Reading<'_> {
    /// `expression` for each of `views`.
    pub fn evaluate(
        &self,
        expression: &Expression,
        views: &[MatchView<'_>],
    ) -> Result<ArrayRef, EngineError> {
        let mut columns = Vec::with_capacity(expression.references.len());
        for (reference, field) in expression.references.iter().zip(expression.schema.fields()) {
            let column = match reference {
                Reference::Last {
                    variable,
                    column,
                    offset,
                } => self.column_at(*column, views, |v| v.rows_of(*variable).rev().nth(*offset))?,
                Reference::First {
                    variable,
                    column,
                    offset,
                } => self.column_at(*column, views, |v| v.rows_of(*variable).nth(*offset))?,
                Reference::Aggregate {
                    variable,
                    aggregate,
                } => self.aggregate(*aggregate, *variable, views)?,
            };
            columns.push(match column.data_type() == field.data_type() {
                true => column,
                false => cast(&column, field.data_type())?,
            });
        }
        let batch = RecordBatch::try_new_with_options(
            expression.schema.clone(),
            columns,
            &RecordBatchOptions::new().with_row_count(Some(views.len())),
        )?;
        Ok(expression.expr.evaluate(&batch)?.into_array(views.len())?)
    }

    /// Column `column` of the row `row_of` picks in each view.
    fn column_at(
        &self,
        column: usize,
        views: &[MatchView<'_>],
        row_of: impl Fn(&MatchView<'_>) -> Option<RowRef>,
    ) -> Result<ArrayRef, EngineError> {
        let refs: Vec<Option<RowRef>> = views.iter().map(row_of).collect();
        self.rows
            .column(column, self.input.field(column).data_type(), &refs)
    }

    /// A condition for each of `views`: NULL is false.
    pub fn holds(
        &self,
        expression: &Expression,
        views: &[MatchView<'_>],
    ) -> Result<BooleanArray, EngineError> {
        let result = self.evaluate(expression, views)?;
        truth(&result)
    }

    fn aggregate(
        &self,
        aggregate: usize,
        variable: Option<usize>,
        views: &[MatchView<'_>],
    ) -> Result<ArrayRef, EngineError> {
        let function = &self.aggregates[aggregate];
        let argument_types: Vec<DataType> = function
            .expressions()
            .iter()
            .map(|e| e.data_type(self.input))
            .collect::<Result<_, _>>()?;
        let mut values = Vec::with_capacity(views.len());
        for view in views {
            let refs: Vec<Option<RowRef>> = view.rows_of(variable).map(Some).collect();
            let mut accumulator = function.create_accumulator()?;
            if !refs.is_empty() {
                let arguments = argument_types
                    .iter()
                    .enumerate()
                    .map(|(i, t)| self.rows.argument(aggregate, i, t, &refs))
                    .collect::<Result<Vec<_>, _>>()?;
                accumulator.update_batch(&arguments)?;
            }
            values.push(accumulator.evaluate()?);
        }
        match values.is_empty() {
            true => Ok(datafusion::arrow::array::new_empty_array(
                function.field().data_type(),
            )),
            false => Ok(ScalarValue::iter_to_array(values)?),
        }
    }
}

/// A boolean result with NULL read as false.
pub fn truth(result: &ArrayRef) -> Result<BooleanArray, EngineError> {
    let booleans = result
        .as_any()
        .downcast_ref::<BooleanArray>()
        .ok_or_else(|| EngineError::Plan("a DEFINE condition must be BOOLEAN".into()))?;
    Ok(match booleans.null_count() {
        0 => booleans.clone(),
        _ => datafusion::arrow::compute::prep_null_mask_filter(booleans),
    })
}
