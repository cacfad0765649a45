//! `firehose.meta`: each delivery stream's metadata, how far its delivery
//! has come, and the next stream id. Written synced on every change.

use rocksdb::{DB, Direction, IteratorMode, WriteBatch, WriteOptions};

use crate::buffer::{CF_RECORDS, Opening, record_key, scan};
use crate::error::{FirehoseError, Result};
use crate::model::DeliveryStreamMeta;
use crate::stream::BufferState;

pub const CF_META: &str = "firehose.meta";
const STREAM_PREFIX: &[u8] = b"stream/";
const DELIVERED_PREFIX: &[u8] = b"delivered/";
const NEXT_ID_KEY: &[u8] = b"next_id";

pub fn cf<'a>(db: &'a DB, name: &str) -> Result<&'a rocksdb::ColumnFamily> {
    db.cf_handle(name)
        .ok_or_else(|| FirehoseError::Internal(format!("column family {name} is not open")))
}

pub fn stream_key(name: &str) -> Vec<u8> {
    [STREAM_PREFIX, name.as_bytes()].concat()
}

pub fn delivered_key(id: u64) -> Vec<u8> {
    [DELIVERED_PREFIX, &id.to_be_bytes()[..]].concat()
}

fn synced() -> WriteOptions {
    let mut options = WriteOptions::default();
    options.set_sync(true);
    options
}

pub fn save(db: &DB, meta: &DeliveryStreamMeta) -> Result<()> {
    let value = serde_json::to_vec(meta)
        .map_err(|e| FirehoseError::Internal(format!("encoding {}: {e}", meta.name)))?;
    db.put_cf_opt(cf(db, CF_META)?, stream_key(&meta.name), value, &synced())?;
    Ok(())
}

/// Takes the next stream id; ids are never reused, so a deleted stream's
/// leftover records can never be mistaken for a new stream's.
pub fn next_id(db: &DB) -> Result<u64> {
    let meta = cf(db, CF_META)?;
    let id = db
        .get_cf(meta, NEXT_ID_KEY)?
        .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
        .map_or(1, u64::from_be_bytes);
    db.put_cf_opt(meta, NEXT_ID_KEY, (id + 1).to_be_bytes(), &synced())?;
    Ok(id)
}

const PARTITION_PREFIX: &[u8] = b"partition/";

fn partition_prefix(stream: u64) -> Vec<u8> {
    [PARTITION_PREFIX, &stream.to_be_bytes()[..], b"/"].concat()
}

/// Remembers that `stream`'s partition `label` buffers under `id`.
pub fn save_partition(db: &DB, stream: u64, label: &str, id: u64) -> Result<()> {
    let key = [partition_prefix(stream), label.as_bytes().to_vec()].concat();
    db.put_cf_opt(cf(db, CF_META)?, key, id.to_be_bytes(), &synced())?;
    Ok(())
}

/// `stream`'s partitions: each one's label and buffer id.
pub fn load_partitions(db: &DB, stream: u64) -> Result<Vec<(String, u64)>> {
    let prefix = partition_prefix(stream);
    let mut found = Vec::new();
    for item in db.iterator_cf(
        cf(db, CF_META)?,
        IteratorMode::From(&prefix, Direction::Forward),
    ) {
        let (key, value) = item?;
        let Some(label) = key.strip_prefix(prefix.as_slice()) else {
            break;
        };
        if let Ok(id) = <[u8; 8]>::try_from(value.as_ref()) {
            found.push((
                String::from_utf8_lossy(label).into_owned(),
                u64::from_be_bytes(id),
            ));
        }
    }
    Ok(found)
}

/// Forgets a stream: its metadata, its position and every buffered record,
/// its partitions' included.
pub fn remove(db: &DB, name: &str, id: u64) -> Result<()> {
    for (_, child) in load_partitions(db, id)? {
        forget_buffer(db, child)?;
    }
    let prefix = partition_prefix(id);
    let mut end = prefix.clone();
    if let Some(last) = end.last_mut() {
        *last += 1;
    }
    db.delete_range_cf_opt(cf(db, CF_META)?, prefix, end, &synced())?;
    remove_stream(db, name, id)
}

/// Forgets one partition of `stream`: its name and its (empty) buffer.
pub fn forget_partition(db: &DB, stream: u64, label: &str, id: u64) -> Result<()> {
    let key = [partition_prefix(stream), label.as_bytes().to_vec()].concat();
    db.delete_cf_opt(cf(db, CF_META)?, key, &synced())?;
    forget_buffer(db, id)
}

/// A buffer's records and position.
fn forget_buffer(db: &DB, id: u64) -> Result<()> {
    let mut batch = WriteBatch::default();
    batch.delete_cf(cf(db, CF_META)?, delivered_key(id));
    batch.delete_range_cf(
        cf(db, CF_RECORDS)?,
        record_key(id, 0),
        record_key(id + 1, 0),
    );
    db.write_opt(batch, &synced())?;
    Ok(())
}

fn remove_stream(db: &DB, name: &str, id: u64) -> Result<()> {
    let mut batch = WriteBatch::default();
    let meta = cf(db, CF_META)?;
    batch.delete_cf(meta, stream_key(name));
    batch.delete_cf(meta, delivered_key(id));
    batch.delete_range_cf(
        meta,
        crate::source::position_key(id, 0),
        crate::source::position_key(id + 1, 0),
    );
    batch.delete_range_cf(
        cf(db, CF_RECORDS)?,
        record_key(id, 0),
        record_key(id + 1, 0),
    );
    db.write_opt(batch, &synced())?;
    Ok(())
}

pub fn load_all(db: &DB) -> Result<Vec<DeliveryStreamMeta>> {
    let meta = cf(db, CF_META)?;
    let mut streams = Vec::new();
    for item in db.iterator_cf(meta, IteratorMode::From(STREAM_PREFIX, Direction::Forward)) {
        let (key, value) = item?;
        if !key.starts_with(STREAM_PREFIX) {
            break;
        }
        let stream: DeliveryStreamMeta = serde_json::from_slice(&value).map_err(|e| {
            FirehoseError::Internal(format!(
                "delivery stream {} is unreadable: {e}",
                String::from_utf8_lossy(&key[STREAM_PREFIX.len()..])
            ))
        })?;
        streams.push(stream);
    }
    Ok(streams)
}

/// Where a reopened stream's buffer stands: the last delivered sequence,
/// the next sequence to give, and the bytes and oldest arrival buffered.
pub fn recover_buffer(db: &DB, id: u64) -> Result<(u64, u64, BufferState)> {
    let delivered = db
        .get_cf(cf(db, CF_META)?, delivered_key(id))?
        .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
        .map_or(0, u64::from_be_bytes);
    let mut state = BufferState::default();
    let mut last = delivered;
    scan(db, id, delivered + 1, Opening::Raw, |record| {
        state.oldest_ms.get_or_insert(record.arrival_ms);
        state.bytes += record.data.len() as u64;
        last = record.seq;
        Ok(true)
    })?;
    Ok((delivered, last + 1, state))
}
