//! A script's statements run in order: DDL fills the catalog, queries are
//! planned, and all of them become one dataflow job.

use crate::dataflow::{Job, Output, Pipeline};
use crate::explain::explain_pipeline;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan};
use runnel_engine::changelog::is_changelog;
use runnel_engine::connector::ConnectorFactory;

use crate::catalog::{Catalog, ViewDef};
use crate::error::{Position, SqlError};
use crate::front::ddl::parse_create_table;
use crate::front::tokens::{is_word, position, render, solid, statements, tokenize};
use crate::front::windows;
use crate::plan::{Node, Planner, cast_to};

pub struct Submitted {
    pub job: Job,
    /// The text of each EXPLAIN, in order.
    pub explained: Vec<String>,
}

pub struct Session {
    pub catalog: Catalog,
    connectors: Arc<dyn ConnectorFactory>,
}

impl Session {
    pub fn new(connectors: Arc<dyn ConnectorFactory>) -> Self {
        Session {
            catalog: Catalog::default(),
            connectors,
        }
    }

    /// Runs the script's DDL and plans its queries. Nothing runs yet, so a
    /// rejected construct anywhere fails the whole script before any work.
    /// The future is not `Send` (the planner keeps its state in cells): an
    /// async caller on a multi-threaded runtime plans on a blocking thread,
    /// as `runnel_jobs::submit` does.
    pub async fn submit(&mut self, script: &str) -> Result<Submitted, SqlError> {
        let mut submitted = Submitted {
            job: Job::default(),
            explained: Vec::new(),
        };
        for statement in statements(tokenize(script)?) {
            self.statement(&statement, &mut submitted).await?;
        }
        Ok(submitted)
    }

    /// `submit` for callers outside any async runtime (tests, tools): it
    /// runs the planner on a runtime of its own, which must not be inside
    /// another.
    pub fn submit_blocking(&mut self, script: &str) -> Result<Submitted, SqlError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .map_err(|e| SqlError::Plan(format!("cannot start the planner: {e}")))?;
        runtime.block_on(self.submit(script))
    }

    async fn statement(
        &mut self,
        tokens: &[TokenWithSpan],
        submitted: &mut Submitted,
    ) -> Result<(), SqlError> {
        let words = solid(tokens);
        let word = |i: usize, w: &str| words.get(i).is_some_and(|t| is_word(t, w));
        let start = words
            .first()
            .map(position)
            .unwrap_or(Position { line: 1, column: 1 });
        let skip_temporary = if word(1, "TEMPORARY") { 1 } else { 0 };
        if word(0, "CREATE")
            && word(1 + skip_temporary, "TABLE")
            && let Some(as_at) = create_table_as(tokens)
        {
            let pipeline = self
                .create_table_as(&tokens[..as_at], &tokens[as_at + 1..], start)
                .await?;
            submitted.job.pipelines.push(pipeline);
            Ok(())
        } else if word(0, "CREATE")
            && word(1 + skip_temporary, "TABLE")
            && let Some(like_at) = crate::front::create_like::split_like(tokens)
        {
            let derived = crate::front::ddl::parse_create_table_like_head(&tokens[..like_at])?;
            let like = crate::front::create_like::parse_like(&tokens[like_at..])?;
            let Some(base) = self.catalog.tables.get(&like.base) else {
                return Err(SqlError::at(
                    format!(
                        "Source table '{}' of the LIKE clause not found in the catalog",
                        like.base
                    ),
                    like.base_at,
                ));
            };
            let table = crate::front::create_like::merge(base, derived, &like)?;
            self.add_table(table, start)
        } else if word(0, "CREATE") && word(1 + skip_temporary, "TABLE") {
            let table = parse_create_table(tokens)?;
            self.add_table(table, start)
        } else if word(0, "SHOW") && word(1, "CREATE") && word(2, "TABLE") && words.len() == 4 {
            let Token::Word(name) = &words[3].token else {
                return Err(SqlError::at("expected SHOW CREATE TABLE <table>", start));
            };
            let Some(table) = self.catalog.tables.get(&name.value) else {
                return Err(SqlError::at(
                    format!(
                        "Could not execute SHOW CREATE TABLE. Table '{}' doesn't exist.",
                        name.value
                    ),
                    position(&words[3]),
                ));
            };
            submitted
                .explained
                .push(crate::catalog_listing::show_create_table(table));
            Ok(())
        } else if word(0, "SHOW") && word(1, "FUNCTIONS") && words.len() == 2 {
            let context = self.catalog.session(&[]).await?;
            submitted
                .explained
                .push(crate::catalog_listing::show_functions(&context));
            Ok(())
        } else if word(0, "CREATE") && word(1 + skip_temporary, "VIEW") {
            self.create_view(tokens, 2 + skip_temporary, start).await
        } else if word(0, "SHOW") && (word(1, "TABLES") || word(1, "VIEWS")) && words.len() == 2 {
            submitted.explained.push(crate::catalog_listing::show(
                &self.catalog,
                word(1, "VIEWS"),
            ));
            Ok(())
        } else if (word(0, "DESCRIBE") || word(0, "DESC")) && words.len() == 2 {
            let Token::Word(name) = &words[1].token else {
                return Err(SqlError::at("expected DESCRIBE <table>", start));
            };
            let text =
                crate::catalog_listing::describe(&self.catalog, &name.value, position(&words[1]))
                    .await?;
            submitted.explained.push(text);
            Ok(())
        } else if word(0, "SET") {
            self.set(&words[1..], start)
        } else if word(0, "INSERT") && word(1, "INTO") {
            let pipeline = self.insert(tokens).await?;
            submitted.job.pipelines.push(pipeline);
            Ok(())
        } else if word(0, "EXECUTE") && word(1, "STATEMENT") && word(2, "SET") && word(3, "BEGIN") {
            let begin = tokens.iter().position(|t| is_word(t, "BEGIN")).unwrap_or(0);
            let end = tokens
                .iter()
                .rposition(|t| is_word(t, "END"))
                .unwrap_or(tokens.len());
            for inner in statements(tokens[begin + 1..end].to_vec()) {
                if !solid(&inner).first().is_some_and(|t| is_word(t, "INSERT")) {
                    return Err(SqlError::at(
                        "a STATEMENT SET holds only INSERT statements",
                        position(&inner[0]),
                    ));
                }
                let pipeline = self.insert(&inner).await?;
                submitted.job.pipelines.push(pipeline);
            }
            Ok(())
        } else if word(0, "EXPLAIN") {
            let from = tokens
                .iter()
                .position(|t| is_word(t, "SELECT") || is_word(t, "INSERT") || is_word(t, "WITH"));
            let Some(from) = from else {
                return Err(SqlError::at(
                    "EXPLAIN takes a SELECT or INSERT statement",
                    start,
                ));
            };
            let inner = &tokens[from..];
            let pipeline = if is_word(&inner[0], "INSERT") {
                self.insert(inner).await?
            } else {
                let (node, schema) = self.query(inner).await?;
                Pipeline {
                    node,
                    schema,
                    output: Output::Results,
                }
            };
            submitted.explained.push(explain_pipeline(&pipeline));
            Ok(())
        } else if word(0, "SELECT")
            || word(0, "WITH")
            || words.first().is_some_and(|t| t.token == Token::LParen)
        {
            let (node, schema) = self.query(tokens).await?;
            submitted.job.pipelines.push(Pipeline {
                node,
                schema,
                output: Output::Results,
            });
            Ok(())
        } else {
            let first = words
                .first()
                .map(|t| t.token.to_string())
                .unwrap_or_default();
            Err(SqlError::at(
                format!("SQL parse failed. Unsupported statement starting with \"{first}\""),
                start,
            ))
        }
    }

    /// No table or view is named `name` yet.
    fn name_is_free(&self, name: &str, start: Position) -> Result<(), SqlError> {
        if self.catalog.tables.contains_key(name)
            || self.catalog.views.iter().any(|v| v.name == name)
        {
            return Err(SqlError::at(
                format!("Table or view '{name}' already exists"),
                start,
            ));
        }
        Ok(())
    }

    fn add_table(
        &mut self,
        table: crate::front::ddl::TableDef,
        start: Position,
    ) -> Result<(), SqlError> {
        self.name_is_free(&table.name, start)?;
        self.catalog
            .tables
            .insert(table.name.clone(), Arc::new(table));
        Ok(())
    }

    async fn create_view(
        &mut self,
        tokens: &[TokenWithSpan],
        name_at: usize,
        start: Position,
    ) -> Result<(), SqlError> {
        let words = solid(tokens);
        let mut i = name_at;
        if words.get(i).is_some_and(|t| is_word(t, "IF")) {
            i += 3;
        }
        let Some(Token::Word(name)) = words.get(i).map(|t| &t.token) else {
            return Err(SqlError::at("expected a view name", start));
        };
        let name = name.value.clone();
        if !words.get(i + 1).is_some_and(|t| is_word(t, "AS")) {
            return Err(SqlError::at(
                "expected CREATE VIEW <name> AS <query>",
                start,
            ));
        }
        let as_index = tokens
            .iter()
            .position(|t| t.span == words[i + 1].span)
            .unwrap_or(0);
        let query = &tokens[as_index + 1..];
        let (temporal, clauses) = crate::front::temporal::rewrite(
            crate::front::unnest::rewrite(crate::front::intervals::rewrite(
                crate::front::time_literals::rewrite(query.to_vec())?,
            )?)?,
            &|table| self.versioned_time(table),
        )?;
        let versioned = self.versioned_clauses(clauses)?;
        let legacy = crate::front::legacy_windows::rewrite(
            crate::front::function_syntax::rewrite(temporal),
        )?;
        let (rewritten, calls) = windows::rewrite(legacy, &mut self.catalog.next_window)?;
        let (rewritten, matches) =
            crate::front::match_recognize::rewrite(rewritten, &mut self.catalog.next_window)?;
        // Plan it now so that a bad view fails at its own statement.
        let context = self.catalog.session_for(&calls, &matches).await?;
        let (frame, sql) = crate::front::expression_names::plan(&context, render(&rewritten))
            .await
            .map_err(|e| located(e, query))?;
        let versions_of = frame
            .into_optimized_plan()
            .ok()
            .and_then(|plan| crate::plan::temporal_join::versioned_view(&plan))
            .filter(|v| self.is_rowtime(&v.time));
        self.name_is_free(&name, start)?;
        self.catalog.views.push(ViewDef {
            name,
            sql,
            windows: calls,
            matches,
            versioned,
            versions_of,
        });
        Ok(())
    }

    fn set(&mut self, words: &[TokenWithSpan], start: Position) -> Result<(), SqlError> {
        let text = |t: &TokenWithSpan| match &t.token {
            Token::SingleQuotedString(s) => s.clone(),
            other => other.to_string(),
        };
        match words {
            [key, eq, value @ ..] if eq.token == Token::Eq && !value.is_empty() => {
                let value: Vec<String> = value.iter().map(text).collect();
                let (key, value) = (text(key), value.join(" "));
                // TIMESTAMP_LTZ text, CURRENT_DATE and LOCALTIMESTAMP are
                // in UTC: another zone would change answers silently.
                if key == "table.local-time-zone"
                    && !["UTC", "Etc/UTC", "GMT", "Etc/GMT", "Z", "+00:00"]
                        .contains(&value.as_str())
                {
                    return Err(SqlError::at(
                        format!(
                            "'table.local-time-zone' = '{value}' is not supported: Runnel's session time zone is UTC"
                        ),
                        start,
                    ));
                }
                self.catalog.settings.insert(key, value);
                Ok(())
            }
            _ => Err(SqlError::at("expected SET 'key' = 'value'", start)),
        }
    }

    /// `CREATE TABLE name [WITH (...)] AS <query>`: the table, with the
    /// query's columns, and the query written into it, as Flink's CTAS.
    async fn create_table_as(
        &mut self,
        head: &[TokenWithSpan],
        query: &[TokenWithSpan],
        start: Position,
    ) -> Result<Pipeline, SqlError> {
        let mut table = crate::front::ddl::parse_create_table_as(head)?;
        self.name_is_free(&table.name, start)?;
        let (node, schema) = self.query(query).await?;
        table.physical = schema
            .fields()
            .iter()
            .filter(|f| f.name() != runnel_engine::changelog::OP_COLUMN)
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect();
        let name = table.name.clone();
        let table = Arc::new(table);
        self.catalog.tables.insert(name.clone(), table.clone());
        self.write_into(&table, node, schema, start)
    }

    async fn insert(&mut self, tokens: &[TokenWithSpan]) -> Result<Pipeline, SqlError> {
        let words = solid(tokens);
        let Some(Token::Word(name)) = words.get(2).map(|t| &t.token) else {
            return Err(SqlError::at(
                "expected INSERT INTO <table> <query>",
                position(&words[0]),
            ));
        };
        let name = name.value.clone();
        let table = self.catalog.tables.get(&name).cloned().ok_or_else(|| {
            SqlError::at(format!("Object '{name}' not found"), position(&words[2]))
        })?;
        let query_at = tokens
            .iter()
            .position(|t| t.span == words[2].span)
            .map_or(tokens.len(), |i| i + 1);
        let (node, schema) = self.query(&tokens[query_at..]).await?;
        self.write_into(&table, node, schema, position(&words[0]))
    }

    /// A query's rows into a table: its sink, an upsert by its primary
    /// key for a changelog, and the cast to its columns.
    fn write_into(
        &mut self,
        table: &Arc<crate::front::ddl::TableDef>,
        node: Node,
        schema: SchemaRef,
        at: Position,
    ) -> Result<Pipeline, SqlError> {
        let name = table.name.clone();
        let table = table.as_ref();
        let target = Catalog::sink_schema(table)?;
        let mut options = table.options.clone();
        if !table.primary_key.is_empty()
            && options.get("connector").map(String::as_str) == Some("jdbc")
        {
            options.insert(
                runnel_engine::connector::PRIMARY_KEY.to_string(),
                table.primary_key.join(","),
            );
        }
        if !table.partition_keys.is_empty() {
            options.insert(
                runnel_engine::connector::PARTITION_KEYS.to_string(),
                table.partition_keys.join(","),
            );
        }
        let provider = self
            .connectors
            .sink(options, target.clone())
            .map_err(|e| SqlError::at(format!("table '{name}': {e}"), table.position))?;
        if is_changelog(&schema) && !provider.accepts_changelog() {
            return Err(SqlError::at(
                format!(
                    "table '{name}' is append-only ('{}'), but the query updates its results (an unwindowed GROUP BY or a regular join); write it to a sink that takes a changelog (print, blackhole)",
                    table.options.get("connector").map_or("", String::as_str)
                ),
                at,
            ));
        }
        let (node, schema) = if table.primary_key.is_empty() || !is_changelog(&schema) {
            (node, schema)
        } else {
            crate::plan::upsert::by_primary_key(
                node,
                schema,
                table,
                provider.wants_update_before(),
            )?
        };
        let cast = cast_to(schema, target.clone()).map_err(|e| SqlError::at(e.to_string(), at))?;
        let node = Node::Map {
            input: Box::new(node),
            name: format!("Insert({name})"),
            f: cast,
        };
        Ok(Pipeline {
            node,
            schema: target,
            output: Output::Table { name, provider },
        })
    }

    async fn query(&mut self, tokens: &[TokenWithSpan]) -> Result<(Node, SchemaRef), SqlError> {
        let unnested = crate::front::unnest::rewrite(crate::front::intervals::rewrite(
            crate::front::time_literals::rewrite(tokens.to_vec())?,
        )?)?;
        let (temporal, clauses) =
            crate::front::temporal::rewrite(unnested, &|table| self.versioned_time(table))?;
        let versioned = self.versioned_clauses(clauses)?;
        let legacy = crate::front::legacy_windows::rewrite(
            crate::front::function_syntax::rewrite(temporal),
        )?;
        let (rewritten, calls) = windows::rewrite(legacy, &mut self.catalog.next_window)?;
        let (rewritten, matches) =
            crate::front::match_recognize::rewrite(rewritten, &mut self.catalog.next_window)?;
        let context = self.catalog.session_for(&calls, &matches).await?;
        let (frame, _) = crate::front::expression_names::plan(&context, render(&rewritten))
            .await
            .map_err(|e| located(e, tokens))?;
        let plan = frame
            .into_optimized_plan()
            .and_then(crate::plan::grouping_sets::expand)
            .map_err(|e| located(e, tokens))?;
        refuse_interval_results(&plan, tokens)?;
        let planner = Planner {
            context: &context,
            catalog: &self.catalog,
            windows: &calls,
            matches: &matches,
            versioned: &versioned,
            connectors: self.connectors.as_ref(),
            statement: tokens,
            rank_limits: Default::default(),
            shared: Default::default(),
            reading_versions: Default::default(),
        };
        planner.plan(&plan).await
    }
}

impl Session {
    /// Whether `name` is some table's event-time attribute (a WATERMARK).
    fn is_rowtime(&self, name: &str) -> bool {
        self.catalog
            .tables
            .values()
            .any(|t| t.watermark.as_ref().is_some_and(|w| w.column == name))
    }

    /// The clauses against versioned tables, which the planner joins by
    /// event time; any other table that can change is refused.
    fn versioned_clauses(
        &self,
        clauses: Vec<crate::front::temporal::Temporal>,
    ) -> Result<Vec<crate::front::temporal::Temporal>, SqlError> {
        let mut versioned = Vec::new();
        for clause in clauses {
            if self.versioned_time(&clause.table).is_some() {
                versioned.push(clause);
            } else {
                self.refuse_changing_lookup(&clause)?;
            }
        }
        Ok(versioned)
    }

    /// The time attribute of `name` if it is a versioned table Flink joins
    /// by event time (a PRIMARY KEY and a WATERMARK), or a column of a table
    /// a lookup join reads.
    fn versioned_time(&self, name: &str) -> Option<String> {
        if let Some(view) = self.catalog.views.iter().find(|v| v.name == name) {
            return view.versions_of.as_ref().map(|v| v.time.clone());
        }
        let table = self.catalog.tables.get(name)?;
        // A lookup join reads the table as it is when each row passes; the
        // marker only needs one of its columns.
        if table.options.get("connector").map(String::as_str) == Some("jdbc") {
            return table.physical.first().map(|f| f.name().clone());
        }
        // An append-only table's rows are each a new version of its key; a
        // changelog's (debezium-json) inserts and updates are, and its
        // deletes end its key's versions.
        match (&table.watermark, table.primary_key.is_empty()) {
            (Some(watermark), false) => Some(watermark.column.clone()),
            _ => None,
        }
    }

    /// A `FOR SYSTEM_TIME AS OF` join runs as a regular join, which is
    /// Flink's answer only against a table that cannot change while the job
    /// runs: a bounded file of rows that are not a changelog. Against a
    /// versioned table each row would join every version of its key.
    fn refuse_changing_lookup(
        &self,
        clause: &crate::front::temporal::Temporal,
    ) -> Result<(), SqlError> {
        let name = &clause.table;
        let why = match self.catalog.tables.get(name) {
            None if self.catalog.views.iter().any(|v| &v.name == name) => Some(format!(
                "'{name}' is a view, whose rows can change while the job runs"
            )),
            None => None,
            Some(table) => {
                let connector = table.options.get("connector").map(String::as_str);
                let format = table.options.get("format").map(String::as_str);
                if format == Some("debezium-json") {
                    Some(format!("'{name}' is a changelog ('debezium-json')"))
                } else if connector != Some("filesystem") {
                    Some(format!(
                        "'{name}' is read from '{}', whose rows can change while the job runs",
                        connector.unwrap_or_default()
                    ))
                } else if table.watermark.is_some() {
                    Some(format!(
                        "'{name}' has a WATERMARK, so it is read as a stream"
                    ))
                } else {
                    None
                }
            }
        };
        match why {
            Some(why) => Err(SqlError::at(
                format!(
                    "FOR SYSTEM_TIME AS OF is supported only against a bounded table that does not change while the job runs; {why}, and joining it as a regular join would join each row with every version rather than the one valid at its time"
                ),
                clause.position,
            )),
            None => Ok(()),
        }
    }
}

/// A DataFusion error with a position in the script: from the parser's own
/// "Line: l, Column: c" (relative to the statement), or by finding the name
/// it complains about.
/// An INTERVAL result column: Flink writes it as Java's `Duration` or
/// `Period` (`PT1H30M`, `P14M`), which no sink here writes.
fn refuse_interval_results(
    plan: &datafusion::logical_expr::LogicalPlan,
    statement: &[TokenWithSpan],
) -> Result<(), SqlError> {
    use datafusion::arrow::datatypes::DataType;
    let Some(field) = plan
        .schema()
        .fields()
        .iter()
        .find(|f| matches!(f.data_type(), DataType::Interval(_) | DataType::Duration(_)))
    else {
        return Ok(());
    };
    let at = statement
        .iter()
        .find(|t| !crate::front::tokens::is_space(t))
        .map(crate::front::tokens::position)
        .unwrap_or(crate::error::Position { line: 1, column: 1 });
    Err(SqlError::at(
        format!(
            "an INTERVAL as a result column ({}) is not supported yet (Flink writes it as Java's Duration or Period)",
            field.name()
        ),
        at,
    ))
}

fn located(error: datafusion::error::DataFusionError, statement: &[TokenWithSpan]) -> SqlError {
    let message = error.strip_backtrace().replace('\n', " ");
    let start = statement
        .first()
        .map(position)
        .unwrap_or(Position { line: 1, column: 1 });
    if let Some(i) = message.find("Line: ") {
        let rest = &message[i + 6..];
        let line: Option<u64> = rest.split(',').next().and_then(|l| l.trim().parse().ok());
        let column: Option<u64> = rest.split("Column: ").nth(1).and_then(|c| {
            c.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
                .parse()
                .ok()
        });
        if let (Some(line), Some(column)) = (line, column) {
            let position = if line == 1 {
                Position {
                    line: start.line,
                    column: start.column + column - 1,
                }
            } else {
                Position {
                    line: start.line + line - 1,
                    column,
                }
            };
            let text = message[..i].trim_end().trim_end_matches(" at");
            let text = text.rsplit("ParserError(\"").next().unwrap_or(text);
            return SqlError::at(format!("SQL parse failed. {text}"), position);
        }
    }
    if let Some(i) = message.find("table '") {
        let quoted = message[i + 7..].split('\'').next().unwrap_or_default();
        let name = quoted.rsplit('.').next().unwrap_or(quoted);
        if message[i..].contains("not found") {
            let at = statement
                .iter()
                .find(|t| matches!(&t.token, Token::Word(w) if w.value == name))
                .map_or(start, position);
            return SqlError::at(format!("Object '{name}' not found"), at);
        }
    }
    // A function that does not exist, or that Runnel refuses as called:
    // at its name.
    let message = message.replace("apply_function_rewrites caused by ", "");
    if let Some(rest) = message.split("Invalid function '").nth(1)
        && let Some(name) = rest.split('\'').next()
        && let Some(token) = statement
            .iter()
            .find(|t| matches!(&t.token, Token::Word(w) if w.value.eq_ignore_ascii_case(name)))
    {
        return SqlError::at(message, position(token));
    }
    let named = ["No field named ", "Invalid identifier "]
        .iter()
        .find_map(|p| message.find(p).map(|i| &message[i + p.len()..]))
        .and_then(|rest| {
            rest.trim_start_matches(['"', '\''])
                .split(['"', '\'', '.', ' '])
                .find(|s| !s.is_empty())
        });
    if let Some(name) = named
        && let Some(token) = statement
            .iter()
            .find(|t| matches!(&t.token, Token::Word(w) if w.value == name))
    {
        return SqlError::at(message, position(token));
    }
    SqlError::at(message, start)
}

/// Where the `AS` of `CREATE TABLE ... AS <query>` is, if this is one: a
/// top-level `AS` followed by SELECT or WITH (a computed column's `AS` is
/// inside the column list).
fn create_table_as(tokens: &[TokenWithSpan]) -> Option<usize> {
    let mut depth = 0i32;
    for (i, token) in tokens.iter().enumerate() {
        match token.token {
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            _ if depth == 0 && is_word(token, "AS") => {
                let next = tokens[i + 1..]
                    .iter()
                    .find(|t| !matches!(t.token, Token::Whitespace(_)))?;
                if is_word(next, "SELECT") || is_word(next, "WITH") || next.token == Token::LParen {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}
