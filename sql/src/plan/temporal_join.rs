//! `JOIN versioned FOR SYSTEM_TIME AS OF probe.time AS r ON ...`, where the
//! table has a PRIMARY KEY and a WATERMARK: Flink's event-time temporal
//! join (`runnel_engine::join::temporal`). The versioned side is read whole
//! (every version), and its conditions, wherever DataFusion put them, are
//! applied to the version found, as Flink applies them.

use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, DFSchema};
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{Expr, Join, JoinType, LogicalPlan, TableScan};
use runnel_engine::changelog::is_changelog;
use runnel_engine::join::kernel::{JoinKind, JoinSpec};
use runnel_engine::join::temporal::TemporalJoin;

use super::{Node, Planned, Planner, project};
use crate::catalog::SOURCE_PREFIX;
use crate::error::SqlError;
use crate::front::temporal::Temporal;

/// The versioned side of a join: its scan, the conditions between the join
/// and the scan, the clause, the probe's time column and the join's own
/// condition without the marker.
pub(super) struct Versioned<'p> {
    scan: &'p TableScan,
    conditions: Vec<Expr>,
    /// Conditions on a versioned view's rows before they are versions.
    before_versions: Vec<Expr>,
    clause: Temporal,
    probe_time: Column,
    filter: Option<Expr>,
}

/// Whether `plan` keeps each key's last row by a column, as Flink's
/// versioned view does: `SELECT ... FROM (SELECT *, ROW_NUMBER() OVER
/// (PARTITION BY k ORDER BY t DESC) AS rn FROM ...) WHERE rn = 1`. The
/// caller checks that `t` is an event-time attribute.
pub(crate) fn versioned_view(plan: &LogicalPlan) -> Option<crate::catalog::VersionedView> {
    let mut node = plan;
    // The column the filter keeps at 1, then renamed back through the
    // projections down to the window's own column name.
    let mut kept: Option<String> = None;
    loop {
        match node {
            LogicalPlan::SubqueryAlias(alias) => node = &alias.input,
            LogicalPlan::Projection(p) => {
                if let Some(name) = &kept {
                    let renamed = p.expr.iter().find_map(|e| match e {
                        Expr::Alias(a) if &a.name == name => match a.expr.as_ref() {
                            Expr::Column(c) => Some(c.name.clone()),
                            _ => None,
                        },
                        _ => None,
                    });
                    if let Some(renamed) = renamed {
                        kept = Some(renamed);
                    }
                }
                if !p
                    .expr
                    .iter()
                    .all(|e| matches!(e.clone().unalias(), Expr::Column(_)))
                {
                    return None;
                }
                node = &p.input;
            }
            LogicalPlan::Filter(filter) if kept.is_none() => {
                kept = split_conjunction(&filter.predicate)
                    .into_iter()
                    .find_map(keeps_first);
                kept.as_ref()?;
                node = &filter.input;
            }
            LogicalPlan::Window(window) => {
                let [expr] = window.window_expr.as_slice() else {
                    return None;
                };
                let Expr::WindowFunction(f) = expr.clone().unalias() else {
                    return None;
                };
                let output = window
                    .schema
                    .field(window.input.schema().fields().len())
                    .name();
                if f.fun.name() != "row_number" || kept.as_deref() != Some(output.as_str()) {
                    return None;
                }
                let keys = f
                    .params
                    .partition_by
                    .iter()
                    .map(|k| match k {
                        Expr::Column(c) => Some(c.name.clone()),
                        _ => None,
                    })
                    .collect::<Option<Vec<_>>>()?;
                let time = match f.params.order_by.as_slice() {
                    [sort] if !sort.asc => match &sort.expr {
                        Expr::Column(c) => c.name.clone(),
                        _ => return None,
                    },
                    _ => return None,
                };
                return (!keys.is_empty()).then_some(crate::catalog::VersionedView { keys, time });
            }
            _ => return None,
        }
    }
}

/// The column `expr` keeps at the first row: `rn = 1`, `rn <= 1`, `rn < 2`.
fn keeps_first(expr: &Expr) -> Option<String> {
    let Expr::BinaryExpr(binary) = expr else {
        return None;
    };
    let one = |e: &Expr, n: i64| matches!(e, Expr::Literal(v, _) if v.to_string().parse::<i64>() == Ok(n));
    let column = match binary.left.as_ref() {
        Expr::Column(c) => c.name.clone(),
        _ => return None,
    };
    use datafusion::logical_expr::Operator;
    match binary.op {
        Operator::Eq | Operator::LtEq if one(&binary.right, 1) => Some(column),
        Operator::Lt if one(&binary.right, 2) => Some(column),
        _ => None,
    }
}

/// Whether `front/temporal.rs` marked `join` as against a versioned table.
pub(super) fn is_marked(join: &Join) -> bool {
    join.filter.as_ref().is_some_and(|f| {
        split_conjunction(f).iter().any(|e| {
            matches!(e, Expr::ScalarFunction(f) if f.name() == crate::functions::TEMPORAL_MARKER)
        })
    })
}

impl Planner<'_> {
    /// The versioned table under `join`'s right side, when `front/temporal.rs`
    /// marked the join as a temporal join against one.
    pub(super) fn versioned_right<'p>(&self, join: &'p Join) -> Option<Versioned<'p>> {
        let conjuncts = split_conjunction(join.filter.as_ref()?);
        let marker = conjuncts.iter().position(|e| {
            matches!(e, Expr::ScalarFunction(f) if f.name() == crate::functions::TEMPORAL_MARKER)
        })?;
        let Expr::ScalarFunction(call) = conjuncts[marker] else {
            return None;
        };
        let Some(Expr::Column(probe_time)) = call.args.first() else {
            return None;
        };
        let filter = conjuncts
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != marker)
            .map(|(_, e)| (*e).clone())
            .reduce(Expr::and);
        let mut node = join.right.as_ref();
        let mut conditions = Vec::new();
        // A versioned view's conditions under its deduplication apply to
        // the rows before they are versions.
        let mut before_versions = Vec::new();
        let mut names = Vec::new();
        let mut under_window = false;
        let scan = loop {
            match node {
                LogicalPlan::SubqueryAlias(alias) => {
                    names.push(alias.alias.table().to_string());
                    node = &alias.input
                }
                LogicalPlan::Projection(p)
                    if p.expr
                        .iter()
                        .all(|e| matches!(e.clone().unalias(), Expr::Column(_))) =>
                {
                    node = &p.input
                }
                LogicalPlan::Filter(filter) => {
                    match under_window {
                        true => before_versions.push(filter.predicate.clone()),
                        false => conditions.push(filter.predicate.clone()),
                    }
                    node = &filter.input;
                }
                LogicalPlan::Window(window) if !under_window => {
                    under_window = true;
                    node = &window.input;
                }
                LogicalPlan::TableScan(scan) => break scan,
                _ => return None,
            }
        };
        let name = scan.table_name.table();
        let table = name.strip_prefix(SOURCE_PREFIX).unwrap_or(name);
        names.push(table.to_string());
        let clause = self
            .versioned
            .iter()
            .chain(self.catalog.views.iter().flat_map(|v| v.versioned.iter()))
            .find(|c| names.contains(&c.table))?
            .clone();
        match under_window {
            true => before_versions.extend(scan.filters.iter().cloned()),
            false => conditions.extend(scan.filters.iter().cloned()),
        }
        // The deduplication's own `rn = 1` is not a condition on a version.
        let columns = scan.source.schema();
        let of_table = |e: &Expr| {
            e.column_refs()
                .iter()
                .all(|c| columns.field_with_name(&c.name).is_ok())
        };
        let conditions = conditions
            .iter()
            .flat_map(split_conjunction)
            .filter(|e| of_table(e))
            .cloned()
            .collect();
        Some(Versioned {
            scan,
            conditions,
            before_versions,
            clause,
            probe_time: probe_time.clone(),
            filter,
        })
    }

    pub(super) async fn temporal_join(
        &self,
        join: &Join,
        left: Planned,
        mut versioned: Versioned<'_>,
    ) -> Result<Planned, SqlError> {
        let at = versioned.clause.position;
        let refuse = |message: String| SqlError::at(message, at);
        let scanned = versioned.scan.table_name.table();
        let table_name = scanned
            .strip_prefix(SOURCE_PREFIX)
            .unwrap_or(scanned)
            .to_string();
        let view = self
            .catalog
            .views
            .iter()
            .find(|v| v.name == versioned.clause.table)
            .and_then(|v| v.versions_of.clone());
        let table = self
            .catalog
            .tables
            .get(&table_name)
            .ok_or_else(|| refuse(format!("Object '{table_name}' not found")))?;
        if table.options.get("connector").map(String::as_str) == Some("jdbc") {
            let table = table.clone();
            return self.lookup_join(join, left, versioned, &table);
        }
        if !table.computed.is_empty() {
            return Err(refuse(format!(
                "a temporal join against '{table_name}', which has computed columns, is not supported yet"
            )));
        }
        let (kind, left) = self.probe_side(join, left, "an event-time temporal join", at)?;
        let whole = LogicalPlan::TableScan(TableScan {
            projection: None,
            filters: Vec::new(),
            fetch: None,
            projected_schema: Arc::new(DFSchema::try_from_qualified_schema(
                versioned.scan.table_name.clone(),
                &versioned.scan.source.schema(),
            )?),
            ..versioned.scan.clone()
        });
        self.reading_versions.set(true);
        let right = Box::pin(self.translate(&whole)).await;
        self.reading_versions.set(false);
        let right = right?;
        let right_schema = right.schema.clone();
        let time_name = versioned.probe_time.name.clone();
        let left_time = join
            .left
            .schema()
            .index_of_column(&versioned.probe_time)
            .map_err(|_| {
                refuse(format!(
                    "FOR SYSTEM_TIME AS OF a versioned table takes a column of the probe side, and '{time_name}' is not one"
                ))
            })?;
        if !self.is_rowtime(&time_name) {
            return Err(refuse(format!(
                "FOR SYSTEM_TIME AS OF a versioned table takes the probe side's event-time attribute, and '{time_name}' is none (a processing-time temporal join needs a lookup source)"
            )));
        }
        let watermark = table
            .watermark
            .as_ref()
            .ok_or_else(|| refuse(format!("'{table_name}' has no WATERMARK")))?;
        // A versioned view's keys and time are its deduplication's.
        let (primary_key, version_time) = match &view {
            Some(view) => (view.keys.clone(), view.time.clone()),
            None => (table.primary_key.clone(), watermark.column.clone()),
        };
        if version_time != watermark.column {
            return Err(refuse(format!(
                "the versioned view '{}' orders by '{version_time}', and '{table_name}''s event-time attribute is '{}'",
                versioned.clause.table, watermark.column
            )));
        }
        let right_time = right_schema
            .index_of(&watermark.column)
            .map_err(|e| refuse(e.to_string()))?;
        let right_df = right_side(join, &right_schema)?;
        let left_df = join.left.schema();
        let state = self.context.state();
        let mut left_keys = Vec::new();
        let mut right_keys = Vec::new();
        let mut routes = (Vec::new(), Vec::new());
        let mut key_columns = Vec::new();
        for (l, r) in &join.on {
            left_keys.push(state.create_physical_expr(l.clone(), left_df)?);
            right_keys.push(state.create_physical_expr(r.clone(), &right_df)?);
            if let (Expr::Column(lc), Expr::Column(rc)) = (l, r) {
                let (li, ri) = (left_df.index_of_column(lc)?, right_df.index_of_column(rc)?);
                key_columns.push(rc.name.clone());
                if left.schema.field(li).data_type() == right_schema.field(ri).data_type() {
                    routes.0.push(li);
                    routes.1.push(ri);
                }
            }
        }
        if let Some(missing) = primary_key.iter().find(|k| !key_columns.contains(k)) {
            return Err(refuse(format!(
                "an event-time temporal join must join on the versioned table's primary key, and '{missing}' of '{}' is not an equality of the ON clause",
                versioned.clause.table
            )));
        }
        let before_versions = self.on_table(
            std::mem::take(&mut versioned.before_versions),
            &right_schema,
        )?;
        let (version_filter, filter) =
            self.conditions(versioned, left_df, &right_df, &right_schema)?;
        let spec = joined_spec(
            kind,
            (left_keys, right_keys),
            filter,
            &left.schema,
            &right_schema,
        );
        let joined_schema = spec.joined_schema.clone();
        let describe = format!(
            "{} {table_name} FOR SYSTEM_TIME AS OF {time_name} on [{}]{}",
            join.join_type,
            on_text(join),
            match version_filter.is_some() {
                true => ", condition on the version found",
                false => "",
            }
        );
        let node = Node::TemporalJoin {
            left: Box::new(left.node),
            right: Box::new(right.node),
            spec: Arc::new(TemporalJoin {
                join: spec,
                left_time,
                right_time,
                version_filter,
                before_versions,
                left_route: routes.0,
                right_route: routes.1,
            }),
            describe,
        };
        let indices = output_columns(join, left.schema.fields().len(), &right_schema)
            .map_err(|e| refuse(e.to_string()))?;
        Ok(project(node, joined_schema, Some(indices)))
    }

    /// Whether `name` is some table's event-time attribute (a WATERMARK).
    fn is_rowtime(&self, name: &str) -> bool {
        self.catalog
            .tables
            .values()
            .any(|t| t.watermark.as_ref().is_some_and(|w| w.column == name))
    }
}

impl Planner<'_> {
    /// The join's kind, INNER or LEFT, and its probe side, which must be
    /// append-only, as Flink requires of both temporal joins.
    fn probe_side(
        &self,
        join: &Join,
        left: Planned,
        what: &str,
        at: crate::error::Position,
    ) -> Result<(JoinKind, Planned), SqlError> {
        let kind = match join.join_type {
            JoinType::Inner => JoinKind::Inner,
            JoinType::Left => JoinKind::Left,
            other => {
                return Err(SqlError::at(
                    format!("{what} is INNER or LEFT (as in Flink), not {other}"),
                    at,
                ));
            }
        };
        let left = self.settled(self.materialize(left)?)?;
        if is_changelog(&left.schema) {
            return Err(SqlError::at(
                format!("{what}'s probe side must be append-only (as in Flink)"),
                at,
            ));
        }
        Ok((kind, left))
    }

    /// The conditions on the looked-up or versioned table alone (over its
    /// columns, applied to the rows found), and the join's other condition
    /// (over the probe's columns, then the table's).
    fn conditions(
        &self,
        versioned: Versioned<'_>,
        left_df: &DFSchema,
        right_df: &DFSchema,
        right_schema: &datafusion::arrow::datatypes::SchemaRef,
    ) -> Result<(Option<PhysicalCondition>, Option<PhysicalCondition>), SqlError> {
        let on_table = self.on_table(versioned.conditions, right_schema)?;
        let joined_df = left_df.join(right_df)?;
        let filter = match versioned.filter {
            Some(f) => Some(self.context.state().create_physical_expr(f, &joined_df)?),
            None => None,
        };
        Ok((on_table, filter))
    }

    /// `conditions`, all over the table's own columns (however the query
    /// names it), as one condition on its rows.
    fn on_table(
        &self,
        conditions: Vec<Expr>,
        right_schema: &datafusion::arrow::datatypes::SchemaRef,
    ) -> Result<Option<PhysicalCondition>, SqlError> {
        let unqualified = DFSchema::try_from(right_schema.as_ref().clone())?;
        match conditions
            .into_iter()
            .map(strip_qualifiers)
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .reduce(Expr::and)
        {
            Some(condition) => Ok(Some(
                self.context
                    .state()
                    .create_physical_expr(condition, &unqualified)?,
            )),
            None => Ok(None),
        }
    }
}

type PhysicalCondition = Arc<dyn datafusion::physical_expr::PhysicalExpr>;

/// The kernel's spec for a join whose output is the probe's columns, then
/// all the table's (both nullable), projected afterwards.
fn joined_spec(
    kind: JoinKind,
    (left_keys, right_keys): (Vec<PhysicalCondition>, Vec<PhysicalCondition>),
    filter: Option<PhysicalCondition>,
    left_schema: &datafusion::arrow::datatypes::SchemaRef,
    right_schema: &datafusion::arrow::datatypes::SchemaRef,
) -> JoinSpec {
    let joined_schema = super::joins::nullable(left_schema, right_schema);
    JoinSpec {
        kind,
        left_keys,
        right_keys,
        filter,
        left_schema: left_schema.clone(),
        right_schema: right_schema.clone(),
        joined_schema: joined_schema.clone(),
        output_schema: joined_schema,
    }
}

/// The table's whole schema under the name the join's right side reads it by.
fn right_side(
    join: &Join,
    right_schema: &datafusion::arrow::datatypes::SchemaRef,
) -> Result<DFSchema, SqlError> {
    Ok(match join.right.schema().qualified_field(0).0 {
        Some(q) => DFSchema::try_from_qualified_schema(q.clone(), right_schema)?,
        None => DFSchema::try_from(right_schema.as_ref().clone())?,
    })
}

fn on_text(join: &Join) -> String {
    join.on
        .iter()
        .map(|(l, r)| format!("{l} = {r}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The join's own columns: the probe's, then the table's that the query
/// reads, among the probe's and all the table's.
fn output_columns(
    join: &Join,
    width: usize,
    right_schema: &datafusion::arrow::datatypes::SchemaRef,
) -> Result<Vec<usize>, datafusion::arrow::error::ArrowError> {
    let mut indices: Vec<usize> = (0..width).collect();
    for field in join.right.schema().fields() {
        indices.push(width + right_schema.index_of(field.name())?);
    }
    Ok(indices)
}

fn strip_qualifiers(expr: Expr) -> Result<Expr, SqlError> {
    Ok(expr
        .transform(|e| match e {
            Expr::Column(c) => Ok(Transformed::yes(Expr::Column(Column::new_unqualified(
                c.name,
            )))),
            other => Ok(Transformed::no(other)),
        })?
        .data)
}

impl Planner<'_> {
    /// A processing-time lookup join against an external table: each probe
    /// row meets the table's rows as they are when it passes.
    fn lookup_join(
        &self,
        join: &Join,
        left: Planned,
        versioned: Versioned<'_>,
        table: &crate::front::ddl::TableDef,
    ) -> Result<Planned, SqlError> {
        let at = versioned.clause.position;
        let refuse = |message: String| SqlError::at(message, at);
        let (kind, left) = self.probe_side(join, left, "a lookup join", at)?;
        let time_name = versioned.probe_time.name.clone();
        if self.is_rowtime(&time_name) {
            return Err(refuse(format!(
                "'{}' is looked up (connector jdbc): FOR SYSTEM_TIME AS OF takes a processing-time attribute (PROCTIME()), as in Flink, not the event time '{time_name}'",
                table.name
            )));
        }
        let right_schema = crate::catalog::Catalog::physical_schema(table);
        let right_df = right_side(join, &right_schema)?;
        let left_df = join.left.schema();
        let state = self.context.state();
        let mut left_keys = Vec::new();
        let mut right_keys = Vec::new();
        let mut probe_keys = Vec::new();
        let mut lookup_keys = Vec::new();
        for (l, r) in &join.on {
            let (Expr::Column(lc), Expr::Column(rc)) = (l, r) else {
                return Err(refuse(
                    "a lookup join's ON equalities compare columns (probe.column = table.column)"
                        .into(),
                ));
            };
            probe_keys.push(left_df.index_of_column(lc)?);
            lookup_keys.push(rc.name.clone());
            left_keys.push(state.create_physical_expr(l.clone(), left_df)?);
            right_keys.push(state.create_physical_expr(r.clone(), &right_df)?);
        }
        if lookup_keys.is_empty() {
            return Err(refuse(
                "a lookup join needs ON equalities with the table's columns".into(),
            ));
        }
        let key_schema = Arc::new(datafusion::arrow::datatypes::Schema::new(
            lookup_keys
                .iter()
                .map(|k| {
                    right_schema
                        .field_with_name(k)
                        .cloned()
                        .map_err(|e| refuse(e.to_string()))
                })
                .collect::<Result<Vec<_>, _>>()?,
        ));
        let provider = self
            .connectors
            .lookup(
                crate::catalog::Catalog::source_options(table),
                right_schema.clone(),
                lookup_keys,
            )
            .map_err(|e| refuse(format!("table '{}': {e}", table.name)))?;
        let (found_filter, filter) =
            self.conditions(versioned, left_df, &right_df, &right_schema)?;
        let join_spec = joined_spec(
            kind,
            (left_keys, right_keys),
            filter,
            &left.schema,
            &right_schema,
        );
        let joined_schema = join_spec.joined_schema.clone();
        let describe = format!(
            "{} {} (jdbc) FOR SYSTEM_TIME AS OF {time_name} on [{}]",
            join.join_type,
            table.name,
            on_text(join)
        );
        let node = Node::LookupJoin {
            input: Box::new(left.node),
            spec: Arc::new(runnel_engine::join::lookup::LookupJoin {
                join: join_spec,
                probe_keys,
                key_schema,
                found_filter,
                provider,
            }),
            describe,
        };
        let indices = output_columns(join, left.schema.fields().len(), &right_schema)
            .map_err(|e| refuse(e.to_string()))?;
        Ok(project(node, joined_schema, Some(indices)))
    }
}
