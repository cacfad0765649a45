//! Flink functions DataFusion does not have.

use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// `PROCTIME()`: the wall clock when the row is processed. Volatile, so
/// DataFusion evaluates it per batch instead of folding it at planning.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ProcTime {
    signature: Signature,
    aliases: Vec<String>,
}

impl ProcTime {
    pub fn udf() -> ScalarUDF {
        ScalarUDF::from(ProcTime {
            signature: Signature::exact(vec![], Volatility::Volatile),
            // Identifiers keep their case, as in Flink; accept both spellings.
            aliases: vec!["PROCTIME".to_string()],
        })
    }
}

impl ScalarUDFImpl for ProcTime {
    fn name(&self) -> &str {
        "proctime"
    }

    fn aliases(&self) -> &[String] {
        &self.aliases
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Timestamp(TimeUnit::Millisecond, None))
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        Ok(ColumnarValue::Scalar(ScalarValue::TimestampMillisecond(
            Some(runnel_engine::time::wall_clock_millis()),
            None,
        )))
    }
}

/// Whether a computed column's SQL is `PROCTIME()`.
pub fn is_proctime(sql: &str) -> bool {
    let compact: String = sql.chars().filter(|c| !c.is_whitespace()).collect();
    compact.eq_ignore_ascii_case("PROCTIME()")
}
