//! Kinesis Data Streams on the AWS port: every operation of the reference
//! sheet, over JSON 1.1 and CBOR, in front of `runnel-streams`.

mod control;
mod data;
mod eventstream;
pub mod rates;
mod subscribe;

use std::sync::Arc;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use runnel_streams::{Streams, StreamsError};

pub use self::rates::Rates;

use crate::aws::codec::{self, Out};
use crate::aws::request::{self, Req};
use crate::aws::{AwsError, AwsRequest, AwsRouter, Handler};

pub const TARGET_PREFIX: &str = "Kinesis_20131202";

pub const OPERATIONS: &[&str] = &[
    "PutRecord",
    "PutRecords",
    "GetShardIterator",
    "GetRecords",
    "SubscribeToShard",
    "CreateStream",
    "DeleteStream",
    "DescribeStream",
    "DescribeStreamSummary",
    "ListStreams",
    "ListShards",
    "DescribeLimits",
    "AddTagsToStream",
    "RemoveTagsFromStream",
    "ListTagsForStream",
    "TagResource",
    "UntagResource",
    "ListTagsForResource",
    "IncreaseStreamRetentionPeriod",
    "DecreaseStreamRetentionPeriod",
    "SplitShard",
    "MergeShards",
    "UpdateShardCount",
    "UpdateStreamMode",
    "StartStreamEncryption",
    "StopStreamEncryption",
    "EnableEnhancedMonitoring",
    "DisableEnhancedMonitoring",
    "RegisterStreamConsumer",
    "DeregisterStreamConsumer",
    "DescribeStreamConsumer",
    "ListStreamConsumers",
    "PutResourcePolicy",
    "GetResourcePolicy",
    "DeleteResourcePolicy",
    "DescribeAccountSettings",
    "UpdateAccountSettings",
    "UpdateMaxRecordSize",
    "UpdateStreamWarmThroughput",
];

pub struct Api {
    streams: Arc<Streams>,
    rates: Arc<Rates>,
    /// When each (consumer ARN, shard) last subscribed: Kinesis refuses a
    /// second SubscribeToShard for the pair within 5 seconds.
    subscriptions: std::sync::Mutex<std::collections::HashMap<(String, u32), std::time::Instant>>,
}

/// Registers every Kinesis operation on the AWS router; what its puts and
/// reads move per stream is counted in the rates returned.
pub fn register(router: &mut AwsRouter, streams: Arc<Streams>) -> Arc<Rates> {
    let rates = Arc::new(Rates::default());
    let api = Arc::new(Api {
        streams,
        rates: rates.clone(),
        subscriptions: Default::default(),
    });
    let handler: Handler = Arc::new(move |request: AwsRequest| {
        let api = api.clone();
        Box::pin(async move { api.handle(request).await })
    });
    router.register_each(TARGET_PREFIX, OPERATIONS, handler);
    rates
}

impl Api {
    async fn handle(&self, request: AwsRequest) -> Result<Response, AwsError> {
        if request.operation == "PutRecords"
            && request.protocol == crate::aws::Protocol::Json
            && let Some(result) = self.put_records_fast(&request.body).await
        {
            return Ok(ok_response(result?, request.protocol));
        }
        let map = codec::decode(
            request.protocol,
            &request.body,
            &crate::aws::shapes::KINESIS,
            &request.operation,
        )?;
        let mut req = Req::new(map);
        if request.operation == "SubscribeToShard" {
            return self.subscribe_to_shard(&mut req, request.protocol).await;
        }
        let out = self.call(&request.operation, &mut req).await?;
        Ok(ok_response(out, request.protocol))
    }

    async fn call(&self, operation: &str, req: &mut Req) -> Result<Out, AwsError> {
        match operation {
            "PutRecord" => self.put_record(req).await,
            "PutRecords" => self.put_records(req).await,
            "GetShardIterator" => self.get_shard_iterator(req),
            "GetRecords" => self.get_records(req),
            "CreateStream" => self.create_stream(req).await,
            "DeleteStream" => self.delete_stream(req).await,
            "DescribeStream" => self.describe_stream(req),
            "DescribeStreamSummary" => self.describe_stream_summary(req),
            "ListStreams" => self.list_streams(req),
            "ListShards" => self.list_shards(req),
            "DescribeLimits" => self.describe_limits(req),
            "AddTagsToStream" => self.add_tags(req, false),
            "TagResource" => self.add_tags(req, true),
            "RemoveTagsFromStream" => self.remove_tags(req, false),
            "UntagResource" => self.remove_tags(req, true),
            "ListTagsForStream" => self.list_tags_for_stream(req),
            "ListTagsForResource" => self.list_tags_for_resource(req),
            "IncreaseStreamRetentionPeriod" => self.retention(req, true),
            "DecreaseStreamRetentionPeriod" => self.retention(req, false),
            "SplitShard" => self.split_shard(req).await,
            "MergeShards" => self.merge_shards(req).await,
            "UpdateShardCount" => self.update_shard_count(req).await,
            "UpdateStreamMode" => self.update_stream_mode(req),
            "StartStreamEncryption" => self.encryption(req, true),
            "StopStreamEncryption" => self.encryption(req, false),
            "EnableEnhancedMonitoring" => self.monitoring(req, true),
            "DisableEnhancedMonitoring" => self.monitoring(req, false),
            "RegisterStreamConsumer" => self.register_consumer(req),
            "DeregisterStreamConsumer" => self.deregister_consumer(req),
            "DescribeStreamConsumer" => self.describe_consumer(req),
            "ListStreamConsumers" => self.list_consumers(req),
            "PutResourcePolicy" => self.put_policy(req),
            "GetResourcePolicy" => self.get_policy(req),
            "DeleteResourcePolicy" => self.delete_policy(req),
            "DescribeAccountSettings" => self.describe_account_settings(),
            "UpdateAccountSettings" => self.update_account_settings(req),
            "UpdateMaxRecordSize" => self.update_max_record_size(req),
            "UpdateStreamWarmThroughput" => self.update_warm_throughput(req),
            other => Err(AwsError::unknown_operation(format!(
                "Operation {TARGET_PREFIX}.{other} is not supported by this endpoint"
            ))),
        }
    }

    /// The stream a request names, by `StreamName` or `StreamARN`.
    fn stream_name(&self, req: &mut Req) -> Result<String, AwsError> {
        let name = req.opt_str("StreamName")?;
        let arn = req.opt_str("StreamARN")?;
        if let Some(name) = &name {
            req.check_name(name, "streamName");
        }
        if let Some(arn) = &arn {
            req.check_len(arn, "streamARN", 1, 2048);
        }
        req.finish()?;
        match (name, arn) {
            (Some(name), _) => Ok(name),
            (None, Some(arn)) => {
                let name = runnel_streams::stream_name_from_arn(&arn)
                    .filter(|n| !n.is_empty())
                    .ok_or_else(|| {
                        request::invalid_argument(format!(
                            "StreamARN {arn} is not a valid Kinesis stream ARN."
                        ))
                    })?
                    .to_string();
                Ok(name)
            }
            (None, None) => Err(request::invalid_argument(
                "Either StreamName or StreamARN should be provided.",
            )),
        }
    }
}

fn ok_response(out: Out, protocol: crate::aws::Protocol) -> Response {
    let mut response = (StatusCode::OK, out.encode(protocol)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(protocol.content_type()),
    );
    response
}

impl From<StreamsError> for AwsError {
    fn from(error: StreamsError) -> Self {
        if let StreamsError::RecordTooLarge { index, max_bytes } = error {
            return AwsError::new(
                StatusCode::BAD_REQUEST,
                "ValidationException",
                format!(
                    "1 validation error detected: Value at 'records.{}.member.data' failed to satisfy constraint: Member must have length less than or equal to {max_bytes}",
                    index + 1
                ),
            );
        }
        let kind = match &error {
            StreamsError::NotFound(_) => "ResourceNotFoundException",
            StreamsError::InUse(_) => "ResourceInUseException",
            StreamsError::InvalidArgument(_) => "InvalidArgumentException",
            StreamsError::LimitExceeded(_) => "LimitExceededException",
            StreamsError::Throughput(_) => "ProvisionedThroughputExceededException",
            StreamsError::ExpiredIterator(_) => "ExpiredIteratorException",
            StreamsError::Validation(_) | StreamsError::RecordTooLarge { .. } => {
                "ValidationException"
            }
            StreamsError::Store(_) | StreamsError::Rocks(_) | StreamsError::Internal(_) => {
                return AwsError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalFailure",
                    error.to_string(),
                );
            }
        };
        AwsError::new(StatusCode::BAD_REQUEST, kind, error.to_string())
    }
}
