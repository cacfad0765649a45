//! `CAST(x AS TINYINT|SMALLINT|INT|BIGINT)` (and TRY_CAST, which such a
//! cast never fails) from a wider integer, a DECIMAL (its integral part)
//! or a floating-point number, as Flink's generated Java casts: an integer
//! keeps its low bits (300 -> 44), a DOUBLE goes to INT saturating (NaN is
//! 0) and then, for TINYINT and SMALLINT, keeps the low bits of that.
//! Arrow's cast fails on such values instead, which would fail the job.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Int8Array, Int16Array, Int32Array, Int64Array,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type};
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

#[derive(Debug, PartialEq, Eq, Hash)]
struct Narrowing {
    name: &'static str,
    target: DataType,
    signature: Signature,
}

/// The cast to `target` of a value of type `from`, if Flink's differs
/// from Arrow's.
pub fn narrowing(from: &DataType, target: &DataType) -> Option<ScalarUDF> {
    let name = match target {
        DataType::Int8 => "flink_cast_tinyint",
        DataType::Int16 => "flink_cast_smallint",
        DataType::Int32 => "flink_cast_int",
        DataType::Int64 => "flink_cast_bigint",
        _ => return None,
    };
    let wider_integer = from.is_integer() && width(from) > width(target);
    let floating = matches!(from, DataType::Float32 | DataType::Float64);
    let decimal = matches!(from, DataType::Decimal128(_, _));
    (wider_integer || floating || decimal).then(|| {
        ScalarUDF::from(Narrowing {
            name,
            target: target.clone(),
            signature: Signature::any(1, Volatility::Immutable),
        })
    })
}

fn width(data_type: &DataType) -> u32 {
    match data_type {
        DataType::Int8 | DataType::UInt8 => 8,
        DataType::Int16 | DataType::UInt16 => 16,
        DataType::Int32 | DataType::UInt32 => 32,
        _ => 64,
    }
}

impl ScalarUDFImpl for Narrowing {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(self.target.clone())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let Some(value) = args.args.first() else {
            return exec_err!("{} takes one value", self.name);
        };
        let rows = match value {
            ColumnarValue::Scalar(_) => 1,
            ColumnarValue::Array(_) => args.number_rows,
        };
        let input = value.to_array(rows)?;
        let as_int: Vec<Option<i64>> = match input.data_type() {
            DataType::Float32 | DataType::Float64 => {
                let doubles = cast(&input, &DataType::Float64)?;
                let doubles = doubles.as_primitive::<Float64Type>();
                doubles
                    .iter()
                    .map(|d| {
                        d.map(|d| match self.target {
                            // Java's (long) d saturates, NaN to 0: so does `as`.
                            DataType::Int64 => d as i64,
                            _ => i64::from(d as i32),
                        })
                    })
                    .collect()
            }
            DataType::Decimal128(_, scale) => {
                // Flink takes the decimal's long value (the fraction cut
                // off, the low bits kept), then narrows that.
                let divisor = 10i128
                    .checked_pow(u32::from(scale.unsigned_abs()))
                    .unwrap_or(1);
                let scale = *scale;
                let values = input.as_primitive::<datafusion::arrow::datatypes::Decimal128Type>();
                values
                    .iter()
                    .map(|v| {
                        v.map(|v| match scale {
                            s if s >= 0 => (v / divisor) as i64,
                            _ => v.wrapping_mul(divisor) as i64,
                        })
                    })
                    .collect()
            }
            DataType::UInt64 => {
                let values = input.as_primitive::<datafusion::arrow::datatypes::UInt64Type>();
                values.iter().map(|v| v.map(|v| v as i64)).collect()
            }
            _ => {
                let wide = cast(&input, &DataType::Int64)?;
                wide.as_primitive::<Int64Type>().iter().collect()
            }
        };
        // `as` between integers keeps the low bits, as Java's narrowing does.
        let out: ArrayRef = match self.target {
            DataType::Int8 => Arc::new(Int8Array::from_iter(
                as_int.iter().map(|v| v.map(|v| v as i8)),
            )),
            DataType::Int16 => Arc::new(Int16Array::from_iter(
                as_int.iter().map(|v| v.map(|v| v as i16)),
            )),
            DataType::Int32 => Arc::new(Int32Array::from_iter(
                as_int.iter().map(|v| v.map(|v| v as i32)),
            )),
            _ => Arc::new(Int64Array::from(as_int)),
        };
        Ok(match value {
            ColumnarValue::Scalar(_) => {
                ColumnarValue::Scalar(datafusion::common::ScalarValue::try_from_array(&out, 0)?)
            }
            ColumnarValue::Array(_) => ColumnarValue::Array(out),
        })
    }
}
