//! `ProcessingConfiguration`: what happens to buffered records before they
//! are written. Processors run in the order Firehose runs them:
//! `Decompression`, `CloudWatchLogProcessing`, `RecordDeAggregation`, the
//! `Lambda` transform, then `AppendDelimiterToRecord`. A record a processor
//! cannot handle goes to the error output as `processing-failed`, never
//! silently away.

use std::collections::HashMap;
use std::io::Read;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::error::{FirehoseError, Result};
use crate::partition::Keys;

/// A Lambda transform: the ARN the client named and the URL Runnel's
/// config maps it to.
#[derive(Debug, Clone)]
struct Lambda {
    arn: String,
    url: String,
    retries: u32,
    /// Bytes of records per invocation (`BufferSizeInMBs`).
    batch_bytes: usize,
    /// How long records wait for an invocation to fill
    /// (`BufferIntervalInSeconds`), when records are routed to dynamic
    /// partitions after it.
    interval_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum SubRecords {
    Json,
    Kpl,
    /// Records separated by this delimiter (`Delimiter`, base64).
    Delimited(Vec<u8>),
}

#[derive(Debug, Clone, Default)]
pub struct Pipeline {
    gunzip: bool,
    cloudwatch_messages: bool,
    deaggregate: Option<SubRecords>,
    lambda: Option<Lambda>,
    delimiter: Option<Vec<u8>>,
}

/// A buffered record, as processing sees it.
pub struct Input<'a> {
    pub arrival_ms: u64,
    pub data: &'a [u8],
}

/// Bytes taken at once by steps with no buffering hints of their own.
pub const UNBATCHED_BYTES: u64 = 1 << 20;

/// A record after processing: its data, and the partition keys a Lambda
/// gave it (`metadata.partitionKeys`), if any.
pub struct Processed {
    pub arrival_ms: u64,
    pub data: Vec<u8>,
    pub lambda_keys: Option<Keys>,
}

/// A record processing gave up on, for the error output.
pub struct Failure {
    pub arrival_ms: u64,
    pub raw: Vec<u8>,
    pub code: String,
    pub message: String,
    pub attempts: u32,
    pub lambda_arn: Option<String>,
}

impl Failure {
    /// The JSON line Firehose writes for a record under
    /// `processing-failed`.
    pub fn to_line(&self, now_ms: u64) -> Vec<u8> {
        let mut line = json!({
            "attemptsMade": self.attempts,
            "arrivalTimestamp": self.arrival_ms,
            "errorCode": self.code,
            "errorMessage": self.message,
            "attemptEndingTimestamp": now_ms,
            "rawData": STANDARD.encode(&self.raw),
        });
        if let (Some(arn), Some(map)) = (&self.lambda_arn, line.as_object_mut()) {
            map.insert("lambdaArn".into(), json!(arn));
        }
        let mut bytes = line.to_string().into_bytes();
        bytes.push(b'\n');
        bytes
    }
}

fn invalid(message: impl Into<String>) -> FirehoseError {
    FirehoseError::InvalidArgument(message.into())
}

fn base64_delimiter(text: &str) -> Result<Vec<u8>> {
    STANDARD
        .decode(text)
        .ok()
        .filter(|d| !d.is_empty())
        .ok_or_else(|| {
            invalid(format!(
                "Delimiter '{text}' is not a base64-encoded delimiter."
            ))
        })
}

fn parameters(processor: &Value) -> HashMap<String, String> {
    processor
        .get("Parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| {
            Some((
                p.get("ParameterName")?.as_str()?.to_string(),
                p.get("ParameterValue")?.as_str()?.to_string(),
            ))
        })
        .collect()
}

impl Pipeline {
    /// The pipeline a `ProcessingConfiguration` describes, or None when
    /// processing is off. `lambdas` maps Lambda ARNs to the URLs that
    /// answer for them.
    pub fn parse(
        config: Option<&Value>,
        lambdas: &HashMap<String, String>,
    ) -> Result<Option<Pipeline>> {
        let Some(config) = config else {
            return Ok(None);
        };
        if !config
            .get("Enabled")
            .and_then(Value::as_bool)
            .unwrap_or(false)
        {
            return Ok(None);
        }
        let mut pipeline = Pipeline::default();
        for processor in config
            .get("Processors")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let kind = processor.get("Type").and_then(Value::as_str).unwrap_or("");
            let params = parameters(processor);
            match kind {
                "Decompression" => {
                    let format = params
                        .get("CompressionFormat")
                        .map_or("GZIP", String::as_str);
                    if format != "GZIP" {
                        return Err(invalid(format!(
                            "Decompression of {format} is not supported; Firehose decompresses GZIP."
                        )));
                    }
                    pipeline.gunzip = true;
                }
                "CloudWatchLogProcessing" => {
                    pipeline.cloudwatch_messages = params
                        .get("DataMessageExtraction")
                        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
                }
                "RecordDeAggregation" => {
                    pipeline.deaggregate = Some(
                        match params.get("SubRecordType").map(String::as_str) {
                            None | Some("JSON") => SubRecords::Json,
                            Some("KPL") => SubRecords::Kpl,
                            Some("DELIMITED") => {
                                let text = params.get("Delimiter").ok_or_else(|| {
                                    invalid("SubRecordType DELIMITED needs a Delimiter parameter (base64).")
                                })?;
                                SubRecords::Delimited(base64_delimiter(text)?)
                            }
                            Some(other) => {
                                return Err(invalid(format!(
                                    "SubRecordType {other} is not one of JSON, KPL, DELIMITED."
                                )));
                            }
                        },
                    );
                }
                "AppendDelimiterToRecord" => {
                    pipeline.delimiter = Some(match params.get("Delimiter") {
                        None => b"\n".to_vec(),
                        Some(text) => base64_delimiter(text)?,
                    });
                }
                "Lambda" => {
                    let arn = params.get("LambdaArn").ok_or_else(|| {
                        invalid("The Lambda processor needs a LambdaArn parameter.")
                    })?;
                    let url = lambdas.get(arn).ok_or_else(|| {
                        invalid(format!(
                            "Lambda {arn} has no URL in Runnel's config ([firehose.lambda] \"{arn}\" = \"http://...\")."
                        ))
                    })?;
                    let number = |name: &str, default: f64| {
                        params
                            .get(name)
                            .and_then(|v| v.parse::<f64>().ok())
                            .unwrap_or(default)
                    };
                    pipeline.lambda = Some(Lambda {
                        arn: arn.clone(),
                        url: url.clone(),
                        retries: number("NumberOfRetries", 3.0).clamp(0.0, 300.0) as u32,
                        batch_bytes: (number("BufferSizeInMBs", 1.0).clamp(0.2, 3.0) * 1_048_576.0)
                            as usize,
                        interval_ms: (number("BufferIntervalInSeconds", 60.0).clamp(0.0, 900.0)
                            * 1000.0) as u64,
                    });
                }
                "MetadataExtraction" => {
                    return Err(invalid(
                        "The MetadataExtraction processor belongs to an S3 destination with dynamic partitioning.",
                    ));
                }
                other => {
                    return Err(invalid(format!(
                        "Processor type '{other}' is not one Firehose has."
                    )));
                }
            }
        }
        let empty = !pipeline.gunzip
            && !pipeline.cloudwatch_messages
            && pipeline.deaggregate.is_none()
            && pipeline.lambda.is_none()
            && pipeline.delimiter.is_none();
        Ok((!empty).then_some(pipeline))
    }

    /// Whether a step runs that must come before records are partitioned:
    /// a partition query reads what decompression, de-aggregation and the
    /// Lambda make of a record, and the Lambda may name the keys itself.
    pub fn has_steps_before_partitioning(&self) -> bool {
        self.gunzip
            || self.cloudwatch_messages
            || self.deaggregate.is_some()
            || self.lambda.is_some()
    }

    /// Splits the pipeline around partitioning: the steps before it, and
    /// what is left to run on each partition's objects (the delimiter).
    pub fn split_at_partitioning(&self) -> (Pipeline, Option<Pipeline>) {
        let before = Pipeline {
            delimiter: None,
            ..self.clone()
        };
        let after = self.delimiter.clone().map(|delimiter| Pipeline {
            delimiter: Some(delimiter),
            ..Pipeline::default()
        });
        (before, after)
    }

    pub fn has_lambda(&self) -> bool {
        self.lambda.is_some()
    }

    /// How many bytes of records to take at once, and how long the oldest
    /// may wait for them, before the steps ahead of partitioning run: the
    /// Lambda's buffering hints, or at once without a Lambda.
    pub fn batch_hints(&self) -> (u64, u64) {
        match &self.lambda {
            Some(lambda) => (lambda.batch_bytes as u64, lambda.interval_ms),
            None => (UNBATCHED_BYTES, 0),
        }
    }

    /// Runs every record through the pipeline: the records to write, in
    /// order, each with the arrival of the record it came from, and the
    /// failures.
    pub fn run(&self, inputs: &[Input<'_>]) -> (Vec<(u64, Vec<u8>)>, Vec<Failure>) {
        let (records, failures) = self.run_keyed(inputs);
        (
            records
                .into_iter()
                .map(|r| (r.arrival_ms, r.data))
                .collect(),
            failures,
        )
    }

    /// `run`, keeping the partition keys a Lambda gave each record.
    pub fn run_keyed(&self, inputs: &[Input<'_>]) -> (Vec<Processed>, Vec<Failure>) {
        let mut failures = Vec::new();
        // (arrival, raw input, record) after the record-local steps.
        let mut staged: Vec<(u64, &[u8], Vec<u8>)> = Vec::new();
        for input in inputs {
            match self.local_steps(input.data) {
                Ok(records) => staged.extend(
                    records
                        .into_iter()
                        .map(|r| (input.arrival_ms, input.data, r)),
                ),
                Err((code, message)) => failures.push(Failure {
                    arrival_ms: input.arrival_ms,
                    raw: input.data.to_vec(),
                    code,
                    message,
                    attempts: 1,
                    lambda_arn: None,
                }),
            }
        }
        let mut records = match &self.lambda {
            None => staged
                .into_iter()
                .map(|(arrival_ms, _, data)| Processed {
                    arrival_ms,
                    data,
                    lambda_keys: None,
                })
                .collect(),
            Some(lambda) => lambda.transform(staged, &mut failures),
        };
        if let Some(delimiter) = &self.delimiter {
            for record in &mut records {
                record.data.extend_from_slice(delimiter);
            }
        }
        (records, failures)
    }

    fn local_steps(&self, data: &[u8]) -> Result<Vec<Vec<u8>>, (String, String)> {
        let mut bytes = data.to_vec();
        if self.gunzip {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&bytes[..])
                .read_to_end(&mut out)
                .map_err(|e| {
                    (
                        "Decompression.Failed".to_string(),
                        format!("the record is not GZIP: {e}"),
                    )
                })?;
            bytes = out;
        }
        let mut records = vec![bytes];
        if self.cloudwatch_messages {
            records = cloudwatch_messages(&records[0])?;
        }
        match &self.deaggregate {
            None => Ok(records),
            Some(SubRecords::Delimited(delimiter)) => Ok(records
                .iter()
                .flat_map(|r| split_delimited(r, delimiter))
                .collect()),
            Some(SubRecords::Kpl) => Ok(records
                .iter()
                .flat_map(|r| match runnel_streams::aggregated::deaggregate(r) {
                    Some(users) => users.into_iter().map(<[u8]>::to_vec).collect(),
                    None => vec![r.clone()],
                })
                .collect()),
            Some(SubRecords::Json) => {
                let mut out = Vec::new();
                for record in &records {
                    out.extend(split_json(record)?);
                }
                Ok(out)
            }
        }
    }
}

/// The `message` of each event of a CloudWatch Logs subscription record;
/// control messages carry none.
fn cloudwatch_messages(data: &[u8]) -> Result<Vec<Vec<u8>>, (String, String)> {
    let value: Value = serde_json::from_slice(data).map_err(|e| {
        (
            "CloudWatchLogProcessing.Failed".to_string(),
            format!("the record is not a CloudWatch Logs message: {e}"),
        )
    })?;
    match value.get("messageType").and_then(Value::as_str) {
        Some("CONTROL_MESSAGE") => Ok(Vec::new()),
        Some("DATA_MESSAGE") => Ok(value
            .get("logEvents")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|event| event.get("message").and_then(Value::as_str))
            .map(|m| m.as_bytes().to_vec())
            .collect()),
        _ => Err((
            "CloudWatchLogProcessing.Failed".to_string(),
            "the record has no messageType of DATA_MESSAGE or CONTROL_MESSAGE".to_string(),
        )),
    }
}

/// The pieces of `data` between `delimiter`s; an empty last piece (a
/// trailing delimiter) is not a record.
fn split_delimited(data: &[u8], delimiter: &[u8]) -> Vec<Vec<u8>> {
    let mut pieces = Vec::new();
    let mut rest = data;
    while let Some(at) = memchr::memmem::find(rest, delimiter) {
        pieces.push(rest[..at].to_vec());
        rest = &rest[at + delimiter.len()..];
    }
    if !rest.is_empty() {
        pieces.push(rest.to_vec());
    }
    pieces
}

/// Concatenated JSON objects (`{..}{..}`, any whitespace between) as one
/// record each.
fn split_json(data: &[u8]) -> Result<Vec<Vec<u8>>, (String, String)> {
    let mut out = Vec::new();
    let mut stream =
        serde_json::Deserializer::from_slice(data).into_iter::<serde::de::IgnoredAny>();
    let mut start = 0;
    while let Some(item) = stream.next() {
        item.map_err(|e| {
            (
                "RecordDeAggregation.Failed".to_string(),
                format!("the record is not concatenated JSON: {e}"),
            )
        })?;
        let end = stream.byte_offset();
        let text = data[start..end].trim_ascii();
        out.push(text.to_vec());
        start = end;
    }
    Ok(out)
}

impl Lambda {
    /// Sends records in invocations of at most `batch_bytes`; each record
    /// comes back `Ok` (with its new data), `Dropped`, or failed.
    fn transform(
        &self,
        staged: Vec<(u64, &[u8], Vec<u8>)>,
        failures: &mut Vec<Failure>,
    ) -> Vec<Processed> {
        let mut out = Vec::new();
        let mut start = 0;
        while start < staged.len() {
            let mut end = start;
            let mut bytes = 0;
            while end < staged.len()
                && (end == start || bytes + staged[end].2.len() <= self.batch_bytes)
            {
                bytes += staged[end].2.len();
                end += 1;
            }
            let batch = &staged[start..end];
            match self.invoke(batch) {
                Ok((results, attempts)) => {
                    for (i, (arrival, raw, data)) in batch.iter().enumerate() {
                        match results.get(&format!("{i}")) {
                            Some(Ok(Some((new, keys)))) => out.push(Processed {
                                arrival_ms: *arrival,
                                data: new.clone(),
                                lambda_keys: keys.clone(),
                            }),
                            Some(Ok(None)) => {}
                            Some(Err(code)) => failures.push(self.failure(
                                *arrival,
                                raw,
                                data,
                                code,
                                "the function answered ProcessingFailed",
                                attempts,
                            )),
                            None => failures.push(self.failure(
                                *arrival,
                                raw,
                                data,
                                "Lambda.MissingRecordId",
                                "the function's reply did not include this record",
                                attempts,
                            )),
                        }
                    }
                }
                Err((message, attempts)) => {
                    for (arrival, raw, data) in batch {
                        failures.push(self.failure(
                            *arrival,
                            raw,
                            data,
                            "Lambda.FunctionError",
                            &message,
                            attempts,
                        ));
                    }
                }
            }
            start = end;
        }
        out
    }

    fn failure(
        &self,
        arrival: u64,
        raw: &[u8],
        _data: &[u8],
        code: &str,
        message: &str,
        attempts: u32,
    ) -> Failure {
        Failure {
            arrival_ms: arrival,
            raw: raw.to_vec(),
            code: code.to_string(),
            message: message.to_string(),
            attempts,
            lambda_arn: Some(self.arn.clone()),
        }
    }

    /// One invocation, retried `retries` times; each record's result by
    /// its id: new data, dropped (None), or a failure code.
    #[allow(clippy::type_complexity, reason = "one private call site")]
    fn invoke(
        &self,
        batch: &[(u64, &[u8], Vec<u8>)],
    ) -> Result<(HashMap<String, Reply>, u32), (String, u32)> {
        let event = json!({
            "invocationId": format!("{:x}", batch.len()),
            "records": batch.iter().enumerate().map(|(i, (arrival, _, data))| json!({
                "recordId": format!("{i}"),
                "approximateArrivalTimestamp": arrival,
                "data": STANDARD.encode(data),
            })).collect::<Vec<_>>(),
        });
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let mut last = String::new();
        for attempt in 1..=self.retries + 1 {
            match call(&agent, &self.url, &event) {
                Ok(reply) => return Ok((reply, attempt)),
                Err(message) => last = message,
            }
            std::thread::sleep(Duration::from_millis(100 * u64::from(attempt)));
        }
        Err((
            format!("invoking {} at {}: {last}", self.arn, self.url),
            self.retries + 1,
        ))
    }
}

/// One record's answer from a Lambda: new data with the partition keys it
/// named, dropped (None), or a failure code.
type Reply = Result<Option<(Vec<u8>, Option<Keys>)>, String>;

fn call(agent: &ureq::Agent, url: &str, event: &Value) -> Result<HashMap<String, Reply>, String> {
    let mut response = agent
        .post(url)
        .header("Content-Type", "application/json")
        .send(event.to_string())
        .map_err(|e| e.to_string())?;
    if response.status().as_u16() != 200 {
        return Err(format!("the function answered HTTP {}", response.status()));
    }
    let reply: Value = response
        .body_mut()
        .with_config()
        .limit(64 * 1024 * 1024)
        .read_json()
        .map_err(|e| format!("the function's reply is not JSON: {e}"))?;
    let records = reply
        .get("records")
        .and_then(Value::as_array)
        .ok_or("the function's reply has no records list")?;
    let mut results = HashMap::new();
    for record in records {
        let id = record
            .get("recordId")
            .and_then(Value::as_str)
            .ok_or("a reply record has no recordId")?;
        let result = match record.get("result").and_then(Value::as_str) {
            Some("Ok") => {
                let data = record.get("data").and_then(Value::as_str).unwrap_or("");
                let data = STANDARD
                    .decode(data)
                    .map_err(|_| format!("record {id}'s data is not base64"))?;
                Ok(Some((data, lambda_partition_keys(record))))
            }
            Some("Dropped") => Ok(None),
            Some("ProcessingFailed") => Err("Lambda.ProcessingFailed".to_string()),
            other => {
                return Err(format!(
                    "record {id} has result {other:?}, not Ok, Dropped or ProcessingFailed"
                ));
            }
        };
        results.insert(id.to_string(), result);
    }
    Ok(results)
}

/// `metadata.partitionKeys` of a reply record: each value a string (a
/// number or boolean is taken as its text).
fn lambda_partition_keys(record: &Value) -> Option<Keys> {
    let keys = record.get("metadata")?.get("partitionKeys")?.as_object()?;
    Some(
        keys.iter()
            .filter_map(|(key, value)| {
                let value = match value {
                    Value::String(text) => text.clone(),
                    Value::Number(_) | Value::Bool(_) => value.to_string(),
                    _ => return None,
                };
                Some((key.clone(), value))
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn pipeline(processors: Value) -> Pipeline {
        Pipeline::parse(
            Some(&json!({"Enabled": true, "Processors": processors})),
            &HashMap::new(),
        )
        .unwrap()
        .unwrap()
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn cloudwatch_subscription_records_become_their_messages() {
        let p = pipeline(json!([
            {"Type": "Decompression", "Parameters": [{"ParameterName": "CompressionFormat", "ParameterValue": "GZIP"}]},
            {"Type": "CloudWatchLogProcessing", "Parameters": [{"ParameterName": "DataMessageExtraction", "ParameterValue": "true"}]},
            {"Type": "AppendDelimiterToRecord"}
        ]));
        let data = gzip(br#"{"messageType":"DATA_MESSAGE","logEvents":[{"id":"1","timestamp":1,"message":"first"},{"id":"2","timestamp":2,"message":"second"}]}"#);
        let control = gzip(
            br#"{"messageType":"CONTROL_MESSAGE","logEvents":[{"message":"CWL CONTROL MESSAGE"}]}"#,
        );
        let (records, failures) = p.run(&[
            Input {
                arrival_ms: 1,
                data: &data,
            },
            Input {
                arrival_ms: 2,
                data: &control,
            },
            Input {
                arrival_ms: 3,
                data: b"not gzip",
            },
        ]);
        assert_eq!(
            records,
            vec![(1, b"first\n".to_vec()), (1, b"second\n".to_vec())]
        );
        assert_eq!(failures.len(), 1);
        assert_eq!(failures[0].code, "Decompression.Failed");
        assert_eq!(failures[0].raw, b"not gzip");
    }

    #[test]
    fn delimited_records_are_split_on_their_delimiter() {
        let p = pipeline(json!([{"Type": "RecordDeAggregation", "Parameters": [
            {"ParameterName": "SubRecordType", "ParameterValue": "DELIMITED"},
            {"ParameterName": "Delimiter", "ParameterValue": STANDARD.encode("||")}]}]));
        let (records, failures) = p.run(&[Input {
            arrival_ms: 1,
            data: b"a||bc||||d||",
        }]);
        assert!(failures.is_empty());
        let data: Vec<Vec<u8>> = records.into_iter().map(|(_, r)| r).collect();
        assert_eq!(
            data,
            vec![b"a".to_vec(), b"bc".to_vec(), b"".to_vec(), b"d".to_vec()]
        );
    }

    #[test]
    fn a_custom_delimiter_is_appended_to_each_record() {
        let p = pipeline(json!([{"Type": "AppendDelimiterToRecord", "Parameters": [
            {"ParameterName": "Delimiter", "ParameterValue": STANDARD.encode(",\t")}]}]));
        let (records, _) = p.run(&[
            Input {
                arrival_ms: 1,
                data: b"a",
            },
            Input {
                arrival_ms: 2,
                data: b"b",
            },
        ]);
        let data: Vec<Vec<u8>> = records.into_iter().map(|(_, r)| r).collect();
        assert_eq!(data, vec![b"a,\t".to_vec(), b"b,\t".to_vec()]);
        let (before, after) = p.split_at_partitioning();
        assert!(!before.has_steps_before_partitioning());
        assert!(after.is_some());
    }

    #[test]
    fn concatenated_json_is_split_into_records() {
        let p = pipeline(
            json!([{"Type": "RecordDeAggregation", "Parameters": [{"ParameterName": "SubRecordType", "ParameterValue": "JSON"}]}]),
        );
        let (records, failures) = p.run(&[Input {
            arrival_ms: 1,
            data: b"{\"a\":1}{\"b\":[2]} \n{\"c\":\"}{\"}",
        }]);
        assert!(failures.is_empty());
        assert_eq!(
            records,
            vec![
                (1, b"{\"a\":1}".to_vec()),
                (1, b"{\"b\":[2]}".to_vec()),
                (1, b"{\"c\":\"}{\"}".to_vec())
            ]
        );
    }

    proptest::proptest! {
        /// Whatever bytes a producer sends, processing answers with
        /// records or one failure per record, never a panic.
        #[test]
        fn any_bytes_are_processed_or_reported(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512), kpl in proptest::prelude::any::<bool>()) {
            let pipelines = [
                pipeline(json!([{"Type": "Decompression"}, {"Type": "CloudWatchLogProcessing", "Parameters": [{"ParameterName": "DataMessageExtraction", "ParameterValue": "true"}]}])),
                pipeline(json!([{"Type": "RecordDeAggregation", "Parameters": [{"ParameterName": "SubRecordType", "ParameterValue": if kpl { "KPL" } else { "JSON" }}]}, {"Type": "AppendDelimiterToRecord"}])),
            ];
            let gz = gzip(&data);
            for p in &pipelines {
                for input in [&data[..], &gz[..]] {
                    let (_, failures) = p.run(&[Input { arrival_ms: 1, data: input }]);
                    proptest::prop_assert!(failures.len() <= 1);
                }
            }
        }

        #[test]
        fn any_prefix_text_parses_or_is_refused(text in ".{0,64}") {
            if let Ok(prefix) = crate::prefix::Prefix::parse(&text) {
                let _ = prefix.evaluate(&crate::prefix::KeyContext {
                    oldest_arrival_ms: 1_796_454_489_123,
                    zone: None,
                    random: "r",
                    error_output_type: None,
                    partition: None,
                });
            }
        }
    }

    #[test]
    fn what_is_not_built_is_refused_by_name() {
        for (processors, words) in [
            (
                json!([{"Type": "MetadataExtraction"}]),
                "MetadataExtraction",
            ),
            (
                json!([{"Type": "Lambda", "Parameters": [{"ParameterName": "LambdaArn", "ParameterValue": "arn:x"}]}]),
                "arn:x",
            ),
            (
                json!([{"Type": "AppendDelimiterToRecord", "Parameters": [{"ParameterName": "Delimiter", "ParameterValue": ","}]}]),
                "Delimiter",
            ),
        ] {
            let error = Pipeline::parse(
                Some(&json!({"Enabled": true, "Processors": processors})),
                &HashMap::new(),
            )
            .unwrap_err()
            .to_string();
            assert!(error.contains(words), "{error}");
        }
    }
}
