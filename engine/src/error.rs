use datafusion::arrow::error::ArrowError;
use datafusion::error::DataFusionError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    DataFusion(#[from] DataFusionError),
    #[error(transparent)]
    Arrow(#[from] ArrowError),
    #[error("{0}")]
    Plan(String),
    #[error("dataflow: {0}")]
    Runtime(String),
    #[error("an operator panicked: {0}")]
    Panic(String),
    #[error(transparent)]
    Window(#[from] crate::window::kind::WindowError),
    #[error("{connector}: {message}")]
    Connector {
        connector: &'static str,
        message: String,
    },
}
