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

/// `DATE_FORMAT(ts, pattern)` (DataFusion's `to_char`, chrono patterns)
/// with the pattern parsed once per batch: DataFusion's re-parses it for
/// every row, which was a tenth of Nexmark q15's CPU. Naive millisecond
/// timestamps with a constant pattern take that path; anything else, and
/// a pattern chrono cannot parse, is DataFusion's own `to_char`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct DateFormat {
    signature: Signature,
    aliases: Vec<String>,
}

impl DateFormat {
    pub fn udf() -> ScalarUDF {
        ScalarUDF::from(DateFormat {
            signature: datafusion::functions::datetime::to_char()
                .signature()
                .clone(),
            aliases: vec!["DATE_FORMAT".to_string()],
        })
    }
}

impl ScalarUDFImpl for DateFormat {
    fn name(&self) -> &str {
        "date_format"
    }

    fn aliases(&self) -> &[String] {
        &self.aliases
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        use chrono::format::StrftimeItems;
        use datafusion::arrow::array::{Array, AsArray, StringBuilder};
        use datafusion::arrow::datatypes::TimestampMillisecondType;
        use std::fmt::Write;
        let pattern = match args.args.get(1) {
            Some(ColumnarValue::Scalar(
                ScalarValue::Utf8(Some(p)) | ScalarValue::Utf8View(Some(p)),
            )) => Some(p.clone()),
            _ => None,
        };
        let items = pattern.and_then(|p| StrftimeItems::new(&p).parse_to_owned().ok());
        let (values, items) = match (args.args.first(), items) {
            (Some(ColumnarValue::Array(values)), Some(items))
                if values.data_type() == &DataType::Timestamp(TimeUnit::Millisecond, None) =>
            {
                (values.clone(), items)
            }
            _ => return datafusion::functions::datetime::to_char().invoke_with_args(args),
        };
        let millis = values.as_primitive::<TimestampMillisecondType>();
        let mut out = StringBuilder::with_capacity(millis.len(), millis.len() * 10);
        for value in millis.iter() {
            let Some(time) = value.and_then(chrono::DateTime::from_timestamp_millis) else {
                out.append_null();
                continue;
            };
            if write!(out, "{}", time.naive_utc().format_with_items(items.iter())).is_err() {
                // A pattern chrono parsed but cannot apply to this value.
                return datafusion::functions::datetime::to_char().invoke_with_args(args);
            }
            out.append_value("");
        }
        Ok(ColumnarValue::Array(std::sync::Arc::new(out.finish())))
    }
}
