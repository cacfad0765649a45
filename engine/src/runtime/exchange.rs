//! A keyed exchange of record batches: each batch is split by the hash of
//! its key columns and every piece goes to the worker that owns those keys.

use datafusion::arrow::record_batch::RecordBatch;
use timely::communication::Push;
use timely::dataflow::channels::Message;
use timely::dataflow::channels::pact::DistributorPact;
use timely::dataflow::channels::pushers::exchange::Distributor;
use timely::progress::Stamp;

use crate::batch::Batch;
use crate::runtime::partition::{hash_rows, split_by_owner};

pub struct KeySplit {
    key_columns: Vec<usize>,
    hashes: Vec<u64>,
}

impl Distributor<Batch> for KeySplit {
    fn partition<T: Clone, P: Push<Message<T, Batch>>>(
        &mut self,
        container: &mut Batch,
        stamp: &Stamp<T>,
        pushers: &mut [P],
    ) {
        let Some(batch) = container.take() else {
            return;
        };
        let pieces = route(&batch, &self.key_columns, &mut self.hashes, pushers.len());
        for (pusher, piece) in pushers.iter_mut().zip(pieces) {
            if let Some(piece) = piece {
                Message::push_at(&mut Batch::new(piece), stamp.clone(), pusher);
            }
        }
    }

    fn flush<T: Clone, P: Push<Message<T, Batch>>>(
        &mut self,
        _stamp: &Stamp<T>,
        _pushers: &mut [P],
    ) {
    }
}

/// Key columns are checked to be hashable when the plan is built, and `take`
/// cannot fail on in-range indices, so failure here is a planner bug.
fn route(
    batch: &RecordBatch,
    key_columns: &[usize],
    hashes: &mut Vec<u64>,
    workers: usize,
) -> Vec<Option<RecordBatch>> {
    let keys: Vec<_> = key_columns
        .iter()
        .map(|&i| batch.column(i).clone())
        .collect();
    hash_rows(&keys, batch.num_rows(), hashes)
        .expect("key columns are validated as hashable at plan time");
    split_by_owner(batch, hashes, workers).expect("row indices are in range")
}

/// The pact that sends every row to the worker owning its key columns.
pub fn by_key(key_columns: Vec<usize>) -> DistributorPact<impl FnOnce(usize) -> KeySplit> {
    DistributorPact(move |_peers| KeySplit {
        key_columns,
        hashes: Vec::new(),
    })
}
