//! Flink's aggregates where DataFusion's differ: `AVG` of an integer
//! column is an integer (the sum divided by the count, cut toward zero, as
//! Java divides), in the column's type; `AVG` of a DECIMAL(p, s) is a
//! DECIMAL(38, max(6, s)), the quotient rounded half up (Flink's
//! `findAvgAggType` and BigDecimal division), where DataFusion's has scale
//! s + 4.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Decimal128Type, Field, FieldRef, Int64Type};
use datafusion::common::{Result, ScalarValue, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility,
};

#[derive(Debug, PartialEq, Eq, Hash)]
struct IntegerAvg {
    signature: Signature,
}

pub fn integer_avg() -> AggregateUDF {
    AggregateUDF::from(IntegerAvg {
        signature: Signature::any(1, Volatility::Immutable),
    })
}

impl AggregateUDFImpl for IntegerAvg {
    fn name(&self) -> &str {
        "avg"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        match args {
            [t] if t.is_integer() => Ok(t.clone()),
            [DataType::Decimal128(_, scale)] => Ok(DataType::Decimal128(38, (*scale).max(6))),
            _ => plan_err!("this AVG takes an integer or DECIMAL column, not {args:?}"),
        }
    }

    fn state_fields(&self, args: StateFieldsArgs<'_>) -> Result<Vec<FieldRef>> {
        Ok(vec![
            Arc::new(Field::new(
                format!("{}[sum]", args.name),
                DataType::Decimal128(38, 0),
                true,
            )),
            Arc::new(Field::new(
                format!("{}[count]", args.name),
                DataType::Int64,
                true,
            )),
        ])
    }

    fn accumulator(&self, args: AccumulatorArgs<'_>) -> Result<Box<dyn Accumulator>> {
        let input_scale = match args
            .exprs
            .first()
            .map(|e| e.data_type(args.schema))
            .transpose()?
        {
            Some(DataType::Decimal128(_, scale)) => Some(scale),
            _ => None,
        };
        Ok(Box::new(IntegerAvgAccumulator {
            sum: 0,
            count: 0,
            returns: args.return_field.data_type().clone(),
            input_scale,
        }))
    }

    fn create_sliding_accumulator(
        &self,
        args: AccumulatorArgs<'_>,
    ) -> Result<Box<dyn Accumulator>> {
        self.accumulator(args)
    }
}

#[derive(Debug)]
struct IntegerAvgAccumulator {
    /// Of the unscaled values, for a DECIMAL input.
    sum: i128,
    count: i64,
    returns: DataType,
    /// The DECIMAL input's scale; `None` for an integer input.
    input_scale: Option<i8>,
}

impl IntegerAvgAccumulator {
    fn add(&mut self, values: &ArrayRef, sign: i64) -> Result<()> {
        if self.input_scale.is_some() {
            let values = values.as_primitive::<Decimal128Type>();
            for v in values.iter().flatten() {
                self.sum += v * i128::from(sign);
                self.count += sign;
            }
            return Ok(());
        }
        let values = cast(values, &DataType::Int64)?;
        let values = values.as_primitive::<Int64Type>();
        for v in values.iter().flatten() {
            self.sum += i128::from(v) * i128::from(sign);
            self.count += sign;
        }
        Ok(())
    }

    /// The sum over the count at the result's scale, rounded half up
    /// (away from zero); NULL past 38 digits, as Flink's DECIMAL(38) is.
    fn decimal_average(&self, input_scale: i8, precision: u8, scale: i8) -> ScalarValue {
        let count = i128::from(self.count);
        let shift = 10i128.pow(u32::from(scale.abs_diff(input_scale)));
        let (whole, rest) = (self.sum / count, self.sum % count);
        let fraction = rest * shift;
        let (mut part, left) = (fraction / count, fraction % count);
        if left.abs() * 2 >= count.abs() {
            part += fraction.signum();
        }
        let average = whole
            .checked_mul(shift)
            .and_then(|w| w.checked_add(part))
            .filter(|a| a.unsigned_abs() < 10u128.pow(u32::from(precision)));
        ScalarValue::Decimal128(average, precision, scale)
    }
}

impl Accumulator for IntegerAvgAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.add(&values[0], 1)
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.add(&values[0], -1)
    }

    fn supports_retract_batch(&self) -> bool {
        true
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let sums = states[0].as_primitive::<Decimal128Type>();
        let counts = states[1].as_primitive::<Int64Type>();
        for row in 0..sums.len() {
            if sums.is_valid(row) && counts.is_valid(row) {
                self.sum += sums.value(row);
                self.count += counts.value(row);
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![
            ScalarValue::Decimal128(Some(self.sum), 38, 0),
            ScalarValue::Int64(Some(self.count)),
        ])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        if self.count == 0 {
            return ScalarValue::try_from(&self.returns);
        }
        if let (Some(input_scale), DataType::Decimal128(precision, scale)) =
            (self.input_scale, &self.returns)
        {
            return Ok(self.decimal_average(input_scale, *precision, *scale));
        }
        // Rust's integer division cuts toward zero, as Java's does.
        let average = self.sum / i128::from(self.count);
        let average =
            i64::try_from(average).unwrap_or(if average < 0 { i64::MIN } else { i64::MAX });
        ScalarValue::Int64(Some(average)).cast_to(&self.returns)
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
    }
}
