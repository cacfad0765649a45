//! Deduplication that keeps the first row of each key: `ROW_NUMBER() OVER
//! (PARTITION BY k ORDER BY time ASC) = 1`. A key's earliest row is emitted
//! once the watermark passes its time, when no earlier row can still come,
//! so the output only ever inserts. A `PROCTIME()` column works the same
//! way, its watermark being the wall clock.

use crate::fast_hash::{HashMap, HashSet};
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
    fn keys(&self, batch: &RecordBatch) -> Result<datafusion::arrow::row::Rows, EngineError> {
        let columns: Vec<ArrayRef> = self
            .spec
            .key_columns
            .iter()
            .map(|&i| batch.column(i).clone())
            .collect();
        Ok(self.converter.convert_columns(&columns)?)
    }

    /// Event time: remembers each key's earliest row.
    fn absorb(&mut self, batch: RecordBatch, time_column: usize) -> Result<(), EngineError> {
        let keys = self.keys(&batch)?;
        let times = millis(batch.column(time_column))?;
        let id = self.next_batch;
        let mut referenced = 0;
        for (row, key) in keys.iter().enumerate() {
            let time = times[row];
            if self.emitted.contains(key.data()) {
                continue;
            }
            match self.pending.get_mut(key.data()) {
                Some(best) if best.time <= time => {}
                Some(best) => {
                    release(&mut self.batches, best.batch);
                    *best = Candidate {
                        time,
                        batch: id,
                        row,
                    };
                    referenced += 1;
                }
                None => {
                    self.pending.insert(
                        key.data().into(),
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
            move |_cap, _info| {
                let mut state = State {
                    spec,
                    converter,
                    emitted: HashSet::default(),
                    pending: HashMap::default(),
                    batches: HashMap::default(),
                    next_batch: 0,
                    hold: None,
                };
                move |(input, frontier), output| {
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
