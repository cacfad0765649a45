//! Runnel's dataflow core: timely-dataflow workers whose timestamps are
//! event-time watermarks and whose data are Arrow record batches, and the
//! RocksDB store that every service and checkpoint lives in.

pub mod store;
