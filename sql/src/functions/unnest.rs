//! `__runnel_unnest(collection, part, outer)`: where `CROSS JOIN UNNEST`
//! puts its columns (`front/unnest.rs` writes the calls). It only types
//! them: the planner (`plan/unnest.rs`) turns a projection holding these
//! calls into rows, one per element. Volatile, so that no optimizer rule
//! moves or folds it away from its projection.

use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};
use std::sync::Arc;

pub const UNNEST: &str = "__runnel_unnest";

/// Which column of the unnested rows a call gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Part {
    /// An array's element, or a map entry's key.
    Element,
    /// A map entry's value.
    Value,
    /// `WITH ORDINALITY`: the element's position, from 1.
    Ordinality,
}

impl Part {
    pub fn code(self) -> i64 {
        match self {
            Part::Element => 0,
            Part::Value => 1,
            Part::Ordinality => 2,
        }
    }

    pub fn from_code(code: i64) -> Option<Part> {
        match code {
            0 => Some(Part::Element),
            1 => Some(Part::Value),
            2 => Some(Part::Ordinality),
            _ => None,
        }
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Unnest {
    signature: Signature,
}

pub fn udf() -> ScalarUDF {
    ScalarUDF::from(Unnest {
        signature: Signature::any(3, Volatility::Volatile),
    })
}

/// The type of `part` of `collection`'s rows.
pub fn part_type(collection: &DataType, part: Part) -> Result<DataType> {
    match (collection, part) {
        (_, Part::Ordinality) => Ok(DataType::Int32),
        (
            DataType::List(item) | DataType::LargeList(item) | DataType::FixedSizeList(item, _),
            Part::Element,
        ) => Ok(item.data_type().clone()),
        (DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(_, _), _) => {
            plan_err!("UNNEST of an ARRAY gives one column (then its position WITH ORDINALITY)")
        }
        (DataType::Map(entries, _), part) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => {
                Ok(kv[usize::from(part == Part::Value)].data_type().clone())
            }
            other => plan_err!("UNNEST of a map of {other}"),
        },
        (other, _) => plan_err!("UNNEST takes an ARRAY or a MAP, not {other}"),
    }
}

impl ScalarUDFImpl for Unnest {
    fn name(&self) -> &str {
        UNNEST
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        plan_err!("UNNEST is typed by its arguments")
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs<'_>) -> Result<FieldRef> {
        let part = match args.scalar_arguments.get(1) {
            Some(Some(ScalarValue::Int64(Some(code)))) => Part::from_code(*code),
            _ => None,
        };
        let (Some(collection), Some(part)) = (args.arg_fields.first(), part) else {
            return plan_err!("UNNEST's placeholder takes a collection and a part");
        };
        let data_type = part_type(collection.data_type(), part)?;
        Ok(Arc::new(Field::new(UNNEST, data_type, true)))
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        exec_err!("UNNEST runs as its own operator, not as a function")
    }
}
