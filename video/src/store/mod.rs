//! Where fragments live: payloads in segment files (`segments`), the
//! index in RocksDB (`model` for its keys and values).

pub mod model;
pub mod segments;
