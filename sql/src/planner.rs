//! DataFusion's optimized `LogicalPlan` rewritten into Runnel's dataflow.
//!
//! DataFusion resolves names, types, coercions and every scalar function;
//! this module maps each plan node to an engine operator and rejects, at
//! submit time, what the engine cannot run yet.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, new_null_array};
use datafusion::arrow::compute::{cast, filter_record_batch};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::aggregate::LoweredAggregateBuilder;
use datafusion::physical_expr::expressions::Column;
use datafusion::prelude::SessionContext;
use runnel_engine::aggregate::WindowAggregate;
use runnel_engine::connector::{ConnectorFactory, KeepOnly, SourceProvider};
use runnel_engine::dedup::Deduplicate;
use runnel_engine::interval_join::IntervalJoin;
use runnel_engine::join::JoinSpec;
use runnel_engine::source::EventTime;
use runnel_engine::stateless::BatchFn;
use runnel_engine::window::WindowKind;
use runnel_engine::window_assign::{WindowAssign, WindowColumn};

use crate::catalog::{Catalog, SOURCE_PREFIX, quoted};
use crate::ddl::TableDef;
use crate::error::{Position, SqlError};
use crate::ranking::keeps_first_row_only;
use crate::windows::{PLACEHOLDER_PREFIX, WindowCall};
use runnel_engine::updating::changelog::{RowKind, is_changelog, op_array, with_op};

/// A dataflow to build on every worker.
pub enum Node {
    Source {
        table: Arc<TableDef>,
        provider: Arc<dyn SourceProvider>,
        event_time: Option<EventTime>,
        late_rows: Option<crate::source_options::LateRowsSink>,
    },
    Map {
        input: Box<Node>,
        name: String,
        f: BatchFn,
    },
    WindowAggregate {
        input: Box<Node>,
        spec: Arc<WindowAggregate>,
        describe: String,
    },
    Union {
        inputs: Vec<Node>,
    },
    /// Window table function rows with their window columns, re-timed to
    /// `window_end - 1`.
    WindowAssign {
        input: Box<Node>,
        spec: Arc<WindowAssign>,
    },
    /// Both sides' rows of each window, joined once the window closes.
    WindowJoin {
        left: Box<Node>,
        right: Box<Node>,
        spec: Arc<JoinSpec>,
        routes: (Vec<usize>, Vec<usize>),
        describe: String,
    },
    IntervalJoin {
        left: Box<Node>,
        right: Box<Node>,
        spec: Arc<IntervalJoin>,
        describe: String,
    },
    /// `ROW_NUMBER()` over a whole stream; a changelog out.
    TopN {
        input: Box<Node>,
        spec: Arc<runnel_engine::updating::top_n::TopN>,
        describe: String,
    },
    /// An unwindowed GROUP BY; a changelog out.
    GroupAggregate {
        input: Box<Node>,
        spec: Arc<runnel_engine::updating::group_aggregate::GroupAggregate>,
        describe: String,
    },
    /// A regular inner join; a changelog out.
    RegularJoin {
        left: Box<Node>,
        right: Box<Node>,
        spec: Arc<runnel_engine::updating::join::RegularJoin>,
        describe: String,
    },
    Deduplicate {
        input: Box<Node>,
        spec: Arc<Deduplicate>,
        input_schema: SchemaRef,
        describe: String,
    },
    /// A function over all rows of one time, keyed: window top-N.
    Complete {
        input: Box<Node>,
        name: String,
        key_columns: Vec<usize>,
        f: runnel_engine::complete::CompleteFn,
    },
    /// A subtree the plan reads more than once, built once per worker.
    Shared {
        id: usize,
        input: Arc<Node>,
    },
}

impl Node {
    /// The nodes this one reads.
    pub fn inputs(&self) -> Vec<&Node> {
        match self {
            Node::Source { .. } => Vec::new(),
            Node::Union { inputs } => inputs.iter().collect(),
            Node::WindowJoin { left, right, .. }
            | Node::IntervalJoin { left, right, .. }
            | Node::RegularJoin { left, right, .. } => vec![left, right],
            Node::Map { input, .. }
            | Node::WindowAggregate { input, .. }
            | Node::WindowAssign { input, .. }
            | Node::TopN { input, .. }
            | Node::GroupAggregate { input, .. }
            | Node::Deduplicate { input, .. }
            | Node::Complete { input, .. } => vec![input],
            Node::Shared { input, .. } => vec![input],
        }
    }

    /// Whether a changelog source feeds this node. Such a source's rows
    /// may come in any order (a delete before its insert, from another
    /// worker's share of a file); operators' own changelogs keep each
    /// row's insert before its retraction.
    pub fn reads_changelog_source(&self) -> bool {
        match self {
            Node::Source { provider, .. } => provider.produces_changelog(),
            _ => self.inputs().iter().any(|n| n.reads_changelog_source()),
        }
    }
}

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
    pub connectors: &'a dyn ConnectorFactory,
    /// The statement, to point at the construct when rejecting it.
    pub statement: &'a [datafusion::sql::sqlparser::tokenizer::TokenWithSpan],
    /// `rn <= N` of the filters being planned, by column name: a
    /// `ROW_NUMBER()` below one keeps only N rows per partition.
    pub rank_limits: std::cell::RefCell<Vec<(String, u64)>>,
    pub(crate) shared: std::cell::RefCell<crate::reuse::SharedPlans>,
}

impl Planner<'_> {
    /// Plans `plan` and returns its node and output schema.
    pub async fn plan(&self, plan: &LogicalPlan) -> Result<(Node, SchemaRef), SqlError> {
        let mut census = crate::reuse::Census {
            scans: Default::default(),
            fields: crate::field_use::FieldUse::counting(),
        };
        Box::pin(self.scans(plan, true, &mut census)).await?;
        *self.shared.borrow_mut() = crate::reuse::SharedPlans::of(plan, census);
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
        census: &mut crate::reuse::Census,
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
            } else {
                let table = name.strip_prefix(SOURCE_PREFIX).unwrap_or(name);
                census
                    .scans
                    .entry(table.to_string())
                    .or_default()
                    .push(scan.filters.clone());
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

    pub(crate) fn reject(&self, message: &str, keywords: &[&str]) -> SqlError {
        // Keywords in order of preference: the construct itself, then where it hangs.
        let found = keywords
            .iter()
            .find_map(|k| self.statement.iter().find(|t| crate::tokens::is_word(t, k)));
        match found {
            Some(token) => SqlError::at(message, crate::tokens::position(token)),
            None => SqlError::at(
                message,
                self.statement
                    .first()
                    .map(crate::tokens::position)
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
                            Ok(Some(RecordBatch::try_new(schema.clone(), columns)?))
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
                if let Some(once) = crate::shared_exprs::computed_once(projection)? {
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
                        .map(|e| runnel_engine::eager_case::evaluate(e, &batch))
                        .collect::<Result<Vec<_>, _>>()?;
                    if let Some(i) = rowtime {
                        columns.push(batch.column(i).clone());
                    }
                    if let Some(i) = op {
                        columns.push(batch.column(i).clone());
                    }
                    Ok(Some(RecordBatch::try_new(out.clone(), columns)?))
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
                    .extend(crate::ranking::rank_limits(&filter.predicate));
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
                    Ok(Some(RecordBatch::try_new(
                        out.clone(),
                        batch.columns().to_vec(),
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
                let left = Box::pin(self.translate(&join.left)).await?;
                let right = Box::pin(self.translate(&join.right)).await?;
                if is_changelog(&left.schema) || is_changelog(&right.schema) {
                    let left = self.settled(self.materialize(left)?)?;
                    let right = self.settled(self.materialize(right)?)?;
                    return self.regular_join(join, left, right);
                }
                self.join(join, left, right)
            }
            LogicalPlan::Sort(_) => {
                Err(self.reject("ORDER BY is not supported on streams", &["ORDER"]))
            }
            LogicalPlan::Limit(_) => {
                Err(self.reject("LIMIT is not supported on streams", &["LIMIT"]))
            }
            LogicalPlan::Window(window) => {
                let input = Box::pin(self.translate(&window.input)).await?;
                let input = self.settled(self.materialize(input)?)?;
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

    fn source(&self, table: Arc<TableDef>, keep: Option<KeepOnly>) -> Result<Node, SqlError> {
        let schema = Catalog::physical_schema(&table);
        let (options, late_rows) = self.source_options(&table, &schema)?;
        let mut provider = self
            .connectors
            .source(options, schema.clone())
            .map_err(|e| SqlError::at(format!("table '{}': {e}", table.name), table.position))?;
        if let Some(keeping) = keep.and_then(|keep| provider.keep_only(keep)) {
            provider = keeping;
        }
        // Late rows go to another table whole, so they must be read whole.
        if late_rows.is_none() {
            let mut fields = self.shared.borrow().fields().clone();
            let df_schema = DFSchema::try_from(schema.as_ref().clone())?;
            for (_, sql) in &table.computed {
                match self.context.parse_sql_expr(sql, &df_schema) {
                    Ok(expr) => fields.note_expr(&expr),
                    Err(_) => fields.read_everything(),
                }
            }
            let unused = fields.unused(&schema);
            if let Some(skipping) = (!unused.is_empty())
                .then(|| provider.skip_fields(unused))
                .flatten()
            {
                provider = skipping;
            }
        }
        if provider.produces_changelog() && table.watermark.is_some() {
            // The source drops rows late for its watermark: a dropped
            // update or delete would leave every result wrong for good.
            return Err(SqlError::at(
                format!(
                    "table '{}': a WATERMARK on a changelog source is not supported (late updates and deletes would be dropped)",
                    table.name
                ),
                table.position,
            ));
        }
        let proctime = table
            .computed
            .iter()
            .any(|(_, sql)| crate::functions::is_proctime(sql));
        let df_schema = DFSchema::try_from(schema.as_ref().clone())?;
        // The event time as a logical expression over the physical columns,
        // its out-of-orderness bound, and whether it is the wall clock.
        let time = match &table.watermark {
            None if proctime => Some((crate::functions::ProcTime::udf().call(vec![]), 0, true)),
            None => None,
            Some(watermark) => {
                let expr = match table
                    .computed
                    .iter()
                    .find(|(name, _)| *name == watermark.column)
                {
                    Some((_, sql)) => self.context.parse_sql_expr(sql, &df_schema)?,
                    None if schema.field_with_name(&watermark.column).is_err() => {
                        return Err(SqlError::at(
                            format!(
                                "the watermark column '{}' is not a column of '{}'",
                                watermark.column, table.name
                            ),
                            table.position,
                        ));
                    }
                    None => datafusion::prelude::col(quoted(&watermark.column)),
                };
                Some((expr, watermark.max_out_of_orderness, false))
            }
        };
        let event_time = match time {
            Some((expr, max_out_of_orderness, processing_time)) => Some(EventTime {
                expr: self
                    .context
                    .state()
                    .create_physical_expr(expr, &df_schema)?,
                max_out_of_orderness,
                processing_time,
                idle_timeout: self.idle_timeout()?,
            }),
            None => None,
        };
        if late_rows.is_some() && event_time.is_none() {
            return Err(SqlError::at(
                format!(
                    "table '{}': late rows need a WATERMARK to be late for",
                    table.name
                ),
                table.position,
            ));
        }
        Ok(Node::Source {
            table,
            provider,
            event_time,
            late_rows,
        })
    }

    /// A scan of a window call's placeholder: the called table's rows, the
    /// window columns as typed nulls (the aggregate computes the real ones),
    /// and the time column carried at the end as `__rowtime`.
    async fn window_scan(
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

    fn window_aggregate(
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
fn relaxed(schema: &SchemaRef) -> SchemaRef {
    Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect::<Vec<_>>(),
    ))
}

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
        Ok(Some(RecordBatch::try_new(target.clone(), columns)?))
    }))
}

/// Names of the window columns a windowed plan carries.
fn window_column_names(windowing: &Windowing, schema: &SchemaRef) -> Vec<String> {
    windowing
        .columns
        .iter()
        .flatten()
        .map(|&i| schema.field(i).name().clone())
        .collect()
}

fn references_window_columns(expr: &Expr, windowing: &Windowing, schema: &SchemaRef) -> bool {
    let names = window_column_names(windowing, schema);
    expr.column_refs().iter().any(|c| names.contains(&c.name))
}

/// Whether a projection computes something from window columns, which hold
/// placeholders until filled: passing them through is fine.
fn computes_on_window_columns(exprs: &[Expr], windowing: &Windowing, schema: &SchemaRef) -> bool {
    exprs.iter().any(|e| {
        !matches!(e.clone().unalias(), Expr::Column(_))
            && references_window_columns(e, windowing, schema)
    })
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

/// Whether an aggregate groups by both window columns of its input.
fn groups_by_window(
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

/// A `column = integer` conjunct among the filters DataFusion pushed to a
/// scan, over a top-level integer column of the source.
fn keep_only(filters: &[Expr], physical: &Schema) -> Option<KeepOnly> {
    use datafusion::logical_expr::{BinaryExpr, Operator};
    let mut conjuncts = Vec::new();
    for filter in filters {
        conjuncts.extend(datafusion::logical_expr::utils::split_conjunction(filter));
    }
    conjuncts.into_iter().find_map(|conjunct| {
        let Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::Eq,
            right,
        }) = conjunct
        else {
            return None;
        };
        let (column, literal) = match (left.as_ref(), right.as_ref()) {
            (Expr::Column(c), Expr::Literal(v, _)) | (Expr::Literal(v, _), Expr::Column(c)) => {
                (c, v)
            }
            _ => return None,
        };
        let index = physical.index_of(&column.name).ok()?;
        if !physical.field(index).data_type().is_integer() {
            return None;
        }
        let value = match literal {
            ScalarValue::Int8(Some(v)) => i64::from(*v),
            ScalarValue::Int16(Some(v)) => i64::from(*v),
            ScalarValue::Int32(Some(v)) => i64::from(*v),
            ScalarValue::Int64(Some(v)) => *v,
            ScalarValue::UInt8(Some(v)) => i64::from(*v),
            ScalarValue::UInt16(Some(v)) => i64::from(*v),
            ScalarValue::UInt32(Some(v)) => i64::from(*v),
            _ => return None,
        };
        Some(KeepOnly {
            column: index,
            values: vec![value],
        })
    })
}

/// What a source read by all of `scans` may keep: the rows any of them
/// keeps, if each keeps rows by the same column.
fn keep_any(scans: &[Vec<Expr>], physical: &Schema) -> Option<KeepOnly> {
    let mut keeps = scans.iter().map(|filters| keep_only(filters, physical));
    let mut union = keeps.next()??;
    for keep in keeps {
        let keep = keep?;
        if keep.column != union.column {
            return None;
        }
        union.values.extend(keep.values);
    }
    union.values.sort_unstable();
    union.values.dedup();
    Some(union)
}
