use std::fmt;

/// A line and column in the submitted script, both from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: u64,
    pub column: u64,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    /// Rejected at submit time: bad syntax or an unsupported construct.
    #[error("{message}{}", .position.map(|p| format!(" at {p}")).unwrap_or_default())]
    Invalid {
        message: String,
        position: Option<Position>,
    },
    #[error("{0}")]
    Plan(String),
    #[error(transparent)]
    DataFusion(#[from] datafusion::error::DataFusionError),
    #[error(transparent)]
    Engine(#[from] runnel_engine::EngineError),
}

impl SqlError {
    pub fn at(message: impl Into<String>, position: Position) -> Self {
        SqlError::Invalid {
            message: message.into(),
            position: Some(position),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        SqlError::Invalid {
            message: message.into(),
            position: None,
        }
    }
}
