//! The `blackhole` connector: takes every row (a changelog too) and keeps
//! none, as Flink's does; for measuring a query without its output.

use std::sync::Arc;

use runnel_engine::EngineError;
use runnel_engine::connector::SinkProvider;
use runnel_engine::sink::{BatchSink, BlackholeSink};

pub fn sink() -> Arc<dyn SinkProvider> {
    Arc::new(Blackhole)
}

struct Blackhole;

impl SinkProvider for Blackhole {
    fn sink(&self, _worker: usize, _peers: usize) -> Result<Box<dyn BatchSink>, EngineError> {
        Ok(Box::new(BlackholeSink))
    }

    fn accepts_changelog(&self) -> bool {
        true
    }

    /// Its output is for watching: a restored job prints (or drops) the
    /// rows since the last checkpoint again, and nothing is to commit.
    fn checkpointable(&self) -> bool {
        true
    }
}
