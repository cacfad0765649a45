//! Joins the engine can run without retracting: window joins (equal
//! `window_start` and `window_end` on both sides) and interval joins
//! (`l.ts BETWEEN r.ts - INTERVAL ... AND r.ts + INTERVAL ...`). Any other
//! join would update its results and waits for the updating engine.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::{Column, DFSchema};
use datafusion::logical_expr::{Expr, JoinType, Operator};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::scalar::ScalarValue;
use runnel_engine::join::interval::{Expiry, IntervalJoin};
use runnel_engine::join::kernel::{JoinKind, JoinSpec};
use runnel_engine::time::Millis;

use crate::error::SqlError;
use crate::plan::{Node, Planned, Planner};

impl Planner<'_> {
    pub(crate) fn join(
        &self,
        join: &datafusion::logical_expr::Join,
        left: Planned,
        right: Planned,
    ) -> Result<Planned, SqlError> {
        let reject = |message: &str| self.reject(message, &["JOIN", "FROM"]);
        let windowed = left.windowing.is_some() || right.windowing.is_some();
        let left = self.settled(self.materialize(left)?)?;
        let right = self.settled(self.materialize(right)?)?;
        let kind = match join.join_type {
            JoinType::Inner => JoinKind::Inner,
            JoinType::Left => JoinKind::Left,
            JoinType::Right => JoinKind::Right,
            JoinType::Full => JoinKind::Full,
            JoinType::LeftSemi => JoinKind::LeftSemi,
            JoinType::LeftAnti => JoinKind::LeftAnti,
            JoinType::RightSemi => JoinKind::RightSemi,
            JoinType::RightAnti => JoinKind::RightAnti,
            other => return Err(reject(&format!("{other} joins are not supported"))),
        };
        let (left_df, right_df) = (join.left.schema(), join.right.schema());
        let joined_df = left_df.join(right_df)?;
        let state = self.context.state();
        let mut left_keys = Vec::new();
        let mut right_keys = Vec::new();
        let mut routes = (Vec::new(), Vec::new());
        let mut window_pairs = 0;
        for (l, r) in &join.on {
            left_keys.push(state.create_physical_expr(l.clone(), left_df)?);
            right_keys.push(state.create_physical_expr(r.clone(), right_df)?);
            if let (Expr::Column(lc), Expr::Column(rc)) = (l, r) {
                let (li, ri) = (left_df.index_of_column(lc)?, right_df.index_of_column(rc)?);
                if left.schema.field(li).data_type() == right.schema.field(ri).data_type() {
                    routes.0.push(li);
                    routes.1.push(ri);
                }
                if lc.name == rc.name && (lc.name == "window_start" || lc.name == "window_end") {
                    window_pairs += 1;
                }
            }
        }
        let filter: Option<Arc<dyn PhysicalExpr>> = match &join.filter {
            Some(f) => Some(state.create_physical_expr(f.clone(), &joined_df)?),
            None => None,
        };
        let joined_schema = nullable(&left.schema, &right.schema);
        let output_schema = Arc::new(join.schema.as_arrow().clone());
        let spec = JoinSpec {
            kind,
            left_keys,
            right_keys,
            filter,
            left_schema: left.schema.clone(),
            right_schema: right.schema.clone(),
            joined_schema,
            output_schema: output_schema.clone(),
        };
        let keys = join
            .on
            .iter()
            .map(|(l, r)| format!("{l} = {r}"))
            .collect::<Vec<_>>()
            .join(", ");
        if window_pairs == 2 {
            let describe = format!("{} on [{keys}]", join.join_type);
            let node = Node::WindowJoin {
                left: Box::new(left.node),
                right: Box::new(right.node),
                spec: Arc::new(spec),
                routes,
                describe,
            };
            return Ok(Planned::new(node, output_schema));
        }
        if windowed {
            return Err(reject(
                "a join of window table functions must join on both window_start and window_end (a window join)",
            ));
        }
        let bounds = join
            .filter
            .as_ref()
            .and_then(|f| interval_bounds(f, left_df, right_df));
        // Which rows each side keeps, and how long: by event time for an
        // interval join; for an inner join of append-only inputs, which only
        // inserts, for the state TTL or until the other side ends.
        let (expiry, left_time, right_time, describe) = match bounds {
            Some(bounds) => {
                for (schema, index) in [
                    (&left.schema, bounds.left_time),
                    (&right.schema, bounds.right_time),
                ] {
                    let name = schema.field(index).name();
                    if !self.is_time_attribute(name) {
                        return Err(reject(&format!(
                            "an interval join bounds time attributes, and '{name}' is none: declare WATERMARK FOR {name} AS ... on its table (or make it a PROCTIME() column)"
                        )));
                    }
                }
                let describe = format!(
                    "{} on [{keys}], {} - {} in [{} ms, {} ms]",
                    join.join_type,
                    right.schema.field(bounds.right_time).name(),
                    left.schema.field(bounds.left_time).name(),
                    bounds.lower,
                    bounds.upper
                );
                let expiry = Expiry::Interval {
                    lower: bounds.lower,
                    upper: bounds.upper,
                };
                (expiry, bounds.left_time, bounds.right_time, describe)
            }
            None => {
                let ttl = self.state_ttl()?;
                if kind != JoinKind::Inner {
                    return self.regular_join(join, left, right);
                }
                match ttl {
                    Some(ttl) => {
                        let describe = format!(
                            "INNER on [{keys}], rows kept {} ms (table.exec.state.ttl)",
                            ttl.as_millis()
                        );
                        (Expiry::Ttl(ttl), 0, 0, describe)
                    }
                    None => {
                        let describe = format!("INNER on [{keys}]");
                        (Expiry::Never, 0, 0, describe)
                    }
                }
            }
        };
        let node = Node::IntervalJoin {
            left: Box::new(left.node),
            right: Box::new(right.node),
            spec: Arc::new(IntervalJoin {
                join: spec,
                left_time,
                right_time,
                expiry,
                left_route: routes.0,
                right_route: routes.1,
            }),
            describe,
        };
        Ok(Planned::new(node, output_schema))
    }
}

impl Planner<'_> {
    /// Whether some table declares `name` as its event time or processing
    /// time: the rows of such a column never travel behind the watermark.
    pub(super) fn is_time_attribute(&self, name: &str) -> bool {
        self.catalog.tables.values().any(|table| {
            table.watermark.as_ref().is_some_and(|w| w.column == name)
                || table
                    .computed
                    .iter()
                    .any(|(column, sql)| column == name && crate::functions::is_proctime(sql))
        })
    }
}

pub(crate) fn nullable(left: &SchemaRef, right: &SchemaRef) -> SchemaRef {
    let fields: Vec<Field> = left
        .fields()
        .iter()
        .chain(right.fields().iter())
        .map(|f| f.as_ref().clone().with_nullable(true))
        .collect();
    Arc::new(Schema::new(fields))
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) struct IntervalBounds {
    pub left_time: usize,
    pub right_time: usize,
    /// `right time - left time` lies in `[lower, upper]`.
    pub lower: Millis,
    pub upper: Millis,
}

/// The time bounds a join condition puts on `right.ts - left.ts`, when it
/// bounds one pair of time columns both ways.
pub(crate) fn interval_bounds(
    condition: &Expr,
    left: &DFSchema,
    right: &DFSchema,
) -> Option<IntervalBounds> {
    let mut comparisons = Vec::new();
    for conjunct in datafusion::logical_expr::utils::split_conjunction(condition) {
        match conjunct {
            Expr::BinaryExpr(b) => comparisons.push((b.left.as_ref(), b.op, b.right.as_ref())),
            Expr::Between(between) if !between.negated => {
                comparisons.push((between.expr.as_ref(), Operator::GtEq, between.low.as_ref()));
                comparisons.push((between.expr.as_ref(), Operator::LtEq, between.high.as_ref()));
            }
            _ => {}
        }
    }
    let (mut lower, mut upper) = (None::<Millis>, None::<Millis>);
    let mut columns: Option<(usize, usize)> = None;
    for (a, op, b) in comparisons {
        let (Some((ac, ao)), Some((bc, bo))) = (shifted_column(a), shifted_column(b)) else {
            continue;
        };
        if !matches!(
            op,
            Operator::Lt | Operator::LtEq | Operator::Gt | Operator::GtEq
        ) {
            continue;
        }
        // Normalise to `right + ro OP left + lo`, i.e. `d = r - l OP lo - ro`.
        let (pair, op, k) = match (side(&ac, left, right), side(&bc, left, right)) {
            (Some(Side::Right(r)), Some(Side::Left(l))) => ((l, r), op, bo - ao),
            (Some(Side::Left(l)), Some(Side::Right(r))) => ((l, r), op.swap()?, ao - bo),
            _ => continue,
        };
        if *columns.get_or_insert(pair) != pair {
            return None;
        }
        match op {
            Operator::LtEq => upper = Some(upper.map_or(k, |u| u.min(k))),
            Operator::Lt => upper = Some(upper.map_or(k - 1, |u| u.min(k - 1))),
            Operator::GtEq => lower = Some(lower.map_or(k, |l| l.max(k))),
            Operator::Gt => lower = Some(lower.map_or(k + 1, |l| l.max(k + 1))),
            _ => {}
        }
    }
    let ((left_time, right_time), lower, upper) = (columns?, lower?, upper?);
    Some(IntervalBounds {
        left_time,
        right_time,
        lower,
        upper,
    })
}

enum Side {
    Left(usize),
    Right(usize),
}

/// Which side a time column is of; comparisons of other types (`l.v >
/// r.v`) don't bound the interval.
fn side(column: &Column, left: &DFSchema, right: &DFSchema) -> Option<Side> {
    let is_time = |schema: &DFSchema, i: usize| {
        matches!(schema.field(i).data_type(), DataType::Timestamp(_, _))
    };
    if let Ok(i) = left.index_of_column(column) {
        return is_time(left, i).then_some(Side::Left(i));
    }
    let i = right.index_of_column(column).ok()?;
    is_time(right, i).then_some(Side::Right(i))
}

/// `col`, `col + INTERVAL` or `col - INTERVAL`, through casts: the column
/// and its shift in milliseconds.
fn shifted_column(expr: &Expr) -> Option<(Column, Millis)> {
    match expr {
        Expr::Column(c) => Some((c.clone(), 0)),
        Expr::Cast(cast) => shifted_column(&cast.expr),
        Expr::TryCast(cast) => shifted_column(&cast.expr),
        Expr::BinaryExpr(b) => {
            let (column, shift) = shifted_column(&b.left)?;
            let Expr::Literal(value, _) = b.right.as_ref() else {
                return None;
            };
            let delta = interval_millis(value)?;
            match b.op {
                Operator::Plus => Some((column, shift + delta)),
                Operator::Minus => Some((column, shift - delta)),
                _ => None,
            }
        }
        _ => None,
    }
}

fn interval_millis(value: &ScalarValue) -> Option<Millis> {
    match value {
        ScalarValue::IntervalDayTime(Some(v)) => {
            Some(v.days as i64 * 86_400_000 + v.milliseconds as i64)
        }
        ScalarValue::IntervalMonthDayNano(Some(v)) if v.months == 0 => {
            Some(v.days as i64 * 86_400_000 + v.nanoseconds / 1_000_000)
        }
        ScalarValue::DurationMillisecond(Some(v)) => Some(*v),
        ScalarValue::DurationSecond(Some(v)) => Some(v * 1000),
        _ => None,
    }
}
