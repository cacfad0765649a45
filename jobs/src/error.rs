use runnel_sql::SqlError;

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The script was refused at submit: bad SQL or an unsupported
    /// construct, with its position when there is one.
    #[error(transparent)]
    Rejected(SqlError),
    /// The job ran and failed: an operator's error, a source or sink that
    /// failed, or a worker that panicked.
    #[error("{0}")]
    Failed(String),
    #[error("cannot start the job: {0}")]
    Start(String),
}
