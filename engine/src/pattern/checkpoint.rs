//! MATCH_RECOGNIZE's checkpoint. Partial and held-back matches refer to
//! rows of many firings' batches; a checkpoint saves each row any of them
//! (or a condition looking back with `PREV`) can still read once, in one
//! batch, and the matches as indices into it. A restore keeps that batch
//! as one firing's rows (its aggregate arguments evaluated again) and
//! points the matches at it.

use std::cell::RefCell;
use std::rc::Rc;

use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::record_batch::RecordBatch;
use timely::dataflow::operators::Capability;

use super::nfa::{Partial, PartitionMatches};
use super::reference::Matched;
use super::{Matching, State, arguments};
use crate::checkpoint::codec::{
    columns_from_bytes, columns_to_bytes, corrupt, fits_schema, new_state, open_state, seal,
};
use crate::checkpoint::encoding::{
    Reader, batches_from_bytes, batches_to_bytes, put_bytes, put_i64, put_u32,
};
use crate::context::JobContext;
use crate::error::EngineError;
use crate::fast_hash::HashMap;
use crate::kept_rows::RowRef;
use crate::time::Watermark;

/// The layout: a version; the rows held for the watermark (a `TimeOrder`
/// state); the WITHIN clock's time, if one is held (a flag, then it); the
/// rows matches refer to (Arrow IPC, empty if none); the number of
/// partitions and their keys (Arrow IPC, empty without PARTITION BY);
/// then per partition, in the keys' order, the next row's place, the
/// recent rows, the partial matches and the completed ones held back.
/// A match is its element, that element's count, its start time and its
/// rows, each an index into the rows saved, its place and its variable.
const STATE_VERSION: u32 = 1;

pub(super) struct Checkpointed(pub(super) Rc<RefCell<Matching>>);

impl crate::checkpoint::worker::OperatorState for Checkpointed {
    fn snapshot(&self) -> Result<Vec<u8>, EngineError> {
        self.0.borrow().snapshot().map(seal)
    }
}

/// Rows matches refer to, each given an index once.
#[derive(Default)]
struct Referred {
    refs: Vec<RowRef>,
    index: HashMap<(u32, u32), u32>,
}

impl Referred {
    fn index_of(&mut self, row: RowRef) -> u32 {
        let next = self.refs.len() as u32;
        let at = *self.index.entry((row.batch, row.row)).or_insert(next);
        if at == next {
            self.refs.push(row);
        }
        at
    }
}

impl Matching {
    pub(super) fn snapshot(&self) -> Result<Vec<u8>, EngineError> {
        let mut out = new_state(STATE_VERSION);
        put_bytes(&mut out, &self.order.snapshot()?);
        match &self.clock {
            Some(clock) => {
                put_u32(&mut out, 1);
                put_i64(&mut out, *clock.time());
            }
            None => put_u32(&mut out, 0),
        }
        out.extend_from_slice(&self.state.snapshot_matches()?);
        Ok(out)
    }

    /// Takes what a snapshot held; every capability (the held rows', the
    /// clock) is made anew from the operator's initial one.
    pub(super) fn restore(
        &mut self,
        bytes: &[u8],
        initial: &Capability<Watermark>,
    ) -> Result<(), EngineError> {
        let mut reader = open_state(bytes, STATE_VERSION, "a MATCH_RECOGNIZE")?;
        self.order.restore(reader.bytes()?, initial)?;
        let clock = match reader.u32()? {
            0 => None,
            1 => Some(reader.i64()?),
            _ => return Err(corrupt("a MATCH_RECOGNIZE clock flag")),
        };
        // Without WITHIN no clock is kept; with it, none once the input ended.
        if clock.is_some() && self.state.spec.within.is_none() {
            return Err(corrupt("a MATCH_RECOGNIZE clock without WITHIN"));
        }
        self.clock = clock
            .map(|time| {
                initial
                    .try_delayed(&time)
                    .ok_or_else(|| corrupt("a MATCH_RECOGNIZE clock time"))
            })
            .transpose()?;
        self.state.restore_matches(&mut reader)?;
        if !reader.is_empty() {
            return Err(corrupt("trailing bytes after a MATCH_RECOGNIZE state"));
        }
        Ok(())
    }
}

impl State {
    /// The rows matches refer to, then the partitions' keys and matches.
    fn snapshot_matches(&self) -> Result<Vec<u8>, EngineError> {
        let mut referred = Referred::default();
        let mut keys: Vec<&[u8]> = Vec::with_capacity(self.partitions.len());
        let mut matches = Vec::new();
        for (key, partition) in &self.partitions {
            keys.push(key);
            put_partition(&mut matches, partition, &mut referred);
        }
        let rows = match referred.refs.is_empty() {
            true => Vec::new(),
            false => match self.rows.rows_at(&referred.refs)? {
                Some(rows) => batches_to_bytes(&rows.schema(), &[rows])?,
                None => Vec::new(),
            },
        };
        let mut out = Vec::new();
        put_bytes(&mut out, &rows);
        put_u32(&mut out, keys.len() as u32);
        put_bytes(&mut out, &self.keys_to_bytes(&keys)?);
        out.extend_from_slice(&matches);
        Ok(out)
    }

    /// Takes what `snapshot_matches` gave, from `reader`.
    fn restore_matches(&mut self, reader: &mut Reader<'_>) -> Result<(), EngineError> {
        let (batch, count) = self.restore_rows(reader.bytes()?)?;
        let partitions = reader.u32()? as usize;
        let keys = self.keys_from_bytes(partitions, reader.bytes()?)?;
        let spec = self.spec.clone();
        let row = |index: u32| match index < count {
            true => Ok(RowRef { batch, row: index }),
            false => Err(corrupt("a MATCH_RECOGNIZE match refers to a row not saved")),
        };
        for key in keys {
            let partition = read_partition(reader, &spec, &row)?;
            if self.partitions.insert(key, partition).is_some() {
                return Err(corrupt("a MATCH_RECOGNIZE partition saved twice"));
            }
        }
        JobContext::add(&self.context.state_rows, self.partitions.len());
        Ok(())
    }

    /// The saved rows kept as one firing's; the id of their batch and how
    /// many there are.
    fn restore_rows(&mut self, bytes: &[u8]) -> Result<(u32, u32), EngineError> {
        let rows = match bytes.is_empty() {
            true => RecordBatch::new_empty(self.spec.input_schema.clone()),
            false => {
                let mut batches = batches_from_bytes(bytes)?;
                let (Some(rows), true) = (batches.pop(), batches.is_empty()) else {
                    return Err(corrupt("MATCH_RECOGNIZE rows are not one batch"));
                };
                rows
            }
        };
        if !fits_schema(&rows, &self.spec.input_schema) {
            return Err(corrupt("MATCH_RECOGNIZE rows with other columns"));
        }
        let count =
            u32::try_from(rows.num_rows()).map_err(|_| corrupt("too many MATCH_RECOGNIZE rows"))?;
        let arguments = arguments(&self.spec, &rows)?;
        Ok((self.rows.keep(rows, arguments), count))
    }

    fn key_types(&self) -> Vec<DataType> {
        self.spec
            .partition
            .iter()
            .map(|&i| self.spec.input_schema.field(i).data_type().clone())
            .collect()
    }

    /// The partitions' keys as their columns' values: the bytes keys are
    /// kept as need not read the same in another build.
    fn keys_to_bytes(&self, keys: &[&[u8]]) -> Result<Vec<u8>, EngineError> {
        if self.spec.partition.is_empty() {
            return Ok(Vec::new());
        }
        let parser = self.converter.parser();
        let columns = self
            .converter
            .convert_rows(keys.iter().map(|k| parser.parse(k)))?;
        columns_to_bytes(columns)
    }

    fn keys_from_bytes(&self, count: usize, bytes: &[u8]) -> Result<Vec<Box<[u8]>>, EngineError> {
        if self.spec.partition.is_empty() {
            if count > 1 || !bytes.is_empty() {
                return Err(corrupt("several partitions without PARTITION BY"));
            }
            return Ok((0..count).map(|_| Box::from(&[][..])).collect());
        }
        if count == 0 && bytes.is_empty() {
            return Ok(Vec::new());
        }
        let columns = columns_from_bytes(bytes, Some(count), &self.key_types())?;
        let keys = self.converter.convert_columns(&columns)?;
        Ok(keys.iter().map(|k| Box::from(k.data())).collect())
    }
}

fn put_partition(out: &mut Vec<u8>, partition: &PartitionMatches, referred: &mut Referred) {
    put_i64(out, partition.next_seq as i64);
    put_u32(out, partition.recent.len() as u32);
    for &row in &partition.recent {
        put_u32(out, referred.index_of(row));
    }
    for matches in [&partition.partials, &partition.completed] {
        put_u32(out, matches.len() as u32);
        for partial in matches {
            put_u32(out, partial.element as u32);
            put_u32(out, partial.count);
            put_i64(out, partial.start_time);
            put_u32(out, partial.rows.len() as u32);
            for matched in &partial.rows {
                put_u32(out, referred.index_of(matched.row));
                put_i64(out, matched.seq as i64);
                put_u32(out, u32::from(matched.variable));
            }
        }
    }
}

fn read_partition(
    reader: &mut Reader<'_>,
    spec: &super::MatchRecognize,
    row: &impl Fn(u32) -> Result<RowRef, EngineError>,
) -> Result<PartitionMatches, EngineError> {
    let mut partition = PartitionMatches {
        next_seq: reader.i64()? as u64,
        ..PartitionMatches::default()
    };
    for _ in 0..reader.u32()? {
        partition.recent.push_back(row(reader.u32()?)?);
    }
    for completed in [false, true] {
        for _ in 0..reader.u32()? {
            let element = reader.u32()? as usize;
            let count = reader.u32()?;
            let start_time = reader.i64()?;
            // A partial match waits at an element; a completed one is past
            // the last or at one it may leave.
            if element > spec.pattern.len() || (!completed && element == spec.pattern.len()) {
                return Err(corrupt("a MATCH_RECOGNIZE match at no element"));
            }
            let mut rows = Vec::new();
            for _ in 0..reader.u32()? {
                let matched = Matched {
                    row: row(reader.u32()?)?,
                    seq: reader.i64()? as u64,
                    variable: u16::try_from(reader.u32()?)
                        .ok()
                        .filter(|&v| usize::from(v) < spec.variables.len())
                        .ok_or_else(|| corrupt("a MATCH_RECOGNIZE row of no variable"))?,
                };
                if matched.seq >= partition.next_seq {
                    return Err(corrupt("a MATCH_RECOGNIZE row placed after the next"));
                }
                rows.push(matched);
            }
            let partial = Partial {
                rows,
                element,
                count,
                start_time,
            };
            match completed {
                false => partition.partials.push(partial),
                true => partition.completed.push(partial),
            }
        }
    }
    Ok(partition)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::Int64Array;
    use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
    use datafusion::functions_aggregate::sum::sum_udaf;
    use datafusion::logical_expr::Operator;
    use datafusion::physical_expr::aggregate::AggregateExprBuilder;
    use datafusion::physical_expr::expressions::{binary, col, lit};

    use super::*;
    use crate::pattern::MatchRecognize;
    use crate::pattern::nfa::{Element, Skip};
    use crate::pattern::reference::{Expression, Reference};

    fn input() -> SchemaRef {
        Arc::new(Schema::new(
            ["k", "ts", "v"]
                .map(|name| Field::new(name, DataType::Int64, false))
                .to_vec(),
        ))
    }

    fn over(references: Vec<Reference>, condition: Option<(Operator, i64)>) -> Expression {
        let fields: Vec<Field> = (0..references.len())
            .map(|i| Field::new(format!("c{i}"), DataType::Int64, true))
            .collect();
        let schema: SchemaRef = Arc::new(Schema::new(fields));
        let first = col("c0", &schema).unwrap();
        let expr = match (condition, references.len()) {
            (Some((op, value)), _) => binary(first, op, lit(value), &schema).unwrap(),
            (None, 2) => {
                let second = col("c1", &schema).unwrap();
                binary(first, Operator::Gt, second, &schema).unwrap()
            }
            (None, _) => first,
        };
        Expression {
            references,
            schema,
            expr,
        }
    }

    fn last(variable: Option<usize>, column: usize, offset: usize) -> Reference {
        Reference::Last {
            variable,
            column,
            offset,
        }
    }

    /// `PATTERN (A B+? C) DEFINE A AS v < 5, B AS v > PREV(v), C AS
    /// SUM(B.v) > 10`, skipping to the next row, measuring A.ts and C.ts.
    fn spec() -> Arc<MatchRecognize> {
        let b_sum = Reference::Aggregate {
            variable: Some(1),
            aggregate: 0,
        };
        let sum = AggregateExprBuilder::new(sum_udaf(), vec![col("v", &input()).unwrap()])
            .schema(input())
            .alias("sum_v")
            .build()
            .unwrap();
        let element = |variable, max, greedy| Element {
            variable,
            min: 1,
            max,
            greedy,
        };
        Arc::new(MatchRecognize {
            partition: vec![0],
            time_column: 1,
            then_by: Vec::new(),
            variables: vec!["A".into(), "B".into(), "C".into()],
            pattern: vec![
                element(0, Some(1), false),
                element(1, None, false),
                element(2, Some(1), false),
            ],
            skip: Skip::ToNextRow,
            within: None,
            conditions: vec![
                Some(over(vec![last(None, 2, 0)], Some((Operator::Lt, 5)))),
                Some(over(vec![last(None, 2, 0), last(None, 2, 1)], None)),
                Some(over(vec![b_sum], Some((Operator::Gt, 10)))),
            ],
            measures: vec![
                over(vec![last(Some(0), 1, 0)], None),
                over(vec![last(Some(2), 1, 0)], None),
            ],
            aggregates: vec![Arc::new(sum)],
            input_schema: input(),
            output_schema: Arc::new(Schema::new(vec![
                Field::new("k", DataType::Int64, false),
                Field::new("a_ts", DataType::Int64, true),
                Field::new("c_ts", DataType::Int64, true),
            ])),
        })
    }

    fn state() -> State {
        State::new(spec(), Arc::new(JobContext::default())).unwrap()
    }

    /// Rows of partition 0 at times `first..` with values `values`.
    fn rows(first: i64, values: &[i64]) -> (Vec<RecordBatch>, Vec<i64>) {
        let times: Vec<i64> = (first..).take(values.len()).collect();
        let batch = RecordBatch::try_new(
            input(),
            vec![
                Arc::new(Int64Array::from(vec![0; values.len()])),
                Arc::new(Int64Array::from(times.clone())),
                Arc::new(Int64Array::from(values.to_vec())),
            ],
        )
        .unwrap();
        (vec![batch], times)
    }

    fn fire(state: &mut State, (batches, times): (Vec<RecordBatch>, Vec<i64>)) -> Vec<String> {
        let out = state.fire(batches, times, None).unwrap();
        out.map(|batch| {
            let pretty = datafusion::arrow::util::pretty::pretty_format_batches(&[batch]);
            pretty.unwrap().to_string()
        })
        .into_iter()
        .collect()
    }

    fn restored(from: &State) -> State {
        let bytes = from.snapshot_matches().unwrap();
        let mut state = state();
        let mut reader = Reader::new(&bytes);
        state.restore_matches(&mut reader).unwrap();
        assert!(reader.is_empty());
        state
    }

    /// The match starting at the second row completes at the fourth while
    /// the one starting at the first goes on (its B rows sum to no more
    /// than 10 yet), so it is held back across the checkpoint; the fifth
    /// row completes the first, and both go out, the held one after.
    #[test]
    fn held_back_matches_and_the_rows_they_read_survive_a_restore() {
        let mut uninterrupted = state();
        let before = fire(&mut uninterrupted, rows(1, &[-10, -5, 12, 13]));
        assert!(before.is_empty(), "{before:?}");
        assert_eq!(uninterrupted.partitions.len(), 1);
        let held = uninterrupted.partitions.values().next().unwrap();
        assert_eq!(held.completed.len(), 1, "a completed match held back");
        let mut resumed = restored(&uninterrupted);
        let after = fire(&mut uninterrupted, rows(5, &[0, 3]));
        assert!(!after.is_empty());
        assert_eq!(fire(&mut resumed, rows(5, &[0, 3])), after);
    }

    /// PREV reads the partition's last row even where the match that needs
    /// it started before the checkpoint.
    #[test]
    fn rows_prev_reads_survive_a_restore() {
        let mut uninterrupted = state();
        fire(&mut uninterrupted, rows(1, &[1, 2, 3]));
        let mut resumed = restored(&uninterrupted);
        let after = fire(&mut uninterrupted, rows(4, &[8, 0]));
        assert!(!after.is_empty());
        assert_eq!(fire(&mut resumed, rows(4, &[8, 0])), after);
    }

    /// A match pointing past the rows saved is a corrupt state.
    #[test]
    fn a_match_referring_to_a_row_not_saved_is_corrupt() {
        let mut state_with_matches = state();
        fire(&mut state_with_matches, rows(1, &[-10, -5, 12, 13]));
        let bytes = state_with_matches.snapshot_matches().unwrap();
        let mut reader = Reader::new(&bytes);
        reader.bytes().unwrap();
        let mut without_rows = Vec::new();
        put_bytes(&mut without_rows, &[]);
        without_rows.extend_from_slice(&bytes[reader.at..]);
        let error = state()
            .restore_matches(&mut Reader::new(&without_rows))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("a row not saved"), "{error}");
    }
}
