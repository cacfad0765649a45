//! How a server job's checkpoint becomes durable: through the streams'
//! writer, in one write batch with the records its exactly-once sinks held
//! back, so that readers see those records exactly when the checkpoint
//! that covers them exists.

use std::sync::Arc;

use runnel_engine::checkpoint::SinkOutput;
use runnel_jobs::checkpoints::{CF_CHECKPOINTS, CheckpointWrite, Publish};
use runnel_streams::{ExtraWrite, Streams};

pub struct StreamsPublisher {
    pub streams: Arc<Streams>,
}

impl Publish for StreamsPublisher {
    fn publish(
        &self,
        outputs: Vec<SinkOutput>,
        writes: Vec<CheckpointWrite>,
    ) -> Result<(), String> {
        let puts = runnel_connectors::kinesis::stream_puts(outputs);
        let extra = writes
            .into_iter()
            .map(|(key, value)| ExtraWrite {
                column_family: CF_CHECKPOINTS.to_string(),
                key,
                value,
            })
            .collect();
        self.streams
            .commit_with(puts, extra)
            .map_err(|e| e.to_string())
    }
}
