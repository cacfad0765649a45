//! Flink's `PERCENTILE(expr, percentage [, frequency])`: the exact
//! percentile of a group's values, linearly interpolated between the two
//! nearest, as Flink's `PercentileAggFunction` computes it (its positions
//! and arithmetic step for step, so the doubles agree to the last bit).
//! `percentage` is a constant in [0, 1] or an array of them (the result
//! then an array); `frequency`, an integer, counts a value that many times
//! and a NULL or non-positive one drops the row. Values are kept with
//! their counts, so retraction (updating input, OVER frames) is exact.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Builder, ListBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    DataType, Decimal128Type, Field, FieldRef, Float64Type, Int64Type,
};
use datafusion::common::{DFSchema, Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::expr::AggregateFunction;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Expr, ExprSchemable, Signature, Volatility,
};

pub const NAME: &str = "percentile";

#[derive(Debug, PartialEq, Eq, Hash)]
struct Percentile {
    signature: Signature,
}

pub fn udaf() -> AggregateUDF {
    AggregateUDF::from(Percentile {
        signature: Signature::user_defined(Volatility::Immutable),
    })
}

/// Refuses at submit what Flink refuses at validation, and what Runnel
/// would answer otherwise than Flink: a percentage that is not a constant
/// (Flink takes the first row's), NULL or outside [0, 1]; FLOAT
/// percentages (Flink widens a FLOAT scalar through its decimal text but
/// an array's FLOATs bit for bit); DISTINCT with a frequency.
pub fn check_call(call: &AggregateFunction, schema: &DFSchema) -> Result<()> {
    let args = &call.params.args;
    if !(2..=3).contains(&args.len()) {
        return plan_err!(
            "PERCENTILE takes (value, percentage [, frequency]), not {} arguments",
            args.len()
        );
    }
    if call.params.distinct && args.len() == 3 {
        return plan_err!("PERCENTILE(DISTINCT ...) with a frequency is not supported");
    }
    let percentage = &args[1];
    let columns = percentage.column_refs();
    if !columns.is_empty() {
        let mut names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
        names.sort_unstable();
        return plan_err!(
            "PERCENTILE's percentage must be a constant; it reads the column(s) {}",
            names.join(", ")
        );
    }
    let percentage_type = percentage.get_type(schema)?;
    let float = |t: &DataType| matches!(t, DataType::Float32 | DataType::Float16);
    match &percentage_type {
        DataType::List(item) | DataType::LargeList(item) | DataType::FixedSizeList(item, _)
            if float(item.data_type()) =>
        {
            return plan_err!("PERCENTILE's percentages must not be FLOAT: use DOUBLE or DECIMAL");
        }
        t if float(t) => {
            return plan_err!("PERCENTILE's percentage must not be FLOAT: use DOUBLE or DECIMAL");
        }
        _ => {}
    }
    // An ARRAY's elements are folded one by one: before type coercion
    // they may be DECIMALs of different scales, which folding the array
    // whole cannot take.
    let elements = match percentage {
        Expr::ScalarFunction(call) if call.func.name() == "make_array" => {
            call.args.iter().collect()
        }
        one => vec![one],
    };
    let mut percentages = Vec::new();
    for element in elements {
        let Some(value) = super::math::constant_value(element) else {
            return plan_err!("PERCENTILE's percentage must be a constant, not {element}");
        };
        percentages.extend(percentages_of(&value)?);
    }
    for p in percentages {
        match p {
            Some(p) if (0.0..=1.0).contains(&p) => {}
            Some(p) => return plan_err!("PERCENTILE's percentage must be in [0.0, 1.0], not {p}"),
            None => return plan_err!("PERCENTILE's percentage must not be NULL"),
        }
    }
    Ok(())
}

/// The percentages a constant holds, as doubles.
fn percentages_of(value: &ScalarValue) -> Result<Vec<Option<f64>>> {
    let values: ArrayRef = match value {
        ScalarValue::List(list) if list.len() == 1 && list.is_valid(0) => list.value(0),
        ScalarValue::LargeList(list) if list.len() == 1 && list.is_valid(0) => list.value(0),
        ScalarValue::FixedSizeList(list) if list.len() == 1 && list.is_valid(0) => list.value(0),
        scalar => scalar.to_array()?,
    };
    if values.data_type().is_null() {
        return Ok(vec![None; values.len()]);
    }
    let values = cast(&values, &DataType::Float64)?;
    Ok(values.as_primitive::<Float64Type>().iter().collect())
}

fn is_numeric(t: &DataType) -> bool {
    t.is_integer() || t.is_floating() || matches!(t, DataType::Decimal128(..) | DataType::Null)
}

impl AggregateUDFImpl for Percentile {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        let value = match args.first() {
            Some(DataType::Decimal128(p, s)) => DataType::Decimal128(*p, *s),
            Some(t) if is_numeric(t) => DataType::Float64,
            Some(t) => return plan_err!("PERCENTILE takes a NUMERIC value, not {t}"),
            None => return plan_err!("PERCENTILE takes (value, percentage [, frequency])"),
        };
        let percentage = match args.get(1) {
            Some(
                DataType::List(item) | DataType::LargeList(item) | DataType::FixedSizeList(item, _),
            ) if is_numeric(item.data_type()) => DataType::new_list(DataType::Float64, true),
            Some(t) if is_numeric(t) => DataType::Float64,
            Some(t) => {
                return plan_err!(
                    "PERCENTILE's percentage is a NUMERIC or an ARRAY of NUMERIC, not {t}"
                );
            }
            None => return plan_err!("PERCENTILE takes (value, percentage [, frequency])"),
        };
        let mut coerced = vec![value, percentage];
        match args.get(2) {
            Some(t) if t.is_integer() || t.is_null() => coerced.push(DataType::Int64),
            Some(t) => return plan_err!("PERCENTILE's frequency is an integer, not {t}"),
            None => {}
        }
        if args.len() > 3 {
            return plan_err!("PERCENTILE takes (value, percentage [, frequency])");
        }
        Ok(coerced)
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        Ok(match args.get(1) {
            Some(DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(..)) => {
                DataType::new_list(DataType::Float64, true)
            }
            _ => DataType::Float64,
        })
    }

    fn state_fields(&self, args: StateFieldsArgs<'_>) -> Result<Vec<FieldRef>> {
        let list = |name: &str, item: DataType| {
            Arc::new(Field::new(
                format!("{}[{name}]", args.name),
                DataType::new_list(item, true),
                true,
            ))
        };
        Ok(vec![
            list("percentages", DataType::Float64),
            list("values", DataType::Float64),
            list("counts", DataType::Int64),
        ])
    }

    fn accumulator(&self, args: AccumulatorArgs<'_>) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(PercentileAccumulator {
            percentages: None,
            counts: BTreeMap::new(),
            many: args.return_field.data_type().is_nested(),
            distinct: args.is_distinct,
        }))
    }

    fn create_sliding_accumulator(
        &self,
        args: AccumulatorArgs<'_>,
    ) -> Result<Box<dyn Accumulator>> {
        self.accumulator(args)
    }
}

/// A double ordered as Java's `Double.compareTo` orders the keys of
/// Flink's map: -0.0 before 0.0, NaN (one NaN) after everything.
#[derive(Debug, Clone, Copy)]
struct Key(f64);

impl Key {
    fn of(value: f64) -> Key {
        Key(if value.is_nan() { f64::NAN } else { value })
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        self.0.total_cmp(&other.0).is_eq()
    }
}

impl Eq for Key {}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Key) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Key) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

#[derive(Debug)]
struct PercentileAccumulator {
    /// The first row's, as in Flink (a constant: `check_call`).
    percentages: Option<Vec<f64>>,
    /// Each value's count; a retraction before its insert goes negative.
    counts: BTreeMap<Key, i64>,
    many: bool,
    distinct: bool,
}

impl PercentileAccumulator {
    fn add(&mut self, values: &[ArrayRef], sign: i64) -> Result<()> {
        let [value, percentage, rest @ ..] = values else {
            return exec_err!("PERCENTILE got {} arguments", values.len());
        };
        let value = as_doubles(value)?;
        let frequency = rest.first().map(|f| f.as_primitive::<Int64Type>());
        for row in 0..value.len() {
            if self.percentages.is_none() && sign > 0 {
                self.percentages = Some(row_percentages(percentage, row)?);
            }
            let times = match frequency {
                None => 1,
                Some(f) if f.is_valid(row) && f.value(row) > 0 => f.value(row),
                Some(_) => continue,
            };
            if value.is_null(row) {
                continue;
            }
            self.count(value.value(row), sign * times);
        }
        Ok(())
    }

    fn count(&mut self, value: f64, by: i64) {
        let count = self.counts.entry(Key::of(value)).or_insert(0);
        *count += by;
        if *count == 0 {
            self.counts.remove(&Key::of(value));
        }
    }

    /// Flink's `PercentileAccumulator.getValue`: 1-based positions
    /// `p * (n - 1) + 1`, each the value there or the interpolation of the
    /// two around it.
    fn percentiles(&self, percentages: &[f64]) -> Result<Option<Vec<f64>>> {
        let entries: Vec<(f64, i64)> = self
            .counts
            .iter()
            .map(|(key, count)| {
                (
                    key.0,
                    if self.distinct {
                        (*count).min(1)
                    } else {
                        *count
                    },
                )
            })
            .collect();
        let total: i64 = entries.iter().map(|(_, count)| count).sum();
        if total <= 0 {
            return Ok(None);
        }
        let mut positions: Vec<(f64, usize)> = percentages
            .iter()
            .enumerate()
            .map(|(index, p)| (p * (total - 1) as f64 + 1.0, index))
            .collect();
        positions.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut out = vec![0.0; percentages.len()];
        let mut j = 0;
        let mut before = entries[0].1;
        let broken = || {
            datafusion::error::DataFusionError::Execution(
                "PERCENTILE's counts are inconsistent (more retracted than added)".into(),
            )
        };
        for (position, index) in positions {
            let lower = position.floor() as i64;
            let higher = position.ceil() as i64;
            while before < lower {
                j += 1;
                before += entries.get(j).ok_or_else(broken)?.1;
            }
            let here = entries[j].0;
            out[index] = if before >= higher {
                here
            } else {
                let next = entries.get(j + 1).ok_or_else(broken)?.0;
                (higher as f64 - position) * here + (position - lower as f64) * next
            };
        }
        Ok(Some(out))
    }
}

/// The value column as doubles: DECIMALs rounded correctly from their
/// digits, as Java's `BigDecimal.doubleValue` does (dividing the unscaled
/// integer by a power of ten can round twice).
fn as_doubles(values: &ArrayRef) -> Result<datafusion::arrow::array::Float64Array> {
    if let DataType::Decimal128(_, scale) = values.data_type() {
        let decimals = values.as_primitive::<Decimal128Type>();
        let scale = *scale;
        return decimals
            .iter()
            .map(|v| {
                v.map(|unscaled| {
                    format!("{unscaled}e{}", -i32::from(scale))
                        .parse::<f64>()
                        .map_err(|e| datafusion::error::DataFusionError::Execution(e.to_string()))
                })
                .transpose()
            })
            .collect();
    }
    Ok(cast(values, &DataType::Float64)?
        .as_primitive::<Float64Type>()
        .clone())
}

fn row_percentages(percentage: &ArrayRef, row: usize) -> Result<Vec<f64>> {
    let values = match percentage.data_type() {
        DataType::List(_) => percentage.as_list::<i32>().value(row),
        _ => percentage.slice(row, 1),
    };
    let values = cast(&values, &DataType::Float64)?;
    let mut out = Vec::with_capacity(values.len());
    for p in values.as_primitive::<Float64Type>().iter() {
        match p {
            Some(p) if (0.0..=1.0).contains(&p) => out.push(p),
            p => {
                return exec_err!(
                    "Percentage of PERCENTILE should be between [0.0, 1.0], but was '{p:?}'."
                );
            }
        }
    }
    Ok(out)
}

/// One list of `values` as a scalar.
fn double_list(values: &[f64]) -> ScalarValue {
    let mut builder = ListBuilder::new(Float64Builder::new());
    builder.values().append_slice(values);
    builder.append(true);
    ScalarValue::List(Arc::new(builder.finish()))
}

impl Accumulator for PercentileAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.add(values, 1)
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.add(values, -1)
    }

    fn supports_retract_batch(&self) -> bool {
        true
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let [percentages, values, counts] = states else {
            return exec_err!("a PERCENTILE state has {} parts, not 3", states.len());
        };
        let (percentages, values, counts) = (
            percentages.as_list::<i32>(),
            values.as_list::<i32>(),
            counts.as_list::<i32>(),
        );
        for row in 0..values.len() {
            if self.percentages.is_none() && percentages.is_valid(row) {
                let p = percentages.value(row);
                self.percentages = Some(p.as_primitive::<Float64Type>().iter().flatten().collect());
            }
            if !values.is_valid(row) || !counts.is_valid(row) {
                continue;
            }
            let (v, c) = (values.value(row), counts.value(row));
            let (v, c) = (
                v.as_primitive::<Float64Type>(),
                c.as_primitive::<Int64Type>(),
            );
            for (value, count) in v.iter().zip(c.iter()) {
                if let (Some(value), Some(count)) = (value, count) {
                    self.count(value, count);
                }
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let percentages = match &self.percentages {
            Some(p) => double_list(p),
            None => ScalarValue::try_from(&DataType::new_list(DataType::Float64, true))?,
        };
        let mut values = ListBuilder::new(Float64Builder::new());
        let mut counts = ListBuilder::new(datafusion::arrow::array::Int64Builder::new());
        for (key, count) in &self.counts {
            values.values().append_value(key.0);
            counts.values().append_value(*count);
        }
        values.append(true);
        counts.append(true);
        Ok(vec![
            percentages,
            ScalarValue::List(Arc::new(values.finish())),
            ScalarValue::List(Arc::new(counts.finish())),
        ])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let result = match &self.percentages {
            Some(p) if !(self.many && p.is_empty()) => self.percentiles(p)?,
            _ => None,
        };
        Ok(match (result, self.many) {
            (Some(values), true) => double_list(&values),
            (None, true) => ScalarValue::try_from(&DataType::new_list(DataType::Float64, true))?,
            (Some(values), false) => ScalarValue::Float64(values.first().copied()),
            (None, false) => ScalarValue::Float64(None),
        })
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
            + self.counts.len() * 48
            + self.percentages.as_ref().map_or(0, |p| p.len() * 8)
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Float64Array, Int64Array, ListArray};
    use datafusion::arrow::datatypes::Float64Type;

    use super::*;

    fn accumulator(many: bool, distinct: bool) -> PercentileAccumulator {
        PercentileAccumulator {
            percentages: None,
            counts: BTreeMap::new(),
            many,
            distinct,
        }
    }

    fn doubles(values: &[Option<f64>]) -> ArrayRef {
        Arc::new(Float64Array::from(values.to_vec()))
    }

    fn constant(p: f64, rows: usize) -> ArrayRef {
        Arc::new(Float64Array::from(vec![p; rows]))
    }

    fn constants(ps: &[f64], rows: usize) -> ArrayRef {
        let lists = vec![Some(ps.iter().map(|p| Some(*p)).collect::<Vec<_>>()); rows];
        Arc::new(ListArray::from_iter_primitive::<Float64Type, _, _>(lists))
    }

    #[test]
    fn flinks_documented_examples() {
        let mut one = accumulator(false, false);
        let values = doubles(&[Some(0.0), Some(10.0), Some(10.0)]);
        one.update_batch(&[values.clone(), constant(0.3, 3)])
            .unwrap();
        assert_eq!(
            one.evaluate().unwrap(),
            ScalarValue::Float64(Some(6.000000000000001))
        );

        let mut weighted = accumulator(false, false);
        let frequency: ArrayRef = Arc::new(Int64Array::from(vec![1, 2]));
        weighted
            .update_batch(&[
                doubles(&[Some(0.0), Some(10.0)]),
                constant(0.3, 2),
                frequency,
            ])
            .unwrap();
        assert_eq!(
            weighted.evaluate().unwrap(),
            ScalarValue::Float64(Some(6.000000000000001))
        );

        let mut distinct = accumulator(false, true);
        distinct.update_batch(&[values, constant(0.3, 3)]).unwrap();
        assert_eq!(
            distinct.evaluate().unwrap(),
            ScalarValue::Float64(Some(3.0000000000000004))
        );

        let mut many = accumulator(true, false);
        many.update_batch(&[
            doubles(&[Some(0.0), Some(10.0)]),
            constants(&[0.25, 0.75], 2),
        ])
        .unwrap();
        assert_eq!(many.evaluate().unwrap(), double_list(&[2.5, 7.5]));
    }

    #[test]
    fn nothing_counted_is_null_and_retraction_undoes_an_insert() {
        let mut acc = accumulator(false, false);
        assert_eq!(acc.evaluate().unwrap(), ScalarValue::Float64(None));
        let first = [doubles(&[Some(1.0), None, Some(3.0)]), constant(0.5, 3)];
        acc.update_batch(&first).unwrap();
        assert_eq!(acc.evaluate().unwrap(), ScalarValue::Float64(Some(2.0)));
        let second = [doubles(&[Some(9.0)]), constant(0.5, 1)];
        acc.update_batch(&second).unwrap();
        assert_eq!(acc.evaluate().unwrap(), ScalarValue::Float64(Some(3.0)));
        acc.retract_batch(&second).unwrap();
        assert_eq!(acc.evaluate().unwrap(), ScalarValue::Float64(Some(2.0)));
        acc.retract_batch(&first).unwrap();
        assert!(acc.counts.is_empty());
        assert_eq!(acc.evaluate().unwrap(), ScalarValue::Float64(None));
    }

    #[test]
    fn a_state_merged_into_a_new_accumulator_answers_alike() {
        let mut acc = accumulator(true, false);
        let values = doubles(&[Some(-0.0), Some(0.0), Some(f64::NAN), Some(2.5), Some(2.5)]);
        acc.update_batch(&[values, constants(&[0.0, 0.4, 1.0], 5)])
            .unwrap();
        let state: Vec<ArrayRef> = acc
            .state()
            .unwrap()
            .iter()
            .map(|s| s.to_array().unwrap())
            .collect();
        let mut restored = accumulator(true, false);
        restored.merge_batch(&state).unwrap();
        assert_eq!(restored.evaluate().unwrap(), acc.evaluate().unwrap());
        // -0.0 and 0.0 are two values, as Java's Double keys are; NaN sorts last.
        assert_eq!(acc.counts.len(), 4);
        assert_eq!(acc.counts.keys().last().map(|k| k.0.is_nan()), Some(true));
    }
}
