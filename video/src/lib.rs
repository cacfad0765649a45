//! Kinesis Video Streams' data: streams and their metadata, fragments
//! taken from PutMedia's MKV (`mkv`), kept in segment files with an index
//! in the data dir's RocksDB (`store`), read back for playback and trimmed
//! by retention; played back as Matroska (GetMedia), fragmented MP4 (`mp4`: GetClip,
//! HLS and DASH) or MPEG-2 transport stream (`ts`: HLS).

mod error;
pub mod images;
pub mod mkv;
pub mod mp4;
mod service;
pub mod store;
pub mod ts;

pub use error::VideoError;
pub use service::{
    COLUMN_FAMILIES, CreateStream, MAX_PUT_CONNECTION, MAX_READERS, MAX_RETENTION_HOURS,
    PutSession, Stream, StreamRef, TaggedFragment, Video, VideoConfig, now_ms,
};
pub use store::model::{
    FragmentMeta, IndexedFrame, StreamMeta, fragment_number, parse_fragment_number, unpack_frames,
};
