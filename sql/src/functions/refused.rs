//! `flink_refused('why')`: what the front end writes for a form it reads
//! but Runnel cannot answer as Flink does, so that planning refuses the
//! query with that sentence instead of a parser's complaint.

use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::common::{Result, ScalarValue, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};

pub const NAME: &str = "flink_refused";

#[derive(Debug, PartialEq, Eq, Hash)]
struct Refused {
    signature: Signature,
}

impl ScalarUDFImpl for Refused {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        plan_err!("not supported")
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs<'_>) -> Result<FieldRef> {
        match args.scalar_arguments.first() {
            Some(Some(ScalarValue::Utf8(Some(why)))) => plan_err!("{why}"),
            _ => plan_err!("not supported"),
        }
    }

    fn invoke_with_args(&self, _: ScalarFunctionArgs) -> Result<ColumnarValue> {
        plan_err!("not supported")
    }
}

pub fn udf() -> ScalarUDF {
    ScalarUDF::from(Refused {
        signature: Signature::any(1, Volatility::Immutable),
    })
}
