//! Kinesis Video Streams' data: streams and their metadata, fragments
//! taken from PutMedia's MKV (`mkv`), kept in segment files with an index
//! in the data dir's RocksDB (`store`), read back for playback and trimmed
//! by retention.

mod error;
pub mod mkv;
mod service;
pub mod store;

pub use error::VideoError;
pub use service::{
    COLUMN_FAMILIES, CreateStream, MAX_READERS, MAX_RETENTION_HOURS, PutSession, Stream, StreamRef,
    Video, VideoConfig, now_ms,
};
pub use store::model::{FragmentMeta, StreamMeta, fragment_number, parse_fragment_number};
