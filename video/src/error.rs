#[derive(Debug, thiserror::Error)]
pub enum VideoError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    InUse(String),
    #[error("{0}")]
    VersionMismatch(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    LimitExceeded(String),
    #[error("{0}")]
    NotActive(String),
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
    #[error("fragment store: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Store(#[from] runnel_store::StoreError),
    #[error(transparent)]
    Mp4(#[from] crate::mp4::Mp4Error),
    #[error(transparent)]
    Ts(#[from] crate::ts::TsError),
    #[error("rocksdb: {0}")]
    Rocks(#[from] rocksdb::Error),
}
