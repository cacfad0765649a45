//! Deduplication that keeps the first row of each key: `ROW_NUMBER() OVER
//! (PARTITION BY k ORDER BY time ASC) = 1`. A key's earliest row is emitted
//! once the watermark passes its time, when no earlier row can still come,
//! so the output only ever inserts. A `PROCTIME()` column works the same
//! way, its watermark being the wall clock.

use crate::fast_hash::{HashMap, HashSet};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, UInt64Array};
use datafusion::arrow::compute::interleave_record_batch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::row::{RowConverter, SortField};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::Stream;
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::generic::Operator;

use crate::batch::Batch;
use crate::checkpoint::codec::{
    columns_from_bytes, columns_to_bytes, corrupt, new_state, open_state, seal,
};
use crate::checkpoint::encoding::{
    batches_from_bytes, batches_to_bytes, put_bytes, put_i64, put_u32,
};
use crate::context::JobContext;
use crate::error::EngineError;
use crate::runtime::exchange;
use crate::time::{Millis, Watermark};
use crate::window::state::millis;

pub struct Deduplicate {
    pub key_columns: Vec<usize>,
    /// The time column that orders rows; rows travel no later than it.
    pub time: usize,
    /// The input columns and the row number (always 1) after them.
    pub output_schema: SchemaRef,
}

struct Candidate {
    time: Millis,
    batch: u64,
    row: usize,
}

struct State {
    spec: Arc<Deduplicate>,
    converter: RowConverter,
    /// Keys whose first row has been emitted.
    emitted: HashSet<Box<[u8]>>,
    /// The earliest row seen so far of keys not yet emitted.
    pending: HashMap<Box<[u8]>, Candidate>,
    /// Batches that pending rows point into, with how many do.
    batches: HashMap<u64, (RecordBatch, usize)>,
    next_batch: u64,
    /// Held at the earliest time a pending row arrived at.
    hold: Option<Capability<Watermark>>,
}

impl State {
    /// Each row's key; `None` without key columns, every row's key then
    /// being empty (a converter of no columns gives no rows at all).
    fn keys(
        &self,
        batch: &RecordBatch,
    ) -> Result<Option<datafusion::arrow::row::Rows>, EngineError> {
        if self.spec.key_columns.is_empty() {
            return Ok(None);
        }
        let columns: Vec<ArrayRef> = self
            .spec
            .key_columns
            .iter()
            .map(|&i| batch.column(i).clone())
            .collect();
        Ok(Some(self.converter.convert_columns(&columns)?))
    }

    /// Event time: remembers each key's earliest row.
    fn absorb(&mut self, batch: RecordBatch, time_column: usize) -> Result<(), EngineError> {
        let keys = self.keys(&batch)?;
        let key_of = |row: usize| keys.as_ref().map_or(&[][..], |k| k.row(row).data());
        let times = millis(batch.column(time_column))?;
        let id = self.next_batch;
        let mut referenced = 0;
        for (row, &time) in times.iter().enumerate() {
            let key = key_of(row);
            if self.emitted.contains(key) {
                continue;
            }
            match self.pending.get_mut(key) {
                Some(best) if best.time <= time => {}
                Some(best) => {
                    // A row of this same batch already counts as its
                    // reference; the batch is not in `batches` yet.
                    if best.batch == id {
                        referenced -= 1;
                    } else {
                        release(&mut self.batches, best.batch);
                    }
                    *best = Candidate {
                        time,
                        batch: id,
                        row,
                    };
                    referenced += 1;
                }
                None => {
                    self.pending.insert(
                        key.into(),
                        Candidate {
                            time,
                            batch: id,
                            row,
                        },
                    );
                    referenced += 1;
                }
            }
        }
        if referenced > 0 {
            self.batches.insert(id, (batch, referenced));
            self.next_batch += 1;
        }
        Ok(())
    }

    /// Emits the pending rows the watermark has passed, earliest first.
    fn ripe(&mut self, frontier: Option<Watermark>) -> Result<Option<RecordBatch>, EngineError> {
        let ready: Vec<Box<[u8]>> = self
            .pending
            .iter()
            .filter(|(_, c)| frontier.is_none_or(|f| c.time < f))
            .map(|(k, _)| k.clone())
            .collect();
        if ready.is_empty() {
            return Ok(None);
        }
        let mut chosen: Vec<Candidate> = Vec::with_capacity(ready.len());
        for key in ready {
            if let Some(candidate) = self.pending.remove(&key) {
                chosen.push(candidate);
            }
            self.emitted.insert(key);
        }
        chosen.sort_by_key(|c| c.time);
        let ids: Vec<u64> = {
            let mut ids: Vec<u64> = chosen.iter().map(|c| c.batch).collect();
            ids.sort_unstable();
            ids.dedup();
            ids
        };
        let sources: Vec<&RecordBatch> = ids
            .iter()
            .filter_map(|id| self.batches.get(id).map(|(b, _)| b))
            .collect();
        let picks: Vec<(usize, usize)> = chosen
            .iter()
            .filter_map(|c| ids.binary_search(&c.batch).ok().map(|b| (b, c.row)))
            .collect();
        let out = interleave_record_batch(&sources, &picks)?;
        for c in &chosen {
            release(&mut self.batches, c.batch);
        }
        self.numbered(out).map(Some)
    }

    fn numbered(&self, batch: RecordBatch) -> Result<RecordBatch, EngineError> {
        let mut columns = batch.columns().to_vec();
        columns.push(Arc::new(UInt64Array::from_value(1, batch.num_rows())));
        Ok(RecordBatch::try_new(
            self.spec.output_schema.clone(),
            columns,
        )?)
    }

    fn earliest_pending(&self) -> Option<Millis> {
        self.pending.values().map(|c| c.time).min()
    }
}

/// A deduplication's checkpoint: a version; the keys already emitted (a
/// count, then their values as Arrow IPC, empty without key columns); the
/// pending rows (Arrow IPC, empty if none), whose keys and times are read
/// from them again; and the time of the held capability, if any.
const STATE_VERSION: u32 = 1;

impl State {
    fn snapshot(&self) -> Result<Vec<u8>, EngineError> {
        let mut out = new_state(STATE_VERSION);
        put_u32(&mut out, self.emitted.len() as u32);
        put_bytes(&mut out, &self.emitted_keys()?);
        put_bytes(&mut out, &self.pending_rows()?);
        match &self.hold {
            Some(hold) => {
                put_u32(&mut out, 1);
                put_i64(&mut out, *hold.time());
            }
            None => put_u32(&mut out, 0),
        }
        Ok(out)
    }

    fn emitted_keys(&self) -> Result<Vec<u8>, EngineError> {
        if self.spec.key_columns.is_empty() {
            return Ok(Vec::new());
        }
        let parser = self.converter.parser();
        let keys = self
            .converter
            .convert_rows(self.emitted.iter().map(|k| parser.parse(k)))?;
        columns_to_bytes(keys)
    }

    fn pending_rows(&self) -> Result<Vec<u8>, EngineError> {
        if self.pending.is_empty() {
            return Ok(Vec::new());
        }
        let mut sources = Vec::with_capacity(self.batches.len());
        let mut slot_of: HashMap<u64, usize> = HashMap::default();
        for (&id, (batch, _)) in &self.batches {
            slot_of.insert(id, sources.len());
            sources.push(batch);
        }
        let picks = self
            .pending
            .values()
            .map(|c| {
                slot_of
                    .get(&c.batch)
                    .map(|&slot| (slot, c.row))
                    .ok_or_else(|| EngineError::Runtime("deduplication lost a row".into()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let rows = interleave_record_batch(&sources, &picks)?;
        batches_to_bytes(&rows.schema(), &[rows])
    }

    /// Takes what a snapshot held; the capability is made anew from the
    /// operator's initial one.
    fn restore(
        &mut self,
        bytes: &[u8],
        initial: &Capability<Watermark>,
    ) -> Result<(), EngineError> {
        let mut reader = open_state(bytes, STATE_VERSION, "a deduplication")?;
        let emitted = reader.u32()? as usize;
        self.restore_emitted(emitted, reader.bytes()?)?;
        let pending = reader.bytes()?;
        if !pending.is_empty() {
            for batch in batches_from_bytes(pending)? {
                self.restore_pending(batch)?;
            }
        }
        let hold = match reader.u32()? {
            0 => None,
            1 => Some(reader.i64()?),
            _ => return Err(corrupt("a deduplication's capability flag")),
        };
        if !reader.is_empty() {
            return Err(corrupt("trailing bytes after a deduplication state"));
        }
        // Pending rows go out at the held time, so one without the other
        // would lose them.
        if hold.is_some() == self.pending.is_empty() {
            return Err(corrupt("a deduplication's pending rows and capability"));
        }
        self.hold = hold
            .map(|time| {
                initial
                    .try_delayed(&time)
                    .ok_or_else(|| corrupt("a deduplication's capability time"))
            })
            .transpose()?;
        Ok(())
    }

    fn restore_emitted(&mut self, count: usize, bytes: &[u8]) -> Result<(), EngineError> {
        if self.spec.key_columns.is_empty() {
            if count > 1 || !bytes.is_empty() {
                return Err(corrupt("several keys without key columns"));
            }
            self.emitted
                .extend((count == 1).then(|| Box::from(&[][..])));
            return Ok(());
        }
        let types = self.key_types()?;
        let columns = columns_from_bytes(bytes, Some(count), &types)?;
        let keys = self.converter.convert_columns(&columns)?;
        self.emitted
            .extend(keys.iter().map(|k| Box::from(k.data())));
        Ok(())
    }

    /// Pending rows are taken as new input, each being its key's only one.
    fn restore_pending(&mut self, batch: RecordBatch) -> Result<(), EngineError> {
        let input = self.spec.output_schema.fields();
        let fits = batch.num_columns() + 1 == input.len()
            && batch
                .columns()
                .iter()
                .zip(input.iter())
                .all(|(column, field)| column.data_type() == field.data_type());
        if !fits {
            return Err(corrupt("deduplication rows with other columns"));
        }
        let time = self.spec.time;
        self.absorb(batch, time)
    }

    fn key_types(&self) -> Result<Vec<datafusion::arrow::datatypes::DataType>, EngineError> {
        let fields = self.spec.output_schema.fields();
        self.spec
            .key_columns
            .iter()
            .map(|&i| {
                fields
                    .get(i)
                    .map(|f| f.data_type().clone())
                    .ok_or_else(|| EngineError::Plan(format!("no key column {i}")))
            })
            .collect()
    }
}

/// The emitted keys and pending rows, as a checkpoint takes them.
struct Checkpointed(Rc<RefCell<State>>);

impl crate::checkpoint::worker::OperatorState for Checkpointed {
    fn snapshot(&self) -> Result<Vec<u8>, EngineError> {
        self.0.borrow().snapshot().map(seal)
    }
}

fn release(batches: &mut HashMap<u64, (RecordBatch, usize)>, id: u64) {
    if let Some((_, refs)) = batches.get_mut(&id) {
        *refs -= 1;
        if *refs == 0 {
            batches.remove(&id);
        }
    }
}

pub fn deduplicate<'scope>(
    input: Stream<'scope, Watermark, Batch>,
    spec: Arc<Deduplicate>,
    input_schema: SchemaRef,
    context: Arc<JobContext>,
) -> Result<Stream<'scope, Watermark, Batch>, EngineError> {
    let fields = spec
        .key_columns
        .iter()
        .map(|&i| SortField::new(input_schema.field(i).data_type().clone()))
        .collect();
    let converter = RowConverter::new(fields)?;
    Ok(
        input.unary_frontier::<CapacityContainerBuilder<Batch>, _, _, _>(
            exchange::by_key(spec.key_columns.clone()),
            "Deduplicate",
            move |initial, _info| {
                let state = Rc::new(RefCell::new(State {
                    spec,
                    converter,
                    emitted: HashSet::default(),
                    pending: HashMap::default(),
                    batches: HashMap::default(),
                    next_batch: 0,
                    hold: None,
                }));
                let checkpointed = Rc::new(Checkpointed(state.clone()));
                if let Some(bytes) =
                    crate::checkpoint::worker::register("Deduplicate", checkpointed)
                    && let Err(error) = state.borrow_mut().restore(&bytes, &initial)
                {
                    context.fail(error);
                }
                move |(input, frontier), output| {
                    let mut state = state.borrow_mut();
                    let state = &mut *state;
                    let mut result: Result<(), EngineError> = Ok(());
                    input.for_each(|cap, data| {
                        let Some(batch) = data.take() else { return };
                        if result.is_err() {
                            return;
                        }
                        let earlier = state
                            .hold
                            .as_ref()
                            .is_none_or(|h| cap.least().is_some_and(|t| t < h.time()));
                        if earlier {
                            state.hold = cap.retain_least(0);
                        }
                        let column = state.spec.time;
                        result = state.absorb(batch, column);
                    });
                    if result.is_ok() {
                        let now = frontier.frontier().first().copied();
                        match state.ripe(now) {
                            Ok(Some(out)) => {
                                if let Some(hold) = &state.hold {
                                    output.session(hold).give_container(&mut Batch::new(out));
                                }
                            }
                            Ok(None) => {}
                            Err(e) => result = Err(e),
                        }
                        match state.earliest_pending() {
                            None => state.hold = None,
                            Some(t) => {
                                if let Some(hold) = state.hold.as_mut()
                                    && t > *hold.time()
                                {
                                    hold.downgrade(&t);
                                }
                            }
                        }
                    }
                    if let Err(error) = result {
                        context.fail(error);
                    }
                }
            },
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, TimestampMillisecondArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};

    fn state() -> State {
        let schema = Schema::new(vec![
            Field::new("k", DataType::Int64, false),
            Field::new(
                "ts",
                DataType::Timestamp(TimeUnit::Millisecond, None),
                false,
            ),
            Field::new("row_num", DataType::UInt64, false),
        ]);
        State {
            spec: Arc::new(Deduplicate {
                key_columns: vec![0],
                time: 1,
                output_schema: Arc::new(schema),
            }),
            converter: RowConverter::new(vec![SortField::new(DataType::Int64)]).unwrap(),
            emitted: HashSet::default(),
            pending: HashMap::default(),
            batches: HashMap::default(),
            next_batch: 0,
            hold: None,
        }
    }

    fn batch(rows: &[(i64, i64)]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, false),
            Field::new(
                "ts",
                DataType::Timestamp(TimeUnit::Millisecond, None),
                false,
            ),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))),
                Arc::new(TimestampMillisecondArray::from_iter_values(
                    rows.iter().map(|r| r.1),
                )),
            ],
        )
        .unwrap()
    }

    /// A key whose earliest row is replaced by an earlier one of the same
    /// batch leaves no batch behind once every pending row is emitted.
    #[test]
    fn emitted_rows_release_every_batch_they_held() {
        let mut state = state();
        state
            .absorb(batch(&[(1, 50), (1, 20), (2, 30), (1, 10)]), 1)
            .unwrap();
        state.absorb(batch(&[(2, 5), (3, 40), (3, 35)]), 1).unwrap();
        let out = state.ripe(None).unwrap().unwrap();
        let times = millis(out.column(1)).unwrap();
        assert_eq!(times, vec![5, 10, 35]);
        assert!(state.pending.is_empty());
        assert!(
            state.batches.is_empty(),
            "{} batches kept",
            state.batches.len()
        );
    }
}
