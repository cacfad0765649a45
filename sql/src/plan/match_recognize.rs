//! A MATCH_RECOGNIZE clause over its input's schema: the pattern, the
//! DEFINE conditions and the MEASURES planned as expressions over what they
//! read from a match (`runnel_engine::pattern::Reference`): `A.price` (the
//! last row taken as `A`; in a condition the row tested counts),
//! `FIRST(A.price, n)`, `LAST(A.price, n)`, `PREV(price, n)` (Flink's: the
//! row n before the tested one in the match, which, rows being contiguous,
//! is the row before it), aggregates over one variable's rows or all
//! rows, `MATCH_ROWTIME()`. Whatever Flink refuses, or Runnel cannot answer
//! as Flink does, is refused here.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::DFSchema;
use datafusion::common::tree_node::TreeNode;
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::physical_expr::aggregate::{AggregateFunctionExpr, LoweredAggregateBuilder};
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan};
use runnel_engine::pattern::{Element, Expression, MatchRecognize, Reference, Skip};

use crate::catalog::quoted;
use crate::error::{Position, SqlError};
use crate::front::match_recognize::{MatchCall, MatchClause, SkipTo};
use crate::front::tokens::{is_word, matching_paren, position, render_spaced, split_commas};
use runnel_engine::changelog::is_changelog;

/// The clause planned over `input`. `time_column` is checked by the caller
/// to be a time attribute.
pub async fn compile(
    context: &SessionContext,
    clause: &MatchClause,
    input: SchemaRef,
    at: Position,
) -> Result<MatchRecognize, SqlError> {
    let column = |name: &str, at: Position| {
        input.index_of(name).map_err(|_| {
            SqlError::at(
                format!("Column '{name}' not found in MATCH_RECOGNIZE's input"),
                at,
            )
        })
    };
    let partition = clause
        .partition
        .iter()
        .map(|c| column(c, at))
        .collect::<Result<Vec<_>, _>>()?;
    let (time_column, then_by) = match clause.order.as_slice() {
        [(name, true), rest @ ..] => (
            column(name, at)?,
            rest.iter()
                .map(|(name, ascending)| Ok((column(name, at)?, *ascending)))
                .collect::<Result<Vec<_>, SqlError>>()?,
        ),
        _ => {
            return Err(SqlError::at(
                "MATCH_RECOGNIZE must be ORDER BY a time attribute ascending (as in Flink)",
                at,
            ));
        }
    };
    let variables = clause.variables();
    if variables.len() != clause.pattern.len() {
        let twice = clause
            .pattern
            .iter()
            .enumerate()
            .find(|(i, t)| {
                clause.pattern[..*i]
                    .iter()
                    .any(|e| e.variable == t.variable)
            })
            .map(|(_, t)| t);
        if let Some(term) = twice {
            return Err(SqlError::at(
                format!(
                    "pattern variable {} appears twice in PATTERN, which Flink does not allow",
                    term.variable
                ),
                term.position,
            ));
        }
    }
    let pattern: Vec<Element> = clause
        .pattern
        .iter()
        .enumerate()
        .map(|(i, t)| Element {
            variable: i,
            min: t.min,
            max: t.max,
            greedy: t.greedy,
        })
        .collect();
    if pattern.iter().all(|e| e.min == 0) {
        return Err(SqlError::at(
            "a PATTERN that can match no rows is not supported (as in Flink)",
            clause.pattern[0].position,
        ));
    }
    if let Some(pair) = clause
        .pattern
        .windows(2)
        .find(|pair| pair[0].greedy_property && pair[1].min == 0)
    {
        return Err(SqlError::at(
            format!(
                "Optional pattern cannot be preceded by greedy pattern (as in Flink): {} after {}",
                pair[1].variable, pair[0].variable
            ),
            pair[1].position,
        ));
    }
    let last = &clause.pattern[clause.pattern.len() - 1];
    if last.greedy {
        return Err(SqlError::at(
            "Greedy quantifiers are not allowed as the last element of a Pattern yet. Finish your pattern with either a simple variable or reluctant quantifier (as in Flink)",
            last.position,
        ));
    }
    let variable = |name: &str, at: Position| {
        variables
            .iter()
            .position(|v| v == name)
            .ok_or_else(|| SqlError::at(format!("{name} is not a variable of the PATTERN"), at))
    };
    let skip = match &clause.skip {
        SkipTo::PastLastRow => Skip::PastLastRow,
        SkipTo::NextRow => Skip::ToNextRow,
        SkipTo::First(v) => {
            let v = variable(v, clause.skip_position)?;
            if v == 0 && pattern[0].min > 0 {
                return Err(SqlError::at(
                    "AFTER MATCH SKIP TO FIRST of the first variable would start the next match where this one started (Flink fails such a job: Could not skip to first element of a match)",
                    clause.skip_position,
                ));
            }
            Skip::ToFirst(v)
        }
        SkipTo::Last(v) => Skip::ToLast(variable(v, clause.skip_position)?),
    };
    let mut compiler = Compiler {
        context,
        input: input.clone(),
        variables: &variables,
        time_column,
        aggregates: Vec::new(),
    };
    let mut conditions: Vec<Option<Expression>> = (0..variables.len()).map(|_| None).collect();
    for (name, tokens) in &clause.defines {
        let at = tokens.first().map(position).unwrap_or(at);
        let v = variable(name, at)?;
        let expression = compiler.expression(tokens, Some(v), at).await?;
        let returns = expression.expr.data_type(&expression.schema)?;
        if returns != DataType::Boolean && returns != DataType::Null {
            return Err(SqlError::at(
                format!("the DEFINE condition of {name} must be BOOLEAN, not {returns}"),
                at,
            ));
        }
        conditions[v] = Some(expression);
    }
    let mut fields: Vec<Field> = partition.iter().map(|&i| input.field(i).clone()).collect();
    let mut measures = Vec::new();
    for (tokens, alias) in &clause.measures {
        let at = tokens.first().map(position).unwrap_or(at);
        let expression = compiler.expression(tokens, None, at).await?;
        let data_type = expression.expr.data_type(&expression.schema)?;
        let nullable = expression.expr.nullable(&expression.schema)?;
        fields.push(Field::new(alias, data_type, nullable));
        measures.push(expression);
    }
    let aggregates = compiler.aggregates;
    Ok(MatchRecognize {
        partition,
        time_column,
        then_by,
        variables,
        pattern,
        skip,
        within: clause.within,
        conditions,
        measures,
        aggregates,
        input_schema: input,
        output_schema: Arc::new(Schema::new(fields)),
    })
}

struct Compiler<'a> {
    context: &'a SessionContext,
    input: SchemaRef,
    variables: &'a [String],
    time_column: usize,
    aggregates: Vec<Arc<AggregateFunctionExpr>>,
}

impl Compiler<'_> {
    /// `tokens` (solid) planned over the references it makes; `defining`:
    /// the variable whose condition it is, `None` for a measure.
    async fn expression(
        &mut self,
        tokens: &[TokenWithSpan],
        defining: Option<usize>,
        at: Position,
    ) -> Result<Expression, SqlError> {
        let mut references: Vec<Reference> = Vec::new();
        let mut types: Vec<DataType> = Vec::new();
        let mut text: Vec<String> = Vec::new();
        let mut i = 0;
        while i < tokens.len() {
            let token = &tokens[i];
            let here = position(token);
            let called = tokens.get(i + 1).is_some_and(|t| t.token == Token::LParen);
            let (reference, data_type, next) = if called && let Some(name) = navigation_name(token)
            {
                let close = matching_paren(tokens, i + 1)
                    .ok_or_else(|| SqlError::at(format!("unclosed {name}("), here))?;
                let (reference, data_type) =
                    self.navigation(name, &tokens[i + 2..close], defining, here)?;
                (reference, data_type, close + 1)
            } else if called && self.is_aggregate(token) {
                let close = matching_paren(tokens, i + 1)
                    .ok_or_else(|| SqlError::at("unclosed aggregate call", here))?;
                let (reference, data_type) = self.aggregate(&tokens[i..=close], here).await?;
                (reference, data_type, close + 1)
            } else if let Some(v) = self.variable_of(token)
                && tokens.get(i + 1).is_some_and(|t| t.token == Token::Period)
            {
                let column = self.column(tokens.get(i + 2), here)?;
                (
                    Reference::Last {
                        variable: Some(v),
                        column,
                        offset: 0,
                    },
                    self.input.field(column).data_type().clone(),
                    i + 3,
                )
            } else if !called
                && let Token::Word(w) = &token.token
                && let Ok(column) = self.input.index_of(&w.value)
                && !self.variables.contains(&w.value)
            {
                (
                    Reference::Last {
                        variable: None,
                        column,
                        offset: 0,
                    },
                    self.input.field(column).data_type().clone(),
                    i + 1,
                )
            } else {
                if let Some(construct) =
                    ["CLASSIFIER", "MATCH_PROCTIME", "NEXT", "RUNNING", "FINAL"]
                        .into_iter()
                        .find(|c| is_word(token, c))
                {
                    return Err(SqlError::at(
                        format!("{construct} is not supported in MATCH_RECOGNIZE yet"),
                        here,
                    ));
                }
                text.push(render_spaced(std::slice::from_ref(token)));
                i += 1;
                continue;
            };
            let index = match references.iter().position(|r| *r == reference) {
                Some(index) => index,
                None => {
                    references.push(reference);
                    types.push(data_type);
                    references.len() - 1
                }
            };
            text.push(quoted(&format!("__ref_{index}")));
            i = next;
        }
        let fields: Vec<Field> = types
            .iter()
            .enumerate()
            .map(|(i, t)| Field::new(format!("__ref_{i}"), t.clone(), true))
            .collect();
        let schema = Arc::new(Schema::new(fields));
        let df_schema = DFSchema::try_from(schema.as_ref().clone())?;
        let state = self.context.state();
        let sql = text.join(" ");
        let logical = state
            .create_logical_expr(&sql, &df_schema)
            .map_err(|e| SqlError::at(first_line(&e.to_string()), at))?;
        let expr = state
            .create_physical_expr(logical, &df_schema)
            .map_err(|e| SqlError::at(first_line(&e.to_string()), at))?;
        Ok(Expression {
            references,
            schema,
            expr,
        })
    }

    fn variable_of(&self, token: &TokenWithSpan) -> Option<usize> {
        match &token.token {
            Token::Word(w) => self.variables.iter().position(|v| *v == w.value),
            _ => None,
        }
    }

    fn column(&self, token: Option<&TokenWithSpan>, at: Position) -> Result<usize, SqlError> {
        match token.map(|t| &t.token) {
            Some(Token::Word(w)) => self.input.index_of(&w.value).map_err(|_| {
                SqlError::at(
                    format!("Column '{}' not found in MATCH_RECOGNIZE's input", w.value),
                    at,
                )
            }),
            _ => Err(SqlError::at("expected <variable>.<column>", at)),
        }
    }

    /// `[variable .] column` of a navigation call.
    fn target(
        &self,
        tokens: &[TokenWithSpan],
        at: Position,
    ) -> Result<(Option<usize>, usize), SqlError> {
        match tokens {
            [v, dot, _] if dot.token == Token::Period => {
                let v = self.variable_of(v).ok_or_else(|| {
                    SqlError::at(format!("{} is not a variable of the PATTERN", v.token), at)
                })?;
                Ok((Some(v), self.column(tokens.get(2), at)?))
            }
            [_] => Ok((None, self.column(tokens.first(), at)?)),
            _ => Err(SqlError::at(
                "FIRST, LAST and PREV take one column (<variable>.<column>) and an offset; an expression is not supported yet",
                at,
            )),
        }
    }

    fn navigation(
        &self,
        name: &'static str,
        args: &[TokenWithSpan],
        defining: Option<usize>,
        at: Position,
    ) -> Result<(Reference, DataType), SqlError> {
        if name == "MATCH_ROWTIME" {
            if defining.is_some() || !args.is_empty() {
                return Err(SqlError::at(
                    "MATCH_ROWTIME() is supported in MEASURES, without an argument",
                    at,
                ));
            }
            let column = self.time_column;
            return Ok((
                Reference::Last {
                    variable: None,
                    column,
                    offset: 0,
                },
                self.input.field(column).data_type().clone(),
            ));
        }
        let parts = split_commas(args);
        let (target, offset) = match parts.as_slice() {
            [target] => (*target, None),
            [target, [n]] => match &n.token {
                Token::Number(n, _) => (
                    *target,
                    Some(n.parse::<usize>().map_err(|_| {
                        SqlError::at(format!("{name} takes a whole number offset"), at)
                    })?),
                ),
                _ => return Err(SqlError::at(format!("{name} takes a literal offset"), at)),
            },
            _ => {
                return Err(SqlError::at(
                    format!("{name} takes a column and an offset"),
                    at,
                ));
            }
        };
        let (variable, column) = self.target(target, at)?;
        let data_type = self.input.field(column).data_type().clone();
        let reference = match name {
            "FIRST" => Reference::First {
                variable,
                column,
                offset: offset.unwrap_or(0),
            },
            "LAST" => Reference::Last {
                variable,
                column,
                offset: offset.unwrap_or(0),
            },
            _ => {
                let Some(defining) = defining else {
                    return Err(SqlError::at(
                        "Cannot use PREV in MEASURES (as in Flink): use LAST(<variable>.<column>, n)",
                        at,
                    ));
                };
                if variable == Some(defining) {
                    return Err(SqlError::at(
                        "PREV of the variable being defined is a physical offset, which Flink does not support: use PREV(<column>) or LAST",
                        at,
                    ));
                }
                Reference::Last {
                    variable,
                    column,
                    offset: offset.unwrap_or(1),
                }
            }
        };
        Ok((reference, data_type))
    }

    fn is_aggregate(&self, token: &TokenWithSpan) -> bool {
        match &token.token {
            Token::Word(w) if w.quote_style.is_none() => {
                self.context.udaf(&w.value.to_lowercase()).is_ok()
            }
            _ => false,
        }
    }

    /// `agg(args)` over one variable's rows (or all rows).
    async fn aggregate(
        &mut self,
        call: &[TokenWithSpan],
        at: Position,
    ) -> Result<(Reference, DataType), SqlError> {
        let args = &call[2..call.len() - 1];
        if args.first().is_some_and(|t| is_word(t, "DISTINCT")) {
            return Err(SqlError::at(
                "DISTINCT aggregations are not supported in MATCH_RECOGNIZE (as in Flink)",
                at,
            ));
        }
        let mut variable: Option<Option<usize>> = None;
        let mut text = vec![render_spaced(&call[..2])];
        let mut i = 0;
        while i < args.len() {
            let token = &args[i];
            let reads = if let Some(v) = self.variable_of(token)
                && args.get(i + 1).is_some_and(|t| t.token == Token::Period)
            {
                let column = args
                    .get(i + 2)
                    .ok_or_else(|| SqlError::at("expected <variable>.<column>", at))?;
                text.push(render_spaced(std::slice::from_ref(column)));
                i += 3;
                Some(Some(v))
            } else if let Token::Word(w) = &token.token
                && self.input.index_of(&w.value).is_ok()
                && args.get(i + 1).is_none_or(|t| t.token != Token::LParen)
            {
                text.push(render_spaced(std::slice::from_ref(token)));
                i += 1;
                Some(None)
            } else {
                if token.token == Token::Mul && args.len() == 1 {
                    text.push("1".into());
                } else {
                    text.push(render_spaced(std::slice::from_ref(token)));
                }
                i += 1;
                None
            };
            if let Some(reads) = reads {
                match variable {
                    Some(earlier) if earlier != reads => {
                        return Err(SqlError::at(
                            "an aggregation in MATCH_RECOGNIZE must read one pattern variable (as in Flink)",
                            at,
                        ));
                    }
                    _ => variable = Some(reads),
                }
            }
        }
        text.push(")".into());
        let (call_expr, input_df) = self
            .analyzed_aggregate(&text.join(" "))
            .await
            .map_err(|e| SqlError::at(first_line(&e.to_string()), at))?;
        let state = self.context.state();
        let planning = PhysicalPlanningContext::default();
        let lowered = LoweredAggregateBuilder::new(
            &call_expr,
            &input_df,
            self.input.as_ref(),
            state.execution_props(),
            &planning,
        )
        .build()
        .map_err(|e| SqlError::at(first_line(&e.to_string()), at))?;
        let aggregate = lowered.aggregate;
        let data_type = aggregate.field().data_type().clone();
        self.aggregates.push(aggregate);
        Ok((
            Reference::Aggregate {
                variable: variable.flatten(),
                aggregate: self.aggregates.len() - 1,
            },
            data_type,
        ))
    }
}

impl Compiler<'_> {
    /// `call` over the input, planned as DataFusion plans an aggregate in a
    /// query (Flink's aggregate where it differs, arguments coerced), and
    /// the schema its arguments read.
    async fn analyzed_aggregate(
        &self,
        call: &str,
    ) -> datafusion::error::Result<(datafusion::logical_expr::Expr, DFSchema)> {
        const INPUT: &str = "__runnel_match_input";
        let table = datafusion::datasource::MemTable::try_new(self.input.clone(), vec![vec![]])?;
        self.context.register_table(INPUT, Arc::new(table))?;
        let planned = self
            .context
            .sql(&format!("SELECT {call} FROM {}", quoted(INPUT)))
            .await
            .and_then(|frame| {
                let state = self.context.state();
                state.analyzer().execute_and_check(
                    frame.into_unoptimized_plan(),
                    state.config_options(),
                    |_, _| {},
                )
            });
        self.context.deregister_table(INPUT)?;
        let mut found = None;
        planned?.apply(|node| {
            if let datafusion::logical_expr::LogicalPlan::Aggregate(aggregate) = node {
                found = aggregate.aggr_expr.first().map(|e| {
                    (
                        e.clone().unalias(),
                        aggregate.input.schema().as_ref().clone(),
                    )
                });
                return Ok(datafusion::common::tree_node::TreeNodeRecursion::Stop);
            }
            Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
        })?;
        found.ok_or_else(|| {
            datafusion::error::DataFusionError::Plan(format!("{call} is not an aggregate"))
        })
    }
}

fn navigation_name(token: &TokenWithSpan) -> Option<&'static str> {
    ["FIRST", "LAST", "PREV", "MATCH_ROWTIME"]
        .into_iter()
        .find(|n| is_word(token, n))
}

fn first_line(message: &str) -> String {
    message.lines().next().unwrap_or_default().to_string()
}

impl super::Planner<'_> {
    /// The input relation of a clause, planned by DataFusion.
    pub(super) async fn match_input(
        &self,
        call: &MatchCall,
    ) -> Result<datafusion::logical_expr::LogicalPlan, SqlError> {
        let frame = self
            .context
            .sql(&format!("SELECT * FROM {}", call.input))
            .await?;
        Ok(frame.into_optimized_plan()?)
    }

    /// A scan of a clause's placeholder: its input, matched.
    pub(super) async fn match_scan(
        &self,
        placeholder: &str,
        projection: Option<Vec<usize>>,
    ) -> Result<super::Planned, SqlError> {
        let call = self
            .catalog
            .match_call(self.matches, placeholder)
            .cloned()
            .ok_or_else(|| SqlError::Plan(format!("unknown MATCH_RECOGNIZE {placeholder}")))?;
        let plan = self.match_input(&call).await?;
        let input = Box::pin(self.translate(&plan)).await?;
        let input = self.settled(self.materialize(input)?)?;
        if is_changelog(&input.schema) {
            return Err(SqlError::at(
                "MATCH_RECOGNIZE can only be applied to an append-only input (as in Flink), not to an updating one",
                call.position,
            ));
        }
        let spec = compile(
            self.context,
            &call.clause,
            input.schema.clone(),
            call.position,
        )
        .await?;
        let time_name = input.schema.field(spec.time_column).name().clone();
        if !self.is_time_attribute(&time_name) {
            return Err(SqlError::at(
                format!(
                    "MATCH_RECOGNIZE must be ORDER BY a time attribute (a column with a WATERMARK, or PROCTIME()), as in Flink; '{time_name}' is not one"
                ),
                call.position,
            ));
        }
        let describe = format!(
            "PATTERN ({}){} per [{}] by {}, {}",
            call.clause
                .pattern
                .iter()
                .map(describe_term)
                .collect::<Vec<_>>()
                .join(" "),
            spec.within
                .map(|w| format!(" WITHIN {w} ms"))
                .unwrap_or_default(),
            call.clause.partition.join(", "),
            time_name,
            match &call.clause.skip {
                SkipTo::PastLastRow => "SKIP PAST LAST ROW".to_string(),
                SkipTo::NextRow => "SKIP TO NEXT ROW".to_string(),
                SkipTo::First(v) => format!("SKIP TO FIRST {v}"),
                SkipTo::Last(v) => format!("SKIP TO LAST {v}"),
            }
        );
        let schema = spec.output_schema.clone();
        let node = super::Node::MatchRecognize {
            input: Box::new(input.node),
            spec: Arc::new(spec),
            describe,
        };
        Ok(super::project(node, schema, projection))
    }
}

fn describe_term(term: &crate::front::match_recognize::PatternTerm) -> String {
    let quantifier = match (term.min, term.max) {
        (1, Some(1)) => String::new(),
        (0, None) => "*".into(),
        (1, None) => "+".into(),
        (0, Some(1)) => "?".into(),
        (n, Some(m)) if n == m => format!("{{{n}}}"),
        (n, None) => format!("{{{n},}}"),
        (n, Some(m)) => format!("{{{n},{m}}}"),
    };
    let reluctant = match !term.greedy && term.max != Some(term.min) {
        true => "?",
        false => "",
    };
    format!("{}{quantifier}{reluctant}", term.variable)
}
