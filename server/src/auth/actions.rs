//! What a request does, in IAM's terms: the action AWS names for the
//! operation (`kinesis:PutRecord`), the ARN it acts on, the signing name
//! its signature must be scoped to, and whether it changes anything (for
//! the audit log).

use axum::http::{HeaderMap, Method};
use serde_json::Value;

use crate::aws::Protocol;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Kinesis,
    Firehose,
    Analytics,
    Video,
    /// Runnel's own `/v1` API and `/metrics`.
    Runnel,
}

impl Service {
    /// The service name of the IAM action and of the credential scope.
    pub fn name(self) -> &'static str {
        match self {
            Service::Kinesis => "kinesis",
            Service::Firehose => "firehose",
            Service::Analytics => "kinesisanalytics",
            Service::Video => "kinesisvideo",
            Service::Runnel => "runnel",
        }
    }

    /// Whether a signature scoped to `service` may call this one. Runnel's
    /// own API also takes the Analytics name: its jobs are applications.
    pub fn accepts_scope(self, service: &str) -> bool {
        service == self.name() || (self == Service::Runnel && service == "kinesisanalytics")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    pub service: Service,
    /// `PutRecord`: the action without its service prefix.
    pub name: String,
    pub resource: String,
}

impl Operation {
    pub fn action(&self) -> String {
        format!("{}:{}", self.service.name(), self.name)
    }

    pub fn mutating(&self) -> bool {
        !["Describe", "List", "Get", "Subscribe", "View"]
            .iter()
            .any(|prefix| self.name.starts_with(prefix))
    }
}

/// The region and account ARNs are made in.
#[derive(Debug, Clone)]
pub struct Scope {
    pub region: String,
    pub account: String,
}

impl Scope {
    fn arn(&self, service: &str, resource: &str) -> String {
        format!(
            "arn:aws:{service}:{}:{}:{resource}",
            self.region, self.account
        )
    }
}

/// The service an `X-Amz-Target` prefix (`Kinesis_20131202`) names.
pub fn service_of_target(prefix: &str) -> Option<Service> {
    match prefix {
        "Kinesis_20131202" => Some(Service::Kinesis),
        "Firehose_20150804" => Some(Service::Firehose),
        "KinesisAnalytics_20180523" => Some(Service::Analytics),
        _ => None,
    }
}

/// An `X-Amz-Target` operation: the resource from the body's fields.
pub fn target(target: &str, protocol: Protocol, body: &[u8], scope: &Scope) -> Option<Operation> {
    let (prefix, name) = target.split_once('.')?;
    let service = service_of_target(prefix)?;
    let field = |name: &str| body_field(protocol, body, name);
    let resource = match service {
        Service::Kinesis => field("ConsumerARN")
            .or_else(|| field("StreamARN"))
            .or_else(|| field("StreamName").map(|n| scope.arn("kinesis", &format!("stream/{n}"))))
            .or_else(|| field("ResourceARN")),
        Service::Firehose => field("DeliveryStreamARN")
            .or_else(|| {
                field("DeliveryStreamName")
                    .map(|n| scope.arn("firehose", &format!("deliverystream/{n}")))
            })
            .or_else(|| field("ResourceARN")),
        Service::Analytics => field("ApplicationName")
            .map(|n| scope.arn("kinesisanalytics", &format!("application/{n}")))
            .or_else(|| field("ResourceARN")),
        Service::Video | Service::Runnel => None,
    };
    Some(Operation {
        service,
        name: name.to_string(),
        resource: resource.unwrap_or_else(|| "*".into()),
    })
}

/// A Kinesis Video REST operation (`POST /putMedia`): the stream from the
/// body or, for PutMedia's streamed body, the headers. `stream_arn` finds
/// the ARN of a stream named (the ARN holds its creation time).
pub fn video(
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
    stream_arn: impl Fn(&str) -> Option<String>,
    scope: &Scope,
) -> Operation {
    let name = path.trim_start_matches('/');
    let mut chars = name.chars();
    let name: String = chars
        .next()
        .map(|c| c.to_ascii_uppercase())
        .into_iter()
        .chain(chars)
        .collect();
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let field = |name: &str| body_field(Protocol::Json, body, name);
    let resource = field("StreamARN")
        .or_else(|| header("x-amzn-stream-arn"))
        .or_else(|| field("ResourceARN"))
        .or_else(|| {
            field("StreamName")
                .or_else(|| header("x-amzn-stream-name"))
                .map(|stream| {
                    // A stream not created yet has no creation time: its ARN
                    // is every stream of that name.
                    stream_arn(&stream)
                        .unwrap_or_else(|| scope.arn("kinesisvideo", &format!("stream/{stream}/*")))
                })
        })
        .unwrap_or_else(|| "*".into());
    Operation {
        service: Service::Video,
        name,
        resource,
    }
}

/// Runnel's own API: jobs, savepoints, the console's reads, metrics.
pub fn runnel(method: &Method, path: &str, scope: &Scope) -> Operation {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let job = |id: &str| scope.arn("runnel", &format!("job/{id}"));
    let (name, resource) = match (method, &parts[..]) {
        (&Method::GET, ["metrics"]) => ("GetMetrics", "*".to_string()),
        (&Method::GET, ["v1", "jobs"]) => ("ListJobs", "*".into()),
        (&Method::POST, ["v1", "jobs"]) => ("SubmitJob", "*".into()),
        (&Method::GET, ["v1", "jobs", id]) => ("DescribeJob", job(id)),
        (&Method::DELETE, ["v1", "jobs", id]) => ("DeleteJob", job(id)),
        (&Method::POST, ["v1", "jobs", id, "stop"]) => ("StopJob", job(id)),
        (&Method::POST, ["v1", "jobs", id, "savepoints"]) => ("CreateSavepoint", job(id)),
        (&Method::GET, ["v1", "jobs", id, "results"]) => ("GetJobResults", job(id)),
        (&Method::GET, ["v1", "savepoints", ..]) => ("ListSavepoints", "*".into()),
        (&Method::DELETE, ["v1", "savepoints", ..]) => ("DeleteSavepoint", "*".into()),
        (&Method::GET, ["v1", "console", ..]) => ("ViewConsole", "*".into()),
        (&Method::GET | &Method::HEAD, _) => ("Get", "*".into()),
        _ => ("Write", "*".into()),
    };
    Operation {
        service: Service::Runnel,
        name: name.to_string(),
        resource,
    }
}

/// A top-level text field of a JSON or CBOR body; None when the body is
/// not one (the handler answers that with its own error).
fn body_field(protocol: Protocol, body: &[u8], name: &str) -> Option<String> {
    if body.is_empty() {
        return None;
    }
    match protocol {
        Protocol::Json => match serde_json::from_slice::<Value>(body).ok()? {
            Value::Object(mut map) => match map.remove(name)? {
                Value::String(s) => Some(s),
                _ => None,
            },
            _ => None,
        },
        Protocol::Cbor => {
            let value: ciborium::Value = ciborium::from_reader(body).ok()?;
            value.as_map()?.iter().find_map(|(key, value)| {
                (key.as_text()? == name)
                    .then(|| value.as_text().map(str::to_string))
                    .flatten()
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> Scope {
        Scope {
            region: "us-east-1".into(),
            account: "000000000000".into(),
        }
    }

    #[test]
    fn kinesis_operations_act_on_their_stream() {
        let op = target(
            "Kinesis_20131202.PutRecord",
            Protocol::Json,
            br#"{"StreamName":"orders","Data":"eA==","PartitionKey":"k"}"#,
            &scope(),
        )
        .unwrap();
        assert_eq!(op.action(), "kinesis:PutRecord");
        assert_eq!(
            op.resource,
            "arn:aws:kinesis:us-east-1:000000000000:stream/orders"
        );
        assert!(op.mutating());
        let list = target(
            "Kinesis_20131202.ListStreams",
            Protocol::Json,
            b"{}",
            &scope(),
        )
        .unwrap();
        assert_eq!(list.resource, "*");
        assert!(!list.mutating());
        let mut cbor = Vec::new();
        ciborium::into_writer(
            &ciborium::Value::Map(vec![(
                ciborium::Value::Text("StreamARN".into()),
                ciborium::Value::Text("arn:aws:kinesis:us-east-1:1:stream/x".into()),
            )]),
            &mut cbor,
        )
        .unwrap();
        let op = target(
            "Kinesis_20131202.GetShardIterator",
            Protocol::Cbor,
            &cbor,
            &scope(),
        )
        .unwrap();
        assert_eq!(op.resource, "arn:aws:kinesis:us-east-1:1:stream/x");
    }

    #[test]
    fn video_operations_find_the_stream_arn() {
        let mut headers = HeaderMap::new();
        headers.insert("x-amzn-stream-name", "cam".parse().unwrap());
        let op = video(
            "/putMedia",
            &headers,
            b"",
            |name| {
                Some(format!(
                    "arn:aws:kinesisvideo:us-east-1:000000000000:stream/{name}/1"
                ))
            },
            &scope(),
        );
        assert_eq!(op.action(), "kinesisvideo:PutMedia");
        assert!(op.resource.ends_with("stream/cam/1"));
        let create = video(
            "/createStream",
            &HeaderMap::new(),
            br#"{"StreamName":"new"}"#,
            |_| None,
            &scope(),
        );
        assert!(create.resource.ends_with("stream/new/*"));
    }

    #[test]
    fn runnel_paths_name_their_job() {
        let op = runnel(&Method::POST, "/v1/jobs/abc/stop", &scope());
        assert_eq!(op.action(), "runnel:StopJob");
        assert!(op.resource.ends_with("job/abc"));
        assert!(op.mutating());
        assert!(!runnel(&Method::GET, "/v1/jobs", &scope()).mutating());
    }
}
