//! Runnel's dataflow core: timely-dataflow workers whose timestamps are
//! event-time watermarks and whose data are Arrow record batches, and the
//! RocksDB store that every service and checkpoint lives in.

pub mod aggregate;
pub mod append_join;
pub mod batch;
pub mod cluster_net;
pub mod complete;
pub mod connector;
pub mod context;
pub mod dedup;
pub mod eager_case;
pub mod error;
pub mod exchange;
pub mod fast_hash;
pub mod interval_join;
pub mod join;
pub mod lateness;
pub mod partition;
pub mod runtime;
pub mod session;
pub mod sink;
pub mod source;
pub mod stateless;
pub mod store;
pub mod time;
pub mod updating;
pub mod window;
pub mod window_assign;
pub mod window_op;

pub use error::EngineError;
