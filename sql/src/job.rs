//! A script's statements run in order: DDL fills the catalog, queries are
//! planned, and all of them become one dataflow job.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan};
use runnel_engine::connector::{ConnectorFactory, SinkProvider};
use runnel_engine::context::JobContext;
use runnel_engine::runtime::{Cluster, run};
use runnel_engine::sink::sink;
use runnel_engine::source::source;
use runnel_engine::stateless::map_batches;
use runnel_engine::time::Watermark;
use runnel_engine::updating::changelog::is_changelog;
use runnel_engine::window_op::window_aggregate;
use timely::dataflow::operators::Concatenate;
use timely::dataflow::{ProbeHandle, Scope, Stream};

use crate::catalog::{Catalog, ViewDef};
use crate::ddl::parse_create_table;
use crate::error::{Position, SqlError};
use crate::planner::{Node, Planner, cast_to};
use crate::tokens::{is_word, position, render, solid, statements, tokenize};
use crate::windows;

/// Where a pipeline's rows go.
pub enum Output {
    Table {
        name: String,
        provider: Arc<dyn SinkProvider>,
    },
    /// A bare SELECT: printed, or collected by whoever runs the job.
    Results,
}

pub struct Pipeline {
    pub node: Node,
    pub schema: SchemaRef,
    pub output: Output,
}

/// Everything a script asked to run, as one dataflow.
#[derive(Default)]
pub struct Job {
    pub pipelines: Vec<Pipeline>,
}

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
    pub fn submit(&mut self, script: &str) -> Result<Submitted, SqlError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .map_err(|e| SqlError::Plan(format!("cannot start the planner: {e}")))?;
        runtime.block_on(self.submit_async(script))
    }

    async fn submit_async(&mut self, script: &str) -> Result<Submitted, SqlError> {
        let mut submitted = Submitted {
            job: Job::default(),
            explained: Vec::new(),
        };
        for statement in statements(tokenize(script)?) {
            self.statement(&statement, &mut submitted).await?;
        }
        Ok(submitted)
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
        if word(0, "CREATE") && word(1 + skip_temporary, "TABLE") {
            let table = parse_create_table(tokens)?;
            if self.catalog.tables.contains_key(&table.name)
                || self.catalog.views.iter().any(|v| v.name == table.name)
            {
                return Err(SqlError::at(
                    format!("Table or view '{}' already exists", table.name),
                    start,
                ));
            }
            self.catalog
                .tables
                .insert(table.name.clone(), Arc::new(table));
            Ok(())
        } else if word(0, "CREATE") && word(1 + skip_temporary, "VIEW") {
            self.create_view(tokens, 2 + skip_temporary, start).await
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
            let (node, output) = if is_word(&inner[0], "INSERT") {
                let pipeline = self.insert(inner).await?;
                let name = match &pipeline.output {
                    Output::Table { name, .. } => name.clone(),
                    Output::Results => String::new(),
                };
                (pipeline.node, format!("Sink: {name}"))
            } else {
                (
                    self.query(inner).await?.0,
                    "Sink: print (results)".to_string(),
                )
            };
            submitted
                .explained
                .push(format!("{output}\n{}", explain(&node, 1)));
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
        let legacy = crate::legacy_windows::rewrite(query.to_vec())?;
        let (rewritten, calls) = windows::rewrite(legacy, &mut self.catalog.next_window)?;
        let sql = render(&rewritten);
        // Plan it now so that a bad view fails at its own statement.
        let context = self.catalog.session(&calls).await?;
        context.sql(&sql).await.map_err(|e| located(e, query))?;
        if self.catalog.tables.contains_key(&name)
            || self.catalog.views.iter().any(|v| v.name == name)
        {
            return Err(SqlError::at(
                format!("Table or view '{name}' already exists"),
                start,
            ));
        }
        self.catalog.views.push(ViewDef {
            name,
            sql,
            windows: calls,
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
                self.catalog.settings.insert(text(key), value.join(" "));
                Ok(())
            }
            _ => Err(SqlError::at("expected SET 'key' = 'value'", start)),
        }
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
        let target = Catalog::physical_schema(&table);
        let mut options = table.options.clone();
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
                position(&words[0]),
            ));
        }
        let (node, schema) = if table.primary_key.is_empty() || !is_changelog(&schema) {
            (node, schema)
        } else {
            crate::upsert::by_primary_key(node, schema, &table, provider.wants_update_before())?
        };
        let cast = cast_to(schema, target.clone())
            .map_err(|e| SqlError::at(e.to_string(), position(&words[0])))?;
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
        let temporal = crate::temporal::rewrite(tokens.to_vec());
        let legacy = crate::legacy_windows::rewrite(temporal)?;
        let (rewritten, calls) = windows::rewrite(legacy, &mut self.catalog.next_window)?;
        let sql = render(&rewritten);
        let context = self.catalog.session(&calls).await?;
        let frame = context.sql(&sql).await.map_err(|e| located(e, tokens))?;
        let plan = frame
            .into_optimized_plan()
            .map_err(|e| located(e, tokens))?;
        let planner = Planner {
            context: &context,
            catalog: &self.catalog,
            windows: &calls,
            connectors: self.connectors.as_ref(),
            statement: tokens,
            rank_limits: Default::default(),
            shared: Default::default(),
        };
        planner.plan(&plan).await
    }
}

/// A DataFusion error with a position in the script: from the parser's own
/// "Line: l, Column: c" (relative to the statement), or by finding the name
/// it complains about.
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

pub fn explain(node: &Node, depth: usize) -> String {
    let pad = "  ".repeat(depth);
    match node {
        Node::Source {
            table,
            provider,
            event_time,
            late_rows,
        } => {
            let connector = table.options.get("connector").cloned().unwrap_or_default();
            let watermark = match (&table.watermark, event_time) {
                (Some(w), Some(_)) => {
                    format!(", watermark {} - {} ms", w.column, w.max_out_of_orderness)
                }
                _ => String::new(),
            };
            let idle = match event_time.as_ref().and_then(|e| e.idle_timeout) {
                Some(timeout) => format!(", idle after {} ms", timeout.as_millis()),
                None => String::new(),
            };
            let late = match late_rows {
                Some(late) => format!(", late rows to {}", late.table),
                None => String::new(),
            };
            let changelog = if provider.produces_changelog() {
                ", changelog"
            } else {
                ""
            };
            format!(
                "{pad}Source: {}[{connector}]{changelog}{watermark}{idle}{late}",
                table.name
            )
        }
        Node::Map { input, name, .. } => format!("{pad}{name}\n{}", explain(input, depth + 1)),
        Node::WindowAggregate {
            input, describe, ..
        } => {
            format!(
                "{pad}WindowAggregate: {describe}\n{}",
                explain(input, depth + 1)
            )
        }
        Node::Complete { input, name, .. } => format!("{pad}{name}\n{}", explain(input, depth + 1)),
        Node::WindowAssign { input, spec } => format!(
            "{pad}WindowAssign: {:?}\n{}",
            spec.kind,
            explain(input, depth + 1)
        ),
        Node::WindowJoin {
            left,
            right,
            describe,
            ..
        } => format!(
            "{pad}WindowJoin: {describe}\n{}\n{}",
            explain(left, depth + 1),
            explain(right, depth + 1)
        ),
        Node::IntervalJoin {
            left,
            right,
            describe,
            ..
        } => format!(
            "{pad}IntervalJoin: {describe}\n{}\n{}",
            explain(left, depth + 1),
            explain(right, depth + 1)
        ),
        Node::TopN {
            input, describe, ..
        } => format!(
            "{pad}TopN (updating): {describe}\n{}",
            explain(input, depth + 1)
        ),
        Node::GroupAggregate {
            input, describe, ..
        } => format!(
            "{pad}GroupAggregate (updating): {describe}\n{}",
            explain(input, depth + 1)
        ),
        Node::RegularJoin {
            left,
            right,
            describe,
            ..
        } => format!(
            "{pad}Join (updating): {describe}\n{}\n{}",
            explain(left, depth + 1),
            explain(right, depth + 1)
        ),
        Node::Deduplicate {
            input, describe, ..
        } => format!(
            "{pad}Deduplicate: {describe}\n{}",
            explain(input, depth + 1)
        ),
        Node::Union { inputs } => {
            let children: Vec<String> = inputs.iter().map(|n| explain(n, depth + 1)).collect();
            format!("{pad}UnionAll\n{}", children.join("\n"))
        }
        Node::Shared { id, input } => {
            format!("{pad}Shared #{id}\n{}", explain(input, depth + 1))
        }
    }
}

impl Job {
    pub fn is_empty(&self) -> bool {
        self.pipelines.is_empty()
    }

    /// Runs every pipeline as one dataflow until all sources end. Bare
    /// SELECT results go to `results`.
    pub fn run(
        self,
        cluster: &Cluster,
        context: Arc<JobContext>,
        results: Arc<dyn SinkProvider>,
    ) -> Result<(), SqlError> {
        let job = Arc::new(self);
        run(cluster, context, move |worker, context| {
            let (index, peers) = (worker.index(), worker.peers());
            let job = job.clone();
            let results = results.clone();
            worker.dataflow::<Watermark, _, _>(move |scope| {
                let probe = ProbeHandle::new();
                for (i, pipeline) in job.pipelines.iter().enumerate() {
                    let stream = build(
                        &pipeline.node,
                        scope,
                        &context,
                        index,
                        peers,
                        &mut HashMap::new(),
                    )?;
                    let (name, provider) = match &pipeline.output {
                        Output::Table { name, provider } => (name.as_str(), provider),
                        Output::Results => ("results", &results),
                    };
                    let writer = provider.sink(index, peers)?;
                    sink(
                        stream,
                        &format!("Sink({i}: {name})"),
                        writer,
                        context.clone(),
                        &probe,
                    );
                }
                Ok(probe)
            })
        })
        .map_err(SqlError::from)
    }
}

fn build<'scope>(
    node: &Node,
    scope: Scope<'scope, Watermark>,
    context: &Arc<JobContext>,
    index: usize,
    peers: usize,
    memo: &mut HashMap<usize, Stream<'scope, Watermark, runnel_engine::batch::Batch>>,
) -> Result<Stream<'scope, Watermark, runnel_engine::batch::Batch>, runnel_engine::EngineError> {
    Ok(match node {
        Node::Shared { id, input } => match memo.get(id) {
            Some(stream) => stream.clone(),
            None => {
                let stream = build(input, scope, context, index, peers, memo)?;
                memo.insert(*id, stream.clone());
                stream
            }
        },
        Node::Source {
            table,
            provider,
            event_time,
            late_rows,
        } => {
            let reader = provider.reader(index, peers)?;
            let late_rows = match late_rows {
                Some(late) => Some(late.sink(index, peers)?),
                None => None,
            };
            source(
                scope,
                &format!("Source({})", table.name),
                reader,
                event_time.clone(),
                late_rows,
                context.clone(),
            )
        }
        Node::Map { input, name, f } => map_batches(
            build(input, scope, context, index, peers, memo)?,
            name,
            f.clone(),
            context.clone(),
        ),
        Node::WindowAggregate { input, spec, .. } => window_aggregate(
            build(input, scope, context, index, peers, memo)?,
            spec.clone(),
            context.clone(),
        )?,
        Node::Complete {
            input,
            name,
            key_columns,
            f,
        } => runnel_engine::complete::per_complete_time(
            build(input, scope, context, index, peers, memo)?,
            name,
            key_columns.clone(),
            f.clone(),
            context.clone(),
        ),
        Node::WindowAssign { input, spec } => runnel_engine::window_assign::assign_windows(
            build(input, scope, context, index, peers, memo)?,
            spec.clone(),
            context.clone(),
        ),
        Node::WindowJoin {
            left,
            right,
            spec,
            routes,
            ..
        } => {
            let join = spec.clone();
            let f: runnel_engine::complete::CompletePairFn =
                Arc::new(move |lefts, rights| join.join_all(&lefts, &rights));
            runnel_engine::complete::per_complete_time_pair(
                build(left, scope, context, index, peers, memo)?,
                build(right, scope, context, index, peers, memo)?,
                "WindowJoin",
                routes.clone(),
                f,
                context.clone(),
            )
        }
        Node::IntervalJoin {
            left, right, spec, ..
        } => runnel_engine::interval_join::interval_join(
            build(left, scope, context, index, peers, memo)?,
            build(right, scope, context, index, peers, memo)?,
            spec.clone(),
            context.clone(),
        )?,
        Node::TopN { input, spec, .. } => {
            let input = build(input, scope, context, index, peers, memo)?;
            // An append-only input never takes a row back, so only the N
            // best of each partition need be kept.
            if !is_changelog(&spec.input_schema) && spec.limit.is_some_and(|n| n <= 10_000) {
                runnel_engine::updating::append_top_n::append_top_n(
                    input,
                    spec.clone(),
                    context.clone(),
                )?
            } else {
                runnel_engine::updating::top_n::top_n(input, spec.clone(), context.clone())?
            }
        }
        Node::GroupAggregate { input, spec, .. } => {
            let input_node = input;
            let input = build(input, scope, context, index, peers, memo)?;
            // Aggregates that take rows back in any order (COUNT, SUM, AVG,
            // COUNT DISTINCT) keep their grouped state even over operators'
            // changelogs; others
            // (MIN, MAX), and a changelog source's rows, which may retract
            // before they insert, need differential's recomputation.
            if is_changelog(&spec.input_schema)
                && (input_node.reads_changelog_source()
                    || !runnel_engine::updating::append_aggregate::retracts(spec))
            {
                runnel_engine::updating::group_aggregate::group_aggregate(
                    input,
                    spec.clone(),
                    context.clone(),
                )?
            } else {
                runnel_engine::updating::append_aggregate::append_aggregate(
                    input,
                    spec.clone(),
                    context.clone(),
                )?
            }
        }
        Node::RegularJoin {
            left, right, spec, ..
        } => runnel_engine::updating::join::regular_join(
            build(left, scope, context, index, peers, memo)?,
            build(right, scope, context, index, peers, memo)?,
            spec.clone(),
            context.clone(),
        )?,
        Node::Deduplicate {
            input,
            spec,
            input_schema,
            ..
        } => runnel_engine::dedup::deduplicate(
            build(input, scope, context, index, peers, memo)?,
            spec.clone(),
            input_schema.clone(),
            context.clone(),
        )?,
        Node::Union { inputs } => {
            let streams = inputs
                .iter()
                .map(|n| build(n, scope, context, index, peers, memo))
                .collect::<Result<Vec<_>, _>>()?;
            scope.concatenate(streams)
        }
    })
}
