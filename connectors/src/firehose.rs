//! The `firehose` connector, as Flink's Amazon Data Firehose SQL connector
//! spells it: a sink only. Rows become records of a delivery stream of
//! this server (in-process, no `aws.endpoint` or one naming this server)
//! or of another endpoint (PutRecordBatch, batched as Flink's sink does:
//! `sink.batch.max-size`, `sink.flush-buffer.size`,
//! `sink.flush-buffer.timeout`). Records a full buffer refuses are put
//! again with backoff: a job writing faster than its destination delivers
//! slows down and never drops a row.

use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use runnel_engine::EngineError;
use runnel_engine::connector::SinkProvider;
use runnel_engine::sink::BatchSink;
use runnel_engine::time::Watermark;
use runnel_firehose::{Accepted, Firehose, FirehoseError};
use runnel_streams::PutEntry;

use crate::ConnectorError;
use crate::format::{Carrier, Format};
use crate::kinesis::remote::{Api, RemoteKinesis};
use crate::kinesis::remote_sink::{Batching, PutTarget, RemoteWriter};
use crate::options::{Options, parse_duration};
use crate::registry::Services;

/// PutRecordBatch's own limits.
const MAX_BATCH: usize = 500;
const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;
const FIRST_BACKOFF: Duration = Duration::from_millis(10);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

#[derive(Clone)]
enum Target {
    Local(Arc<Firehose>),
    Remote(Arc<RemoteKinesis>),
}

pub struct FirehoseSink {
    delivery_stream: String,
    format: Format,
    batching: Batching,
    target: Target,
}

pub fn sink(
    options: &Options,
    schema: SchemaRef,
    services: &Services,
) -> Result<Arc<dyn SinkProvider>, ConnectorError> {
    let delivery_stream = options.required("delivery-stream")?.to_string();
    let region = options.get("aws.region").unwrap_or("us-east-1").to_string();
    // Known so that they are not refused as unknown: they matter to a
    // remote endpoint, or are Flink tuning with no counterpart here.
    for key in [
        "aws.credentials.provider",
        "aws.credentials.basic.accesskeyid",
        "aws.credentials.basic.secretkey",
        "aws.trust.all.certificates",
        "sink.http-client.protocol.version",
        "sink.requests.max-inflight",
        "sink.requests.max-buffered",
    ] {
        options.get(key);
    }
    let batching = Batching {
        max_records: options
            .u64("sink.batch.max-size")?
            .map_or(MAX_BATCH, |n| (n as usize).clamp(1, MAX_BATCH)),
        max_bytes: options
            .u64("sink.flush-buffer.size")?
            .map_or(MAX_BATCH_BYTES, |n| (n as usize).clamp(1, MAX_BATCH_BYTES)),
        timeout: match options.get("sink.flush-buffer.timeout") {
            None => Duration::from_secs(5),
            Some(text) => parse_duration(text).ok_or_else(|| {
                ConnectorError::Option(format!(
                    "option 'sink.flush-buffer.timeout' must be a duration such as '5 s', got '{text}'"
                ))
            })?,
        },
        fail_on_error: options.bool("sink.fail-on-error", false)?,
    };
    let format = Format::from_options(options, &schema, Carrier::Messages)?;
    if format.is_changelog() {
        return Err(ConnectorError::Option(
            "the firehose connector takes append-only rows (Flink's Firehose sink has no changelog format); use json, csv or raw".into(),
        ));
    }
    let missing = |e: &dyn std::fmt::Display| {
        ConnectorError::Option(format!("firehose delivery stream '{delivery_stream}': {e}"))
    };
    let target = match options.get("aws.endpoint") {
        Some(endpoint) if !services.is_own_endpoint(endpoint) => {
            let client = RemoteKinesis::for_api(Api::Firehose, endpoint, &region, options)?;
            client
                .call(
                    "DescribeDeliveryStream",
                    &serde_json::json!({"DeliveryStreamName": delivery_stream}),
                )
                .map_err(|e| missing(&format!("at {endpoint}: {e}")))?;
            Target::Remote(Arc::new(client))
        }
        _ => {
            let Some(firehose) = services.firehose.clone() else {
                return Err(ConnectorError::Option(
                    "the firehose connector writes to the delivery streams of the server the job runs in: submit the job to `runnel server` (`runnel jobs submit`), or name another endpoint with 'aws.endpoint'".into(),
                ));
            };
            firehose
                .describe(&delivery_stream)
                .map_err(|e| missing(&e))?;
            Target::Local(firehose)
        }
    };
    Ok(Arc::new(FirehoseSink {
        delivery_stream,
        format,
        batching,
        target,
    }))
}

impl SinkProvider for FirehoseSink {
    fn checkpointable(&self) -> bool {
        true
    }

    fn sink(&self, worker: usize, _peers: usize) -> Result<Box<dyn BatchSink>, EngineError> {
        let destination = match &self.target {
            Target::Local(firehose) => Destination::Local(firehose.clone()),
            Target::Remote(client) => Destination::Remote(RemoteWriter::start(
                client.clone(),
                PutTarget::DeliveryStream(self.delivery_stream.clone()),
                self.batching,
                worker,
            )?),
        };
        Ok(Box::new(DeliveryWriter {
            delivery_stream: self.delivery_stream.clone(),
            format: self.format.clone(),
            batching: self.batching,
            destination,
        }))
    }
}

enum Destination {
    Local(Arc<Firehose>),
    Remote(RemoteWriter),
}

struct DeliveryWriter {
    delivery_stream: String,
    format: Format,
    batching: Batching,
    destination: Destination,
}

fn failure(stream: &str, error: impl std::fmt::Display) -> EngineError {
    EngineError::Connector {
        connector: "firehose",
        message: format!("delivery stream '{stream}': {error}"),
    }
}

impl DeliveryWriter {
    /// Puts `records` until every one is buffered; those a full buffer
    /// refused again after a backoff.
    fn put_all(&self, firehose: &Firehose, mut records: Vec<Vec<u8>>) -> Result<(), EngineError> {
        let stream = &self.delivery_stream;
        let mut backoff = FIRST_BACKOFF;
        while !records.is_empty() {
            let outcomes = match firehose.put_blocking(stream, records.clone()) {
                Ok(outcomes) => outcomes,
                Err(error @ (FirehoseError::NotFound(_) | FirehoseError::InvalidArgument(_))) => {
                    return Err(failure(stream, error));
                }
                Err(error) if self.batching.fail_on_error => return Err(failure(stream, error)),
                Err(error) => {
                    tracing::error!(%stream, %error, records = records.len(), "firehose sink: records not written ('sink.fail-on-error' is false)");
                    return Ok(());
                }
            };
            let refused: Vec<Vec<u8>> = records
                .into_iter()
                .zip(outcomes)
                .filter(|(_, outcome)| *outcome == Accepted::BufferFull)
                .map(|(record, _)| record)
                .collect();
            if !refused.is_empty() {
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            records = refused;
        }
        Ok(())
    }
}

impl BatchSink for DeliveryWriter {
    fn write(&mut self, batch: RecordBatch, _time: Watermark) -> Result<(), EngineError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let mut messages = self.format.encode_messages(&batch)?;
        match &mut self.destination {
            Destination::Remote(writer) => writer.send(
                messages
                    .into_iter()
                    .map(|data| PutEntry {
                        partition_key: String::new(),
                        explicit_hash_key: None,
                        data,
                    })
                    .collect(),
            ),
            Destination::Local(firehose) => {
                let firehose = firehose.clone();
                while !messages.is_empty() {
                    let rest = messages.split_off(self.batching.max_records.min(messages.len()));
                    self.put_all(&firehose, std::mem::replace(&mut messages, rest))?;
                }
                Ok(())
            }
        }
    }

    /// At-least-once at a checkpoint: a delivery stream of this server has
    /// each record once `put` returns; a remote writer is flushed, so that
    /// what the checkpoint covers was delivered before it completes.
    fn checkpoint_output(
        &mut self,
        _checkpoint: u64,
    ) -> Result<Vec<runnel_engine::checkpoint::SinkOutput>, EngineError> {
        if let Destination::Remote(writer) = &mut self.destination {
            writer.flush()?;
        }
        Ok(Vec::new())
    }

    /// At the end of input, what a remote writer holds is put before the
    /// job ends.
    fn watermark(&mut self, watermark: Option<Watermark>) -> Result<(), EngineError> {
        match (&mut self.destination, watermark) {
            (Destination::Remote(writer), None) => writer.finish(),
            _ => Ok(()),
        }
    }
}
