//! Tables, views and window calls of a script, and the DataFusion session
//! they are planned in.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::datasource::MemTable;
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::error::SqlError;
use crate::front::ddl::TableDef;
use crate::front::match_recognize::MatchCall;
use crate::front::windows::WindowCall;

/// Where a table's physical columns are registered when it also has
/// computed columns; the table's own name is then a view over it.
pub const SOURCE_PREFIX: &str = "__runnel_source_";

/// A table whose scans are handed the filters above them (as hints: the
/// filters stay in the plan), so the planner can tell a source which rows
/// it may drop early (`KeepOnly`).
#[derive(Debug)]
struct FilteredScan(MemTable);

#[async_trait::async_trait]
impl datafusion::catalog::TableProvider for FilteredScan {
    fn schema(&self) -> SchemaRef {
        datafusion::catalog::TableProvider::schema(&self.0)
    }

    fn table_type(&self) -> datafusion::logical_expr::TableType {
        datafusion::logical_expr::TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn datafusion::catalog::Session,
        projection: Option<&Vec<usize>>,
        filters: &[datafusion::prelude::Expr],
        limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn datafusion::physical_plan::ExecutionPlan>> {
        self.0.scan(state, projection, filters, limit).await
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&datafusion::prelude::Expr],
    ) -> datafusion::error::Result<Vec<datafusion::logical_expr::TableProviderFilterPushDown>> {
        Ok(vec![
            datafusion::logical_expr::TableProviderFilterPushDown::Inexact;
            filters.len()
        ])
    }
}

#[derive(Default, Clone)]
pub struct Catalog {
    pub tables: BTreeMap<String, Arc<TableDef>>,
    /// Views in creation order, each with the window calls in its text.
    pub views: Vec<ViewDef>,
    pub settings: BTreeMap<String, String>,
    pub next_window: usize,
}

#[derive(Clone)]
pub struct ViewDef {
    pub name: String,
    pub sql: String,
    pub windows: Vec<WindowCall>,
    pub matches: Vec<MatchCall>,
    /// Its `FOR SYSTEM_TIME AS OF` clauses against versioned tables.
    pub versioned: Vec<crate::front::temporal::Temporal>,
    /// Set when the view keeps each key's last row by event time (Flink's
    /// versioned view, made by deduplication): it can be joined FOR
    /// SYSTEM_TIME AS OF as a versioned table.
    pub versions_of: Option<VersionedView>,
}

/// A versioned view's key columns and time attribute.
#[derive(Clone, Debug)]
pub struct VersionedView {
    pub keys: Vec<String>,
    pub time: String,
}

impl Catalog {
    pub fn physical_schema(table: &TableDef) -> SchemaRef {
        Arc::new(Schema::new(table.physical.clone()))
    }

    /// The columns written when the table is a sink: its physical columns
    /// without VIRTUAL metadata ones. No connector writes metadata, so a
    /// metadata column that is not VIRTUAL is refused.
    pub fn sink_schema(table: &TableDef) -> Result<SchemaRef, SqlError> {
        if let Some(column) = table.metadata.iter().find(|m| !m.is_virtual) {
            return Err(SqlError::at(
                format!(
                    "table '{}' is written to, and its metadata column '{}' (METADATA FROM '{}') cannot be written by connector '{}': declare it VIRTUAL",
                    table.name,
                    column.column,
                    column.key,
                    table.options.get("connector").map_or("", String::as_str)
                ),
                column.position,
            ));
        }
        Ok(Arc::new(Schema::new(
            table
                .physical
                .iter()
                .filter(|f| !table.metadata.iter().any(|m| &m.column == f.name()))
                .cloned()
                .collect::<Vec<_>>(),
        )))
    }

    /// The connector options of a table read as a source: its metadata
    /// columns among them.
    pub fn source_options(table: &TableDef) -> BTreeMap<String, String> {
        let mut options = table.options.clone();
        if !table.metadata.is_empty() {
            options.insert(
                runnel_engine::connector::METADATA_COLUMNS.to_string(),
                table
                    .metadata
                    .iter()
                    .map(|m| format!("{}\t{}", m.column, m.key))
                    .collect::<Vec<_>>()
                    .join("\n"),
            );
        }
        options
    }

    /// A session with every table and view registered, ready to plan a
    /// query whose window calls are `windows`.
    pub async fn session(&self, windows: &[WindowCall]) -> Result<SessionContext, SqlError> {
        self.session_for(windows, &[]).await
    }

    /// A session ready to plan a query whose window calls are `windows`
    /// and whose MATCH_RECOGNIZE clauses are `matches`.
    pub async fn session_for(
        &self,
        windows: &[WindowCall],
        matches: &[MatchCall],
    ) -> Result<SessionContext, SqlError> {
        let mut config = SessionConfig::new().with_target_partitions(1);
        // Flink identifiers are case-sensitive.
        config.options_mut().sql_parser.enable_ident_normalization = false;
        // Flink's `1.5` is a DECIMAL(2, 1), not a DOUBLE: `0.1 + 0.2 =
        // 0.3` holds, and `0.908 * price` is exact, as in Flink.
        config.options_mut().sql_parser.parse_float_as_decimal = true;
        let state = datafusion::execution::SessionStateBuilder::new()
            .with_config(config)
            .with_default_features()
            .with_type_planner(Arc::new(crate::front::types::FlinkTypePlanner))
            .build();
        let context = SessionContext::new_with_state(state);
        // It splits COUNT(DISTINCT x) into two aggregations; a window
        // aggregation keeps distinct values in its own state instead.
        context.remove_optimizer_rule("single_distinct_aggregation_to_group_by");
        crate::functions::register(&context)?;
        crate::functions::check_decimal_operands(
            &context,
            self.tables
                .values()
                .map(|t| {
                    if t.computed.is_empty() {
                        t.name.clone()
                    } else {
                        format!("{SOURCE_PREFIX}{}", t.name)
                    }
                })
                .collect(),
        );
        for table in self.tables.values() {
            let schema = Self::physical_schema(table);
            let empty = Arc::new(FilteredScan(MemTable::try_new(schema, vec![vec![]])?));
            if table.computed.is_empty() {
                context.register_table(quoted(&table.name), empty)?;
            } else {
                let source = format!("{SOURCE_PREFIX}{}", table.name);
                context.register_table(quoted(&source), empty)?;
                let computed: Vec<String> = table
                    .computed
                    .iter()
                    .map(|(name, expr)| format!("{expr} AS {}", quoted(name)))
                    .collect();
                let sql = format!(
                    "CREATE VIEW {} AS SELECT *, {} FROM {}",
                    quoted(&table.name),
                    computed.join(", "),
                    quoted(&source)
                );
                context.sql(&sql).await?;
            }
        }
        for view in &self.views {
            register_windows(&context, &view.windows).await?;
            register_matches(&context, &view.matches).await?;
            context
                .sql(&format!(
                    "CREATE VIEW {} AS {}",
                    quoted(&view.name),
                    view.sql
                ))
                .await?;
        }
        register_windows(&context, windows).await?;
        register_matches(&context, matches).await?;
        Ok(context)
    }

    /// Every MATCH_RECOGNIZE clause known: the views' and the query's.
    pub fn match_call<'a>(
        &'a self,
        query_matches: &'a [MatchCall],
        placeholder: &str,
    ) -> Option<&'a MatchCall> {
        self.views
            .iter()
            .flat_map(|v| v.matches.iter())
            .chain(query_matches)
            .find(|m| m.placeholder == placeholder)
    }

    /// Every window call known: the views' and the query's.
    pub fn window<'a>(
        &'a self,
        query_windows: &'a [WindowCall],
        placeholder: &str,
    ) -> Option<&'a WindowCall> {
        self.views
            .iter()
            .flat_map(|v| v.windows.iter())
            .chain(query_windows)
            .find(|w| w.placeholder == placeholder)
    }
}

pub fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

pub fn window_fields() -> Vec<Field> {
    let ts = DataType::Timestamp(TimeUnit::Millisecond, None);
    vec![
        Field::new("window_start", ts.clone(), false),
        Field::new("window_end", ts.clone(), false),
        Field::new("window_time", ts, false),
    ]
}

async fn register_windows(
    context: &SessionContext,
    windows: &[WindowCall],
) -> Result<(), SqlError> {
    for call in windows {
        let table = context.table(quoted(&call.table)).await.map_err(|_| {
            SqlError::at(format!("Object '{}' not found", call.table), call.position)
        })?;
        let schema = table.schema().as_arrow().clone();
        if schema.field_with_name(&call.time_column).is_err() {
            return Err(SqlError::at(
                format!(
                    "Column '{}' not found in table '{}'",
                    call.time_column, call.table
                ),
                call.position,
            ));
        }
        let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
        fields.extend(window_fields());
        let placeholder = Arc::new(MemTable::try_new(
            Arc::new(Schema::new(fields)),
            vec![vec![]],
        )?);
        context.register_table(quoted(&call.placeholder), placeholder)?;
    }
    Ok(())
}

/// Each clause's placeholder table: the partition columns and measures.
async fn register_matches(context: &SessionContext, matches: &[MatchCall]) -> Result<(), SqlError> {
    for call in matches {
        let input = context
            .sql(&format!("SELECT * FROM {}", call.input))
            .await
            .map_err(|e| {
                SqlError::at(
                    e.to_string().lines().next().unwrap_or_default(),
                    call.position,
                )
            })?;
        let schema = Arc::new(input.schema().as_arrow().clone());
        let spec =
            crate::plan::match_recognize::compile(context, &call.clause, schema, call.position)
                .await?;
        let placeholder = Arc::new(MemTable::try_new(spec.output_schema.clone(), vec![vec![]])?);
        context.register_table(quoted(&call.placeholder), placeholder)?;
    }
    Ok(())
}
