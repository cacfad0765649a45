//! Which nested fields a statement reads, so that a source may leave the
//! others unread (a Nexmark bid query never needs the person and auction
//! rows' strings, and most never read `bid.extra`).
//!
//! A struct column counts as read whole when an expression names it other
//! than as `column.field`, or when it is in the output of any plan node
//! that could pass it on without an expression (a join, an aggregate, the
//! root): only scans, filters, aliases and projections are looked through.

use std::collections::{HashMap, HashSet};

use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::common::ScalarValue;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::logical_expr::{Expr, LogicalPlan};
use runnel_engine::connector::UnusedFields;

#[derive(Clone)]
pub(crate) struct FieldUse {
    /// By column name: the fields read, or `None` for the whole column.
    read: HashMap<String, Option<HashSet<String>>>,
    /// Set when nothing may be left unread: before a statement was
    /// counted, or when a subquery hides expressions from the count.
    everything: bool,
}

impl Default for FieldUse {
    fn default() -> Self {
        FieldUse {
            read: HashMap::new(),
            everything: true,
        }
    }
}

impl FieldUse {
    /// An empty count, to note a statement's reads into.
    pub(crate) fn counting() -> Self {
        FieldUse {
            read: HashMap::new(),
            everything: false,
        }
    }

    /// Notes what one plan node reads (not its inputs).
    pub(crate) fn note_node(&mut self, node: &LogicalPlan, is_root: bool) {
        let looked_through = matches!(
            node,
            LogicalPlan::TableScan(_)
                | LogicalPlan::Filter(_)
                | LogicalPlan::SubqueryAlias(_)
                | LogicalPlan::Projection(_)
        );
        if is_root || !looked_through {
            for field in node.schema().fields() {
                if matches!(field.data_type(), DataType::Struct(_)) {
                    self.read_whole(field.name());
                }
            }
        }
        for expr in node.expressions() {
            self.note_expr(&expr);
        }
    }

    pub(crate) fn note_expr(&mut self, expr: &Expr) {
        let _ = expr.apply(|e| {
            match e {
                Expr::ScalarFunction(call) if call.func.name() == "get_field" => {
                    if let [Expr::Column(column), Expr::Literal(name, _)] = call.args.as_slice()
                        && let Some(name) = field_name(name)
                    {
                        self.read_field(&column.name, name);
                        return Ok(TreeNodeRecursion::Jump);
                    }
                }
                Expr::Column(column) => self.read_whole(&column.name),
                Expr::Exists(_) | Expr::InSubquery(_) | Expr::ScalarSubquery(_) => {
                    self.everything = true;
                }
                _ => {}
            }
            Ok(TreeNodeRecursion::Continue)
        });
    }

    /// Gives up on leaving anything unread.
    pub(crate) fn read_everything(&mut self) {
        self.everything = true;
    }

    fn read_whole(&mut self, column: &str) {
        self.read.insert(column.to_string(), None);
    }

    fn read_field(&mut self, column: &str, field: &str) {
        if let Some(fields) = self
            .read
            .entry(column.to_string())
            .or_insert_with(|| Some(HashSet::new()))
        {
            fields.insert(field.to_string());
        }
    }

    /// The nested fields of `schema`'s struct columns that nothing reads.
    pub(crate) fn unused(&self, schema: &Schema) -> UnusedFields {
        if self.everything {
            return Vec::new();
        }
        let mut unused = Vec::new();
        for (index, field) in schema.fields().iter().enumerate() {
            let DataType::Struct(children) = field.data_type() else {
                continue;
            };
            let children: Vec<usize> = match self.read.get(field.name()) {
                Some(None) => continue,
                Some(Some(read)) => children
                    .iter()
                    .enumerate()
                    .filter(|(_, child)| !read.contains(child.name()))
                    .map(|(i, _)| i)
                    .collect(),
                None => (0..children.len()).collect(),
            };
            if !children.is_empty() {
                unused.push((index, children));
            }
        }
        unused
    }
}

fn field_name(literal: &ScalarValue) -> Option<&str> {
    match literal {
        ScalarValue::Utf8(Some(name))
        | ScalarValue::LargeUtf8(Some(name))
        | ScalarValue::Utf8View(Some(name)) => Some(name),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::datatypes::{Field, Fields};
    use datafusion::datasource::MemTable;
    use datafusion::prelude::SessionContext;

    use super::*;

    fn schema() -> Arc<Schema> {
        let bid = Fields::from(vec![
            Field::new("price", DataType::Int64, true),
            Field::new("extra", DataType::Utf8, true),
        ]);
        let person = Fields::from(vec![Field::new("name", DataType::Utf8, true)]);
        Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, true),
            Field::new("bid", DataType::Struct(bid), true),
            Field::new("person", DataType::Struct(person), true),
        ]))
    }

    fn note(plan: &LogicalPlan, is_root: bool, fields: &mut FieldUse) {
        fields.note_node(plan, is_root);
        for input in plan.inputs() {
            note(input, false, fields);
        }
    }

    async fn unused(sql: &str) -> UnusedFields {
        let context = SessionContext::new();
        let table = MemTable::try_new(schema(), vec![vec![]]).expect("empty table");
        context
            .register_table("t", Arc::new(table))
            .expect("registered");
        let plan = context
            .sql(sql)
            .await
            .expect("plans")
            .into_optimized_plan()
            .expect("optimizes");
        let mut fields = FieldUse::counting();
        note(&plan, true, &mut fields);
        fields.unused(&schema())
    }

    #[tokio::test]
    async fn fields_no_expression_reads_are_unused() {
        assert_eq!(
            unused("SELECT bid.price FROM t WHERE k > 1").await,
            vec![(1, vec![1]), (2, vec![0])]
        );
        assert_eq!(
            unused("SELECT person.name, bid.extra FROM t").await,
            vec![(1, vec![0])]
        );
    }

    #[tokio::test]
    async fn a_whole_column_passed_on_is_read() {
        assert_eq!(unused("SELECT * FROM t").await, vec![]);
        assert_eq!(unused("SELECT bid FROM t").await, vec![(2, vec![0])]);
        // The join's output carries both tables' columns without naming them.
        assert_eq!(
            unused("SELECT * FROM t a JOIN t b ON a.k = b.k").await,
            vec![]
        );
    }

    #[tokio::test]
    async fn nothing_is_left_unread_before_a_count() {
        assert_eq!(FieldUse::default().unused(&schema()), vec![]);
    }
}
