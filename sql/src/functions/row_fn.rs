//! A scalar function written for one row of values, run over a batch.
//! Most of Flink's functions are cheap next to reading a row; this keeps
//! each of them to its semantics, and makes the few that are hot worth
//! their own vectorized kernel.

use datafusion::arrow::array::Array;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

pub type Eval = fn(&[ScalarValue], &DataType) -> Result<ScalarValue>;
pub type Returns = fn(&[DataType]) -> Result<DataType>;

/// Names are unique among Runnel's functions: they are its identity.
#[derive(Debug)]
pub struct RowFn {
    name: &'static str,
    signature: Signature,
    returns: Returns,
    eval: Eval,
}

/// Equal and hashed by name: names are unique among Runnel's functions.
macro_rules! named_identity {
    ($function:ty) => {
        impl PartialEq for $function {
            fn eq(&self, other: &Self) -> bool {
                self.name == other.name
            }
        }

        impl Eq for $function {}

        impl std::hash::Hash for $function {
            fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
                self.name.hash(state);
            }
        }
    };
}

named_identity!(RowFn);

impl RowFn {
    pub fn udf(
        name: &'static str,
        signature: Signature,
        returns: Returns,
        eval: Eval,
    ) -> ScalarUDF {
        ScalarUDF::from(RowFn {
            name,
            signature,
            returns,
            eval,
        })
    }
}

/// A scalar function written over whole columns (`invoke` gets the batch's
/// arguments), for the hot ones whose per-row `ScalarValue`s cost more
/// than their work.
#[derive(Debug)]
pub struct ColumnFn {
    name: &'static str,
    signature: Signature,
    returns: Returns,
    invoke: fn(ScalarFunctionArgs) -> Result<ColumnarValue>,
}

named_identity!(ColumnFn);

impl ColumnFn {
    pub fn udf(
        name: &'static str,
        signature: Signature,
        returns: Returns,
        invoke: fn(ScalarFunctionArgs) -> Result<ColumnarValue>,
    ) -> ScalarUDF {
        ScalarUDF::from(ColumnFn {
            name,
            signature,
            returns,
            invoke,
        })
    }
}

impl ScalarUDFImpl for ColumnFn {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        (self.returns)(args)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        (self.invoke)(args)
    }
}

/// Arguments as DataFusion coerces them to one of `forms`.
pub fn exact(forms: Vec<Vec<DataType>>) -> Signature {
    use datafusion::logical_expr::TypeSignature;
    Signature::one_of(
        forms.into_iter().map(TypeSignature::Exact).collect(),
        Volatility::Immutable,
    )
}

impl ScalarUDFImpl for RowFn {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        (self.returns)(args)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let returns = args.return_field.data_type().clone();
        if args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)))
        {
            let values: Vec<ScalarValue> = args
                .args
                .iter()
                .map(|a| match a {
                    ColumnarValue::Scalar(v) => v.clone(),
                    ColumnarValue::Array(_) => ScalarValue::Null,
                })
                .collect();
            return Ok(ColumnarValue::Scalar(typed(
                (self.eval)(&values, &returns)?,
                &returns,
            )?));
        }
        let rows = args.number_rows;
        let arrays = args
            .args
            .iter()
            .map(|a| a.to_array(rows))
            .collect::<Result<Vec<_>>>()?;
        let mut row = Vec::with_capacity(arrays.len());
        let mut out = Vec::with_capacity(rows);
        for index in 0..rows {
            row.clear();
            for array in &arrays {
                row.push(ScalarValue::try_from_array(array.as_ref(), index)?);
            }
            out.push(typed((self.eval)(&row, &returns)?, &returns)?);
        }
        let array = ScalarValue::iter_to_array(out)?;
        debug_assert_eq!(array.len(), rows);
        Ok(ColumnarValue::Array(array))
    }
}

/// A NULL without a type becomes a NULL of the declared type.
fn typed(value: ScalarValue, returns: &DataType) -> Result<ScalarValue> {
    if value.is_null() && value.data_type() != *returns {
        ScalarValue::try_from(returns)
    } else {
        Ok(value)
    }
}

/// The value as a string, for functions taking any string type.
pub fn text(value: &ScalarValue) -> Option<&str> {
    match value {
        ScalarValue::Utf8(v) | ScalarValue::LargeUtf8(v) | ScalarValue::Utf8View(v) => v.as_deref(),
        _ => None,
    }
}

/// The value as an i64, for functions taking any integer type.
pub fn integer(value: &ScalarValue) -> Option<i64> {
    match value {
        ScalarValue::Int8(v) => v.map(i64::from),
        ScalarValue::Int16(v) => v.map(i64::from),
        ScalarValue::Int32(v) => v.map(i64::from),
        ScalarValue::Int64(v) => *v,
        ScalarValue::UInt8(v) => v.map(i64::from),
        ScalarValue::UInt16(v) => v.map(i64::from),
        ScalarValue::UInt32(v) => v.map(i64::from),
        ScalarValue::UInt64(v) => v.and_then(|v| i64::try_from(v).ok()),
        _ => None,
    }
}

/// The value as an f64, for functions taking any number.
pub fn double(value: &ScalarValue) -> Option<f64> {
    match value {
        ScalarValue::Float64(v) => *v,
        ScalarValue::Float32(v) => v.map(f64::from),
        ScalarValue::Decimal128(v, _, scale) => v.map(|v| v as f64 / 10f64.powi(i32::from(*scale))),
        other => integer(other).map(|v| v as f64),
    }
}

pub fn string(value: Option<String>) -> ScalarValue {
    ScalarValue::Utf8(value)
}
