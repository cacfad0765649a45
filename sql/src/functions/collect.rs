//! Flink's `COLLECT(x)`: the MULTISET of a group's non-NULL values, each
//! with how many times it occurs (`COLLECT(DISTINCT x)`: once each). Its
//! Arrow type is a map from value to INT count whose entries field is
//! named `multiset`, so it prints as Flink prints a multiset (Java's
//! `{a=3, b=2}`, in `HashMap` order; a key's first arrival orders it
//! within its bucket, as Flink's map view does) and so that functions a
//! MAP takes but a MULTISET answers otherwise (`CARDINALITY` counts
//! repetitions of a multiset) can refuse it (`is_multiset`). Counts
//! retract, so it runs over updating input and in OVER frames.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Int32Array, Int64Array, ListArray, MapArray, StructArray,
    new_empty_array,
};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields, Int64Type};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility,
};
use indexmap::IndexMap;

pub const NAME: &str = "collect";
const ENTRIES: &str = "multiset";

#[derive(Debug, PartialEq, Eq, Hash)]
struct Collect {
    signature: Signature,
}

pub fn udaf() -> AggregateUDF {
    AggregateUDF::from(Collect {
        signature: Signature::any(1, Volatility::Immutable),
    })
}

/// Whether `data_type` is COLLECT's MULTISET.
pub fn is_multiset(data_type: &DataType) -> bool {
    matches!(data_type, DataType::Map(entries, _) if entries.name() == ENTRIES)
}

fn multiset_type(element: &DataType) -> DataType {
    DataType::Map(entries_field(element), false)
}

fn entry_fields(element: &DataType) -> Fields {
    Fields::from(vec![
        Field::new("key", element.clone(), false),
        Field::new("value", DataType::Int32, false),
    ])
}

fn entries_field(element: &DataType) -> FieldRef {
    Arc::new(Field::new(
        ENTRIES,
        DataType::Struct(entry_fields(element)),
        false,
    ))
}

impl AggregateUDFImpl for Collect {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        let [element] = args else {
            return plan_err!("COLLECT takes one argument, not {}", args.len());
        };
        if super::map_literal::prints_in_hash_order(element) {
            Ok(multiset_type(element))
        } else {
            plan_err!(
                "COLLECT of {} values is not supported (strings, numbers, BOOLEANs, DATEs, TIMEs and TIMESTAMPs are)",
                crate::catalog_listing::flink_type(element)
            )
        }
    }

    fn state_fields(&self, args: StateFieldsArgs<'_>) -> Result<Vec<FieldRef>> {
        let element = args
            .input_fields
            .first()
            .map(|f| f.data_type().clone())
            .unwrap_or(DataType::Null);
        let list = |name: &str, item: DataType| {
            Arc::new(Field::new(
                format!("{}[{name}]", args.name),
                DataType::new_list(item, true),
                true,
            ))
        };
        Ok(vec![
            list("values", element),
            list("counts", DataType::Int64),
        ])
    }

    fn accumulator(&self, args: AccumulatorArgs<'_>) -> Result<Box<dyn Accumulator>> {
        let element = match args.return_field.data_type() {
            DataType::Map(entries, _) => match entries.data_type() {
                DataType::Struct(fields) if fields.len() == 2 => fields[0].data_type().clone(),
                other => return exec_err!("COLLECT's entries are {other}"),
            },
            other => return exec_err!("COLLECT returns a multiset, not {other}"),
        };
        Ok(Box::new(CollectAccumulator {
            counts: IndexMap::new(),
            element,
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

#[derive(Debug)]
struct CollectAccumulator {
    /// Each value's count, in the order values first came (again after
    /// their count went to zero); a retraction before its insert goes
    /// negative.
    counts: IndexMap<ScalarValue, i64>,
    element: DataType,
    distinct: bool,
}

impl CollectAccumulator {
    fn count(&mut self, value: ScalarValue, by: i64) {
        let count = self.counts.entry(value.clone()).or_insert(0);
        *count += by;
        if *count == 0 {
            // The key's place goes with it, as a map view's remove does.
            self.counts.shift_remove(&value);
        }
    }

    fn add(&mut self, values: &[ArrayRef], sign: i64) -> Result<()> {
        let [values] = values else {
            return exec_err!("COLLECT got {} arguments", values.len());
        };
        for row in 0..values.len() {
            if values.is_valid(row) {
                self.count(ScalarValue::try_from_array(values, row)?, sign);
            }
        }
        Ok(())
    }

    fn present(&self) -> impl Iterator<Item = (&ScalarValue, i64)> {
        self.counts
            .iter()
            .filter(|(_, count)| **count > 0)
            .map(|(value, count)| (value, if self.distinct { 1 } else { *count }))
    }
}

impl Accumulator for CollectAccumulator {
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
        let [values, counts] = states else {
            return exec_err!("a COLLECT state has {} parts, not 2", states.len());
        };
        let (values, counts): (&ListArray, &ListArray) = (values.as_list(), counts.as_list());
        for row in 0..values.len() {
            if !values.is_valid(row) || !counts.is_valid(row) {
                continue;
            }
            let (v, c) = (values.value(row), counts.value(row));
            let c = c.as_primitive::<Int64Type>();
            for i in 0..v.len() {
                if c.is_valid(i) {
                    self.count(ScalarValue::try_from_array(&v, i)?, c.value(i));
                }
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let values = self.counts.keys().cloned();
        let values = if self.counts.is_empty() {
            new_empty_array(&self.element)
        } else {
            ScalarValue::iter_to_array(values)?
        };
        let counts: ArrayRef =
            Arc::new(Int64Array::from_iter_values(self.counts.values().copied()));
        Ok(vec![
            ScalarValue::List(Arc::new(ListArray::new(
                Arc::new(Field::new_list_field(self.element.clone(), true)),
                OffsetBuffer::from_lengths([values.len()]),
                values,
                None,
            ))),
            ScalarValue::List(Arc::new(ListArray::new(
                Arc::new(Field::new_list_field(DataType::Int64, true)),
                OffsetBuffer::from_lengths([counts.len()]),
                counts,
                None,
            ))),
        ])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let present: Vec<(&ScalarValue, i64)> = self.present().collect();
        let keys = if present.is_empty() {
            new_empty_array(&self.element)
        } else {
            ScalarValue::iter_to_array(present.iter().map(|(value, _)| (*value).clone()))?
        };
        let counts: Vec<i32> = present
            .iter()
            .map(|(_, count)| i32::try_from(*count).unwrap_or(i32::MAX))
            .collect();
        let entries = StructArray::try_new(
            entry_fields(&self.element),
            vec![keys, Arc::new(Int32Array::from(counts))],
            None,
        )?;
        let map = MapArray::try_new(
            entries_field(&self.element),
            OffsetBuffer::from_lengths([present.len()]),
            entries,
            None,
            false,
        )?;
        Ok(ScalarValue::Map(Arc::new(map)))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
            + self
                .counts
                .keys()
                .map(|k| k.size() + std::mem::size_of::<i64>())
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::StringArray;

    fn accumulator() -> CollectAccumulator {
        CollectAccumulator {
            counts: IndexMap::new(),
            element: DataType::Utf8,
            distinct: false,
        }
    }

    fn text(values: &[Option<&str>]) -> ArrayRef {
        Arc::new(StringArray::from(values.to_vec()))
    }

    fn entries(value: ScalarValue) -> Vec<(String, i32)> {
        let ScalarValue::Map(map) = value else {
            panic!("not a map: {value:?}")
        };
        let entries = map.value(0);
        let keys = entries.column(0).as_string::<i32>();
        let counts = entries
            .column(1)
            .as_primitive::<datafusion::arrow::datatypes::Int32Type>();
        (0..keys.len())
            .map(|i| (keys.value(i).to_string(), counts.value(i)))
            .collect()
    }

    #[test]
    fn retractions_and_merged_states_give_the_same_multiset() {
        let mut whole = accumulator();
        whole
            .update_batch(&[text(&[Some("a"), None, Some("b"), Some("a")])])
            .unwrap();
        whole.retract_batch(&[text(&[Some("b")])]).unwrap();
        assert_eq!(entries(whole.evaluate().unwrap()), [("a".to_string(), 2)]);

        // The same rows split over two accumulators, one's state merged
        // into the other, as a checkpoint or a two-phase aggregate does.
        let (mut first, mut second) = (accumulator(), accumulator());
        first
            .update_batch(&[text(&[Some("a"), Some("b")])])
            .unwrap();
        second.update_batch(&[text(&[Some("a")])]).unwrap();
        second.retract_batch(&[text(&[Some("b")])]).unwrap();
        let state: Vec<ArrayRef> = second
            .state()
            .unwrap()
            .iter()
            .map(|s| s.to_array().unwrap())
            .collect();
        first.merge_batch(&state).unwrap();
        assert_eq!(entries(first.evaluate().unwrap()), [("a".to_string(), 2)]);
    }
}
