//! Integration tests of the stream service over a real RocksDB store.

#![allow(clippy::unwrap_used, reason = "tests fail on unexpected errors")]

mod commit;
mod log;
mod reshard;
