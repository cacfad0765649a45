//! `flink_named_cast(CAST(x AS T), 'T')`: the cast's value as it is. A
//! CAST leaves no mark on DataFusion's name for an expression
//! (`SUM(CAST(x AS BIGINT))` is named `sum(t.x)`, as `SUM(x)` is), so two
//! aggregates that differ only by a CAST would give their aggregation two
//! columns of one name, which DataFusion refuses; `front/expression_names`
//! wraps such casts in this, whose name carries the type, when planning
//! failed for that.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

pub const NAME: &str = "flink_named_cast";

#[derive(Debug, PartialEq, Eq, Hash)]
struct NamedCast {
    signature: Signature,
}

pub fn udf() -> ScalarUDF {
    ScalarUDF::from(NamedCast {
        signature: Signature::any(2, Volatility::Immutable),
    })
}

impl ScalarUDFImpl for NamedCast {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        match args.first() {
            Some(t) => Ok(t.clone()),
            None => exec_err!("{NAME} takes a value and its type's name"),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        match args.args.into_iter().next() {
            Some(value) => Ok(value),
            None => exec_err!("{NAME} takes a value and its type's name"),
        }
    }
}
