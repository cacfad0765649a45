//! DataFusion's optimized `LogicalPlan` rewritten into Runnel's dataflow.
//!
//! DataFusion resolves names, types, coercions and every scalar function;
//! the planner maps each plan node to an engine operator, chooses the
//! physical operator where there are several (`node`), and rejects, at
//! submit time, what the engine cannot run yet. This file walks the plan;
//! what each kind of node becomes is in its own file: scans (`source`,
//! `source_options`), window table functions (`window`), joins (`joins`),
//! ranking and deduplication (`ranking`), OVER aggregations (`over`), unwindowed GROUP BYs and
//! regular joins (`updating`), INSERT's cast (`cast`) and upserts
//! (`upsert`); `reuse`, `field_use` and `shared_exprs` look at the whole
//! plan first.

pub(crate) mod cast;
mod checkpointable;
pub(crate) mod field_use;
pub(crate) mod grouping_sets;
pub(crate) mod joins;
pub(crate) mod match_recognize;
mod node;
pub use checkpointable::checkpoint_refusal;
mod over;
pub(crate) mod ranking;
pub(crate) mod reuse;
pub(crate) mod shared_exprs;
mod sort;
mod source;
pub(crate) mod source_options;
pub(crate) mod temporal_join;
mod unnest;
pub(crate) mod updating;
pub(crate) mod upsert;
mod window;

pub use cast::cast_to;
pub use node::{GroupOperator, Node, TopNOperator};
use runnel_engine::batch::with_rows;
use source::{keep_any, keep_only};
use window::{computes_on_window_columns, groups_by_window, references_window_columns, relaxed};

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::common::DFSchema;
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::prelude::SessionContext;
use runnel_engine::connector::ConnectorFactory;
use runnel_engine::stateless::BatchFn;
use runnel_engine::window::kind::WindowKind;

use crate::catalog::{Catalog, SOURCE_PREFIX, quoted};
use crate::error::{Position, SqlError};
use crate::front::windows::{PLACEHOLDER_PREFIX, WindowCall};
use crate::plan::ranking::keeps_first_row_only;
use runnel_engine::changelog::{RowKind, is_changelog, op_array, with_op};

/// A planned node, the schema of its batches, and, under a window call, the
/// window it carries and where its hidden event-time column is.
pub(crate) struct Planned {
    pub node: Node,
    pub schema: SchemaRef,
    pub windowing: Option<Windowing>,
    /// The column of a `ROW_NUMBER()` over a whole stream, which a filter
    /// above must cut to the first row (deduplication).
    pub rank: Option<usize>,
    /// Where `window_start` and `window_end` are in a window aggregation's
    /// results, whose rows travel at `window_end - 1`: a GROUP BY of them
    /// is another window aggregation, done per window.
    pub window_output: Option<[usize; 2]>,
}

impl Planned {
    pub(crate) fn new(node: Node, schema: SchemaRef) -> Self {
        Planned {
            node,
            schema,
            windowing: None,
            rank: None,
            window_output: None,
        }
    }
}

#[derive(Clone)]
pub(crate) struct Windowing {
    pub kind: WindowKind,
    pub function: &'static str,
    /// SESSION's `PARTITION BY` columns, which must be its GROUP BY keys.
    pub partition: Vec<String>,
    /// Index of the trailing `__rowtime` column the window is assigned by.
    pub rowtime: usize,
    /// Where `window_start`, `window_end` and `window_time` are (they hold
    /// placeholder nulls until an aggregate or `materialize` fills them).
    pub columns: [Option<usize>; 3],
}

const ROWTIME: &str = "__rowtime";

pub struct Planner<'a> {
    pub context: &'a SessionContext,
    pub catalog: &'a Catalog,
    pub windows: &'a [WindowCall],
    pub matches: &'a [crate::front::match_recognize::MatchCall],
    /// `FOR SYSTEM_TIME AS OF` clauses against versioned tables.
    pub versioned: &'a [crate::front::temporal::Temporal],
    pub connectors: &'a dyn ConnectorFactory,
    /// The statement, to point at the construct when rejecting it.
    pub statement: &'a [datafusion::sql::sqlparser::tokenizer::TokenWithSpan],
    /// `rn <= N` of the filters being planned, by column name: a
    /// `ROW_NUMBER()` below one keeps only N rows per partition.
    pub rank_limits: std::cell::RefCell<Vec<(String, u64)>>,
    pub(crate) shared: std::cell::RefCell<crate::plan::reuse::SharedPlans>,
    /// Planning the versioned side of an event-time temporal join, which
    /// may be a changelog with a WATERMARK.
    pub(crate) reading_versions: std::cell::Cell<bool>,
}

impl Planner<'_> {
    /// Plans `plan` and returns its node and output schema.
    pub async fn plan(&self, plan: &LogicalPlan) -> Result<(Node, SchemaRef), SqlError> {
        let mut census = crate::plan::reuse::Census {
            scans: Default::default(),
            fields: crate::plan::field_use::FieldUse::counting(),
        };
        Box::pin(self.scans(plan, true, &mut census)).await?;
        *self.shared.borrow_mut() = crate::plan::reuse::SharedPlans::of(plan, census);
        let planned = Box::pin(self.translate(plan)).await?;
        let planned = self.settled(self.materialize(planned)?)?;
        Ok((planned.node, planned.schema))
    }

    /// The pushed-down filters of every scan of each table in `plan`,
    /// window calls' inputs included,
    /// and the nested fields the plan reads.
    async fn scans(
        &self,
        plan: &LogicalPlan,
        is_root: bool,
        census: &mut crate::plan::reuse::Census,
    ) -> Result<(), SqlError> {
        census.fields.note_node(plan, is_root);
        if let LogicalPlan::TableScan(scan) = plan {
            let name = scan.table_name.table();
            if name.starts_with(PLACEHOLDER_PREFIX) {
                if let Some(call) = self.catalog.window(self.windows, name) {
                    let frame = self.context.table(quoted(&call.table)).await?;
                    let inner = frame.into_optimized_plan()?;
                    Box::pin(self.scans(&inner, true, census)).await?;
                }
            } else if name.starts_with(crate::front::match_recognize::MATCH_PREFIX) {
                if let Some(call) = self.catalog.match_call(self.matches, name) {
                    let inner = Box::pin(self.match_input(call)).await?;
                    Box::pin(self.scans(&inner, true, census)).await?;
                }
            } else {
                let table = name.strip_prefix(SOURCE_PREFIX).unwrap_or(name);
                // A versioned table's source keeps every version: a
                // condition on it applies to the version found.
                let filters = match self
                    .versioned
                    .iter()
                    .chain(self.catalog.views.iter().flat_map(|v| v.versioned.iter()))
                    .any(|c| c.table == table)
                {
                    true => Vec::new(),
                    false => scan.filters.clone(),
                };
                census
                    .scans
                    .entry(table.to_string())
                    .or_default()
                    .push(filters);
            }
        }
        for input in plan.inputs() {
            Box::pin(self.scans(input, false, census)).await?;
        }
        Ok(())
    }

    /// Refuses a `ROW_NUMBER()` over a whole stream that no filter cut to
    /// the first row: anything else is an updating top-N.
    pub(crate) fn settled(&self, planned: Planned) -> Result<Planned, SqlError> {
        if planned.rank.is_some() {
            return Err(self.reject(
                "ROW_NUMBER() over a whole stream is supported only as deduplication (keep the first row: WHERE rn = 1); an updating top-N is not supported yet",
                &["ROW_NUMBER", "OVER"],
            ));
        }
        Ok(planned)
    }

    pub(crate) fn reject(&self, message: &str, keywords: &[&str]) -> SqlError {
        // Keywords in order of preference: the construct itself, then where it hangs.
        let found = keywords.iter().find_map(|k| {
            self.statement
                .iter()
                .find(|t| crate::front::tokens::is_word(t, k))
        });
        match found {
            Some(token) => SqlError::at(message, crate::front::tokens::position(token)),
            None => SqlError::at(
                message,
                self.statement
                    .first()
                    .map(crate::front::tokens::position)
                    .unwrap_or(Position { line: 1, column: 1 }),
            ),
        }
    }

    async fn translate(&self, plan: &LogicalPlan) -> Result<Planned, SqlError> {
        if let Some(planned) = self.shared.borrow().get(plan) {
            return Ok(planned);
        }
        let planned = self.translate_once(plan).await?;
        Ok(self.shared.borrow_mut().record(plan, planned))
    }

    async fn translate_once(&self, plan: &LogicalPlan) -> Result<Planned, SqlError> {
        match plan {
            LogicalPlan::TableScan(scan) => {
                if scan.fetch.is_some() {
                    return Err(self.reject("LIMIT is not supported on streams", &["LIMIT"]));
                }
                let name = scan.table_name.table();
                let projection = scan.projection.clone();
                if name.starts_with(PLACEHOLDER_PREFIX) {
                    return self
                        .window_scan(name, projection, scan.projected_schema.as_arrow())
                        .await;
                }
                if name.starts_with(crate::front::match_recognize::MATCH_PREFIX) {
                    return Box::pin(self.match_scan(name, projection)).await;
                }
                let table_name = name.strip_prefix(SOURCE_PREFIX).unwrap_or(name);
                let table = self
                    .catalog
                    .tables
                    .get(table_name)
                    .cloned()
                    .ok_or_else(|| SqlError::Plan(format!("Object '{table_name}' not found")))?;
                let physical = Catalog::physical_schema(&table);
                let shared_source = self.shared.borrow().source(table_name);
                let source = match shared_source {
                    Some(source) => source,
                    None => {
                        let keep = match self.shared.borrow().scans_of(table_name) {
                            Some(scans) => keep_any(scans, &physical),
                            None => keep_only(&scan.filters, &physical),
                        };
                        let source = self.source(table, keep)?;
                        self.shared.borrow_mut().record_source(table_name, source)
                    }
                };
                let changelog = source.reads_changelog_source();
                let mut out_schema = Arc::new(scan.projected_schema.as_arrow().clone());
                if changelog {
                    out_schema = with_op(&out_schema);
                }
                match projection {
                    Some(mut indices)
                        if indices.len() != physical.fields().len()
                            || indices.iter().enumerate().any(|(i, &c)| i != c) =>
                    {
                        if changelog {
                            // The source's `__op` follows its columns.
                            indices.push(physical.fields().len());
                        }
                        let schema = out_schema.clone();
                        let f: BatchFn = Arc::new(move |batch: RecordBatch| {
                            let columns: Vec<ArrayRef> =
                                indices.iter().map(|&i| batch.column(i).clone()).collect();
                            Ok(Some(with_rows(schema.clone(), columns, batch.num_rows())?))
                        });
                        Ok(Planned::new(
                            Node::Map {
                                input: Box::new(source),
                                name: "Project".into(),
                                f,
                            },
                            out_schema,
                        ))
                    }
                    _ => Ok(Planned::new(source, out_schema)),
                }
            }
            LogicalPlan::SubqueryAlias(alias) => Box::pin(self.translate(&alias.input)).await,
            LogicalPlan::Projection(projection) => {
                if unnest::holds_unnest(projection) {
                    return self.unnest(projection).await;
                }
                if let Some(once) = crate::plan::shared_exprs::computed_once(projection)? {
                    return Box::pin(self.translate_once(&once)).await;
                }
                let mut input = Box::pin(self.translate(&projection.input)).await?;
                if let Some(w) = &input.windowing
                    && computes_on_window_columns(&projection.expr, w, &input.schema)
                {
                    input = self.materialize(input)?;
                }
                let moved = |from: Option<usize>| {
                    from.and_then(|c| {
                        let name = input.schema.field(c).name();
                        projection.expr.iter().position(|e| {
                            matches!(e.clone().unalias(), Expr::Column(col) if col.name == *name)
                        })
                    })
                };
                let rank = moved(input.rank);
                let window_output = input
                    .window_output
                    .and_then(|[s, e]| Some([moved(Some(s))?, moved(Some(e))?]));
                if input.rank.is_some() && rank.is_none() {
                    return Err(self
                        .settled(input)
                        .err()
                        .unwrap_or_else(|| SqlError::Plan("ROW_NUMBER column dropped".into())));
                }
                let window_columns = input.windowing.as_ref().map(|w| w.columns.map(moved));
                let exprs = self.physical_exprs(&projection.expr, projection.input.schema())?;
                let mut fields: Vec<Field> = projection
                    .schema
                    .as_arrow()
                    .fields()
                    .iter()
                    .map(|f| f.as_ref().clone())
                    .collect();
                if let Some(w) = &input.windowing {
                    fields.push(input.schema.field(w.rowtime).clone());
                }
                let op = is_changelog(&input.schema).then(|| input.schema.fields().len() - 1);
                if let Some(i) = op {
                    fields.push(input.schema.field(i).clone());
                }
                let mut schema = Arc::new(Schema::new(fields));
                if input.windowing.is_some() {
                    // Window columns are still placeholder nulls here.
                    schema = relaxed(&schema);
                }
                let rowtime = input.windowing.as_ref().map(|w| w.rowtime);
                let windowing = input.windowing.map(|w| Windowing {
                    rowtime: exprs.len(),
                    columns: window_columns.unwrap_or([None; 3]),
                    ..w
                });
                let out = schema.clone();
                let f: BatchFn = Arc::new(move |batch: RecordBatch| {
                    let mut columns = exprs
                        .iter()
                        .map(|e| runnel_engine::stateless::eager_case::evaluate(e, &batch))
                        .collect::<Result<Vec<_>, _>>()?;
                    if let Some(i) = rowtime {
                        columns.push(batch.column(i).clone());
                    }
                    if let Some(i) = op {
                        columns.push(batch.column(i).clone());
                    }
                    Ok(Some(with_rows(out.clone(), columns, batch.num_rows())?))
                });
                Ok(Planned {
                    node: Node::Map {
                        input: Box::new(input.node),
                        name: "Project".into(),
                        f,
                    },
                    schema,
                    windowing,
                    rank,
                    window_output,
                })
            }
            LogicalPlan::Filter(filter) => {
                let outer = self.rank_limits.borrow().len();
                self.rank_limits
                    .borrow_mut()
                    .extend(crate::plan::ranking::rank_limits(&filter.predicate));
                let input = Box::pin(self.translate(&filter.input)).await;
                self.rank_limits.borrow_mut().truncate(outer);
                let mut input = input?;
                if let Some(w) = &input.windowing
                    && references_window_columns(&filter.predicate, w, &input.schema)
                {
                    input = self.materialize(input)?;
                }
                if let Some(rank) = input.rank
                    && keeps_first_row_only(&filter.predicate, input.schema.field(rank).name())
                {
                    input.rank = None;
                }
                let predicate = self
                    .context
                    .state()
                    .create_physical_expr(filter.predicate.clone(), filter.input.schema())?;
                let f: BatchFn = Arc::new(move |batch: RecordBatch| {
                    let mask = predicate.evaluate(&batch)?.into_array(batch.num_rows())?;
                    let mask = datafusion::arrow::array::AsArray::as_boolean_opt(mask.as_ref())
                        .ok_or_else(|| {
                            runnel_engine::EngineError::Plan(
                                "WHERE must be a boolean expression".into(),
                            )
                        })?;
                    Ok(Some(filter_record_batch(&batch, mask)?))
                });
                let Planned {
                    node,
                    schema,
                    windowing,
                    rank,
                    window_output,
                } = input;
                Ok(Planned {
                    node: Node::Map {
                        input: Box::new(node),
                        name: "Filter".into(),
                        f,
                    },
                    schema,
                    windowing,
                    rank,
                    window_output,
                })
            }
            LogicalPlan::Aggregate(aggregate) => {
                let input = self.settled(Box::pin(self.translate(&aggregate.input)).await?)?;
                if input.windowing.is_none() {
                    if let Some(columns) = input.window_output
                        && groups_by_window(aggregate, &input.schema, columns)
                    {
                        return self.aggregate_per_window(aggregate, input);
                    }
                    return self.group_aggregate(aggregate, input);
                }
                self.window_aggregate(aggregate, input)
            }
            LogicalPlan::Union(union) => {
                let mut inputs = Vec::new();
                for input in &union.inputs {
                    let planned = Box::pin(self.translate(input)).await?;
                    let planned = self.settled(self.materialize(planned)?)?;
                    inputs.push((planned.node, is_changelog(&planned.schema)));
                }
                let updating = inputs.iter().any(|(_, changelog)| *changelog);
                let inputs = inputs
                    .into_iter()
                    .map(|(node, changelog)| {
                        if updating && !changelog {
                            as_inserts(node)
                        } else {
                            node
                        }
                    })
                    .collect();
                let mut schema = Arc::new(union.schema.as_arrow().clone());
                if updating {
                    schema = with_op(&schema);
                }
                let out = schema.clone();
                // Union inputs agree on types, not names: relabel each batch.
                let relabel: BatchFn = Arc::new(move |batch: RecordBatch| {
                    Ok(Some(with_rows(
                        out.clone(),
                        batch.columns().to_vec(),
                        batch.num_rows(),
                    )?))
                });
                let node = Node::Map {
                    input: Box::new(Node::Union { inputs }),
                    name: "Union".into(),
                    f: relabel,
                };
                Ok(Planned::new(node, schema))
            }
            LogicalPlan::Join(join) => {
                if let Some(versioned) = self.versioned_right(join) {
                    let left = Box::pin(self.translate(&join.left)).await?;
                    return Box::pin(self.temporal_join(join, left, versioned)).await;
                }
                if temporal_join::is_marked(join) {
                    return Err(self.reject(
                        "a temporal join against a versioned table takes the probe side's event-time column after AS OF, and the table itself after JOIN (not a view or subquery)",
                        &["SYSTEM_TIME", "JOIN"],
                    ));
                }
                let left = Box::pin(self.translate(&join.left)).await?;
                let right = Box::pin(self.translate(&join.right)).await?;
                if is_changelog(&left.schema) || is_changelog(&right.schema) {
                    let left = self.settled(self.materialize(left)?)?;
                    let right = self.settled(self.materialize(right)?)?;
                    return self.regular_join(join, left, right);
                }
                self.join(join, left, right)
            }
            LogicalPlan::Sort(sort) => {
                let input = Box::pin(self.translate(&sort.input)).await?;
                self.temporal_sort(sort, input, None)
            }
            LogicalPlan::Limit(limit) => {
                use datafusion::logical_expr::{FetchType, SkipType};
                if let LogicalPlan::Sort(sort) = limit.input.as_ref()
                    && let (Ok(FetchType::Literal(Some(fetch))), Ok(SkipType::Literal(0))) =
                        (limit.get_fetch_type(), limit.get_skip_type())
                {
                    let input = Box::pin(self.translate(&sort.input)).await?;
                    return self.temporal_sort(sort, input, Some(fetch));
                }
                Err(self.reject(
                    "LIMIT is only supported after ORDER BY an event-time attribute on streams",
                    &["LIMIT"],
                ))
            }
            LogicalPlan::Window(window) => {
                let input = Box::pin(self.translate(&window.input)).await?;
                let input = self.settled(self.materialize(input)?)?;
                if over::is_over_aggregation(window) {
                    return self.over_aggregate(window, input);
                }
                self.row_number(window, input)
            }
            LogicalPlan::Distinct(_) => {
                Err(self.reject("SELECT DISTINCT is not supported yet", &["DISTINCT"]))
            }
            LogicalPlan::Values(_) | LogicalPlan::EmptyRelation(_) => {
                Err(self.reject("queries must read from a table", &["SELECT", "VALUES"]))
            }
            other => Err(self.reject(
                &format!("{} is not supported", other.display()),
                &["SELECT"],
            )),
        }
    }

    fn physical_exprs(
        &self,
        exprs: &[Expr],
        schema: &DFSchema,
    ) -> Result<Vec<Arc<dyn PhysicalExpr>>, SqlError> {
        let state = self.context.state();
        exprs
            .iter()
            .map(|e| Ok(state.create_physical_expr(e.clone(), schema)?))
            .collect()
    }
}

/// An append-only input of a union with a changelog: every row an insert.
fn as_inserts(node: Node) -> Node {
    let f: BatchFn = Arc::new(move |batch: RecordBatch| {
        let mut columns = batch.columns().to_vec();
        columns.push(op_array(&vec![RowKind::Insert; batch.num_rows()]));
        Ok(Some(RecordBatch::try_new(
            with_op(&batch.schema()),
            columns,
        )?))
    });
    Node::Map {
        input: Box::new(node),
        name: "AsInserts".into(),
        f,
    }
}

/// `node`'s columns at `projection` (all when `None`).
pub(crate) fn project(node: Node, schema: SchemaRef, projection: Option<Vec<usize>>) -> Planned {
    match projection {
        Some(indices)
            if indices.len() != schema.fields().len()
                || indices.iter().enumerate().any(|(i, &c)| i != c) =>
        {
            let out_schema = Arc::new(Schema::new(
                indices
                    .iter()
                    .map(|&i| schema.field(i).clone())
                    .collect::<Vec<Field>>(),
            ));
            let target = out_schema.clone();
            let f: BatchFn = Arc::new(move |batch: RecordBatch| {
                let columns: Vec<ArrayRef> =
                    indices.iter().map(|&i| batch.column(i).clone()).collect();
                Ok(Some(with_rows(target.clone(), columns, batch.num_rows())?))
            });
            Planned::new(
                Node::Map {
                    input: Box::new(node),
                    name: "Project".into(),
                    f,
                },
                out_schema,
            )
        }
        _ => Planned::new(node, schema),
    }
}
