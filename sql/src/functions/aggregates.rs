//! Flink's aggregates where DataFusion's differ: `AVG` of an integer
//! column is an integer (the sum divided by the count, cut toward zero, as
//! Java divides), in the column's type.

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
            _ => plan_err!("this AVG takes an integer column, not {args:?}"),
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
        Ok(Box::new(IntegerAvgAccumulator {
            sum: 0,
            count: 0,
            returns: args.return_field.data_type().clone(),
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
    sum: i128,
    count: i64,
    returns: DataType,
}

impl IntegerAvgAccumulator {
    fn add(&mut self, values: &ArrayRef, sign: i64) -> Result<()> {
        let values = cast(values, &DataType::Int64)?;
        let values = values.as_primitive::<Int64Type>();
        for v in values.iter().flatten() {
            self.sum += i128::from(v) * i128::from(sign);
            self.count += sign;
        }
        Ok(())
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
