//! `VAR_POP`, `VAR_SAMP`, `STDDEV_POP` and `STDDEV_SAMP` of an integer
//! column, as Flink answers them: an integer of the column's own type. Its
//! planner reduces each to sums of the values and of their squares,
//! computed as DOUBLEs (`(Σx² - (Σx)²/n) / n`, or `/ (n - 1)`, NULL for
//! one row; the square root for STDDEV), and casts the DOUBLE back as Java
//! does: toward zero, saturating at INT and BIGINT, and a TINYINT or
//! SMALLINT through an `int`, wrapping (Flink 2.3 answers `VAR_POP` of
//! TINYINTs whose variance is 782.25 with 14). The sums retract, so it
//! runs over updating input and in OVER frames.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Float64Type, Int64Type};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    VarPop,
    VarSamp,
    StddevPop,
    StddevSamp,
}

impl Kind {
    /// The kind of DataFusion's aggregate named `name`, if it is one.
    pub fn of(name: &str) -> Option<Kind> {
        Some(match name {
            "var_pop" => Kind::VarPop,
            "var" | "var_samp" => Kind::VarSamp,
            "stddev_pop" => Kind::StddevPop,
            "stddev" | "stddev_samp" => Kind::StddevSamp,
            _ => return None,
        })
    }

    /// Flink's name for it.
    pub fn sql_name(self) -> &'static str {
        match self {
            Kind::VarPop => "VAR_POP",
            Kind::VarSamp => "VAR_SAMP",
            Kind::StddevPop => "STDDEV_POP",
            Kind::StddevSamp => "STDDEV_SAMP",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::VarPop => "flink_integer_var_pop",
            Kind::VarSamp => "flink_integer_var_samp",
            Kind::StddevPop => "flink_integer_stddev_pop",
            Kind::StddevSamp => "flink_integer_stddev_samp",
        }
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct IntegerVariance {
    kind: Kind,
    signature: Signature,
}

pub fn udaf(kind: Kind) -> AggregateUDF {
    AggregateUDF::from(IntegerVariance {
        kind,
        signature: Signature::any(1, Volatility::Immutable),
    })
}

impl AggregateUDFImpl for IntegerVariance {
    fn name(&self) -> &str {
        self.kind.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        match args {
            [t] if t.is_signed_integer() => Ok(t.clone()),
            _ => plan_err!(
                "{} takes one signed integer, not {args:?}",
                self.kind.name()
            ),
        }
    }

    fn state_fields(&self, args: StateFieldsArgs<'_>) -> Result<Vec<FieldRef>> {
        let field = |name: &str, data_type: DataType| {
            Arc::new(Field::new(
                format!("{}[{name}]", args.name),
                data_type,
                true,
            ))
        };
        Ok(vec![
            field("count", DataType::Int64),
            field("sum", DataType::Float64),
            field("sum_of_squares", DataType::Float64),
        ])
    }

    fn accumulator(&self, args: AccumulatorArgs<'_>) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(Sums {
            kind: self.kind,
            returns: args.return_field.data_type().clone(),
            count: 0,
            sum: 0.0,
            sum_of_squares: 0.0,
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
struct Sums {
    kind: Kind,
    returns: DataType,
    count: i64,
    sum: f64,
    sum_of_squares: f64,
}

impl Sums {
    fn add(&mut self, values: &[ArrayRef], sign: f64) -> Result<()> {
        let [values] = values else {
            return exec_err!("{} got {} arguments", self.kind.name(), values.len());
        };
        let doubles = cast(values, &DataType::Float64)?;
        for x in doubles.as_primitive::<Float64Type>().iter().flatten() {
            self.count += sign as i64;
            self.sum += sign * x;
            self.sum_of_squares += sign * (x * x);
        }
        Ok(())
    }

    /// The DOUBLE Flink's reduction computes, `None` where it is NULL.
    fn double(&self) -> Option<f64> {
        let n = self.count as f64;
        let spread = self.sum_of_squares - self.sum * self.sum / n;
        let variance = match self.kind {
            _ if self.count <= 0 => return None,
            Kind::VarPop | Kind::StddevPop => spread / n,
            Kind::VarSamp | Kind::StddevSamp if self.count == 1 => return None,
            Kind::VarSamp | Kind::StddevSamp => spread / (n - 1.0),
        };
        Some(match self.kind {
            Kind::StddevPop | Kind::StddevSamp => variance.powf(0.5),
            _ => variance,
        })
    }
}

/// Java's cast of a double to the integer type `to`.
fn java_narrowing(value: Option<f64>, to: &DataType) -> Result<ScalarValue> {
    // Java's (int) and (long) of a double: toward zero, saturating, NaN 0.
    let as_int = value.map(|v| v as i32);
    Ok(match to {
        DataType::Int64 => ScalarValue::Int64(value.map(|v| v as i64)),
        DataType::Int32 => ScalarValue::Int32(as_int),
        DataType::Int16 => ScalarValue::Int16(as_int.map(|v| v as i16)),
        DataType::Int8 => ScalarValue::Int8(as_int.map(|v| v as i8)),
        other => return exec_err!("an integer variance of {other}"),
    })
}

impl Accumulator for Sums {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.add(values, 1.0)
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.add(values, -1.0)
    }

    fn supports_retract_batch(&self) -> bool {
        true
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let [count, sum, squares] = states else {
            return exec_err!(
                "a {} state has {} parts, not 3",
                self.kind.name(),
                states.len()
            );
        };
        let (count, sum, squares) = (
            count.as_primitive::<Int64Type>(),
            sum.as_primitive::<Float64Type>(),
            squares.as_primitive::<Float64Type>(),
        );
        for row in 0..count.len() {
            self.count += count.value(row);
            self.sum += sum.value(row);
            self.sum_of_squares += squares.value(row);
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![
            ScalarValue::Int64(Some(self.count)),
            ScalarValue::Float64(Some(self.sum)),
            ScalarValue::Float64(Some(self.sum_of_squares)),
        ])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        java_narrowing(self.double(), &self.returns)
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::Int8Array;

    fn answer(kind: Kind, values: &[i8]) -> ScalarValue {
        let mut sums = Sums {
            kind,
            returns: DataType::Int8,
            count: 0,
            sum: 0.0,
            sum_of_squares: 0.0,
        };
        sums.update_batch(&[Arc::new(Int8Array::from(values.to_vec()))])
            .unwrap();
        sums.evaluate().unwrap()
    }

    #[test]
    fn answers_are_flinks_casts_of_the_double() {
        let v = [10, 20, 30, 40, 50, 60, 70, 80, 90, 5];
        // 782.25 as Java's (byte)(int) is 14, as Flink 2.3 answers.
        assert_eq!(answer(Kind::VarPop, &v), ScalarValue::Int8(Some(14)));
        assert_eq!(answer(Kind::VarSamp, &[1, 2]), ScalarValue::Int8(Some(0)));
        assert_eq!(answer(Kind::VarSamp, &[7]), ScalarValue::Int8(None));
        assert_eq!(
            answer(Kind::StddevSamp, &[1, 2, 3]),
            ScalarValue::Int8(Some(1))
        );
    }
}
