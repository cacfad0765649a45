//! The errors of the stream service, one variant per Kinesis error kind so
//! the wire layer can name them without parsing messages.

use runnel_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum StreamsError {
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
    /// `ProvisionedThroughputExceededException`
    #[error("{0}")]
    Throughput(String),
    /// `ExpiredIteratorException`
    #[error("{0}")]
    ExpiredIterator(String),
    /// `ValidationException`
    #[error("{0}")]
    Validation(String),
    /// A record (data and partition key) over the stream's maximum size;
    /// `index` is its position in the request, from 0.
    #[error("record {index} is larger than the stream's {max_bytes} bytes")]
    RecordTooLarge { index: usize, max_bytes: usize },
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("rocksdb: {0}")]
    Rocks(#[from] rocksdb::Error),
    #[error("{0}")]
    Internal(String),
}

pub type Result<T, E = StreamsError> = std::result::Result<T, E>;
