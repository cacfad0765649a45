//! The errors of the Firehose service, one variant per Firehose error kind
//! so the wire layer names them without parsing messages.

use runnel_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum FirehoseError {
    /// `ResourceNotFoundException`
    #[error("{0}")]
    NotFound(String),
    /// `ResourceInUseException`
    #[error("{0}")]
    InUse(String),
    /// `InvalidArgumentException`
    #[error("{0}")]
    InvalidArgument(String),
    /// `LimitExceededException`
    #[error("{0}")]
    LimitExceeded(String),
    /// `ConcurrentModificationException`: a stale version id.
    #[error("{0}")]
    ConcurrentModification(String),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("rocksdb: {0}")]
    Rocks(#[from] rocksdb::Error),
    #[error("{0}")]
    Internal(String),
}

pub type Result<T, E = FirehoseError> = std::result::Result<T, E>;
