//! Processing before delivery: a Lambda transform answered by a real HTTP
//! receiver speaking Lambda's Firehose event and reply, and records that
//! fail processing written under the error prefix.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use runnel_firehose::{Firehose, FirehoseConfig};
use serde_json::{Value, json};

use crate::{Fixture, create, eventually, objects};

/// Answers each invocation: data upper-cased, records saying "drop"
/// dropped, records saying "fail" failed; or, when `garbage`, with a 200
/// whose body is not a Lambda reply. Returns its URL.
fn lambda_receiver(garbage: bool) -> String {
    lambda_receiver_with(garbage, |text| {
        let result = if text.contains("drop") {
            "Dropped"
        } else if text.contains("fail") {
            "ProcessingFailed"
        } else {
            "Ok"
        };
        json!({"result": result, "data": STANDARD.encode(text.to_uppercase())})
    })
}

/// A Lambda over HTTP: each record's answer (`result`, `data`, maybe
/// `metadata`) is `answer` of its text. Returns its URL.
pub fn lambda_receiver_with(
    garbage: bool,
    answer: impl Fn(&str) -> Value + Send + 'static,
) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/invoke", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = value.trim().parse().unwrap();
                }
                if line == "\r\n" {
                    break;
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let event: Value = serde_json::from_slice(&body).unwrap();
            let records: Vec<Value> = event["records"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    let data = STANDARD.decode(r["data"].as_str().unwrap()).unwrap();
                    let mut reply = answer(&String::from_utf8(data).unwrap());
                    reply["recordId"] = r["recordId"].clone();
                    reply
                })
                .collect();
            let reply = if garbage {
                "<html>surprise</html>".to_string()
            } else {
                json!({"records": records}).to_string()
            };
            let mut stream = stream;
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                reply.len()
            );
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lambda_transform_rewrites_drops_and_fails_records() {
    let fixture = Fixture::new();
    let arn = "arn:aws:lambda:us-east-1:000000000000:function:upper";
    let mut config = FirehoseConfig::new(fixture.buckets());
    config.lookups.lambdas = HashMap::from([(arn.to_string(), lambda_receiver(false))]);
    let firehose = Firehose::open(fixture.store.as_ref().unwrap().db().clone(), config).unwrap();
    create(
        &firehose,
        "t",
        json!({"BucketARN": "arn:aws:s3:::lake", "RoleARN": "r",
               "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
               "ErrorOutputPrefix": "errors/!{firehose:error-output-type}/",
               "S3BackupMode": "Enabled",
               "S3BackupConfiguration": {"BucketARN": "arn:aws:s3:::raw", "RoleARN": "r", "Prefix": "source/"},
               "ProcessingConfiguration": {"Enabled": true, "Processors": [
                   {"Type": "Lambda", "Parameters": [{"ParameterName": "LambdaArn", "ParameterValue": arn}]},
                   {"Type": "AppendDelimiterToRecord"}]}}),
    );
    let records: Vec<Vec<u8>> = ["one", "please drop", "two", "fail me"]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
    firehose.put("t", records).await.unwrap();
    let root = fixture.buckets().join("lake");
    assert!(eventually(Duration::from_secs(10), || objects(&root).len() == 2).await);
    let found = objects(&root);
    let (error_key, error_body) = found
        .iter()
        .find(|(k, _)| k.starts_with("errors/"))
        .unwrap();
    assert!(
        error_key.starts_with("errors/processing-failed/"),
        "{error_key}"
    );
    let failed: Value =
        serde_json::from_slice(error_body.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert_eq!(failed["errorCode"], "Lambda.ProcessingFailed");
    assert_eq!(failed["lambdaArn"], arn);
    assert_eq!(
        STANDARD
            .decode(failed["rawData"].as_str().unwrap())
            .unwrap(),
        b"fail me"
    );
    let (_, body) = found
        .iter()
        .find(|(k, _)| !k.starts_with("errors/"))
        .unwrap();
    assert_eq!(body, b"ONE\nTWO\n");
    // S3BackupMode Enabled: the source records as they came.
    let raw = objects(&fixture.buckets().join("raw"));
    assert_eq!(raw.len(), 1);
    assert!(raw[0].0.starts_with("source/"), "{}", raw[0].0);
    assert_eq!(raw[0].1, b"oneplease droptwofail me");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lambda_that_answers_garbage_sends_its_records_to_processing_failed() {
    let fixture = Fixture::new();
    let arn = "arn:aws:lambda:us-east-1:000000000000:function:broken";
    let mut config = FirehoseConfig::new(fixture.buckets());
    config.lookups.lambdas = HashMap::from([(arn.to_string(), lambda_receiver(true))]);
    let firehose = Firehose::open(fixture.store.as_ref().unwrap().db().clone(), config).unwrap();
    create(
        &firehose,
        "broken",
        json!({"BucketARN": "arn:aws:s3:::lake", "RoleARN": "r",
               "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
               "ProcessingConfiguration": {"Enabled": true, "Processors": [
                   {"Type": "Lambda", "Parameters": [
                       {"ParameterName": "LambdaArn", "ParameterValue": arn},
                       {"ParameterName": "NumberOfRetries", "ParameterValue": "1"}]}]}}),
    );
    firehose
        .put("broken", vec![b"a".to_vec(), b"b".to_vec()])
        .await
        .unwrap();
    let root = fixture.buckets().join("lake");
    assert!(eventually(Duration::from_secs(10), || objects(&root).len() == 1).await);
    let (key, body) = objects(&root).remove(0);
    assert!(key.starts_with("processing-failed/"), "{key}");
    let failed: Vec<Value> = body
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(failed.len(), 2);
    assert_eq!(failed[0]["errorCode"], "Lambda.FunctionError");
    assert_eq!(failed[0]["attemptsMade"], 2);
    assert!(
        failed[0]["errorMessage"]
            .as_str()
            .unwrap()
            .contains("not JSON"),
        "{}",
        failed[0]
    );
    assert!(
        eventually(Duration::from_secs(5), || firehose.figures()[0]
            .1
            .buffered_bytes
            == 0)
        .await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kpl_aggregated_records_are_delivered_as_their_user_records() {
    let fixture = Fixture::new();
    let firehose = fixture.open();
    create(
        &firehose,
        "kpl",
        json!({"BucketARN": "arn:aws:s3:::kpl", "RoleARN": "r",
               "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
               "ProcessingConfiguration": {"Enabled": true, "Processors": [
                   {"Type": "RecordDeAggregation", "Parameters": [{"ParameterName": "SubRecordType", "ParameterValue": "KPL"}]},
                   {"Type": "AppendDelimiterToRecord"}]}}),
    );
    // Aggregated by the KPL's own format, as aws-kinesis-agg writes it.
    let output = std::process::Command::new("python3")
        .args(["-c", "import sys\nfrom aws_kinesis_agg.aggregator import RecordAggregator\na = RecordAggregator()\nfor i in range(3): a.add_user_record('pk', ('user-%d' % i).encode())\npk, ehk, data = a.clear_and_get().get_contents()\nsys.stdout.buffer.write(data)"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    firehose
        .put("kpl", vec![output.stdout, b"plain".to_vec()])
        .await
        .unwrap();
    let root = fixture.buckets().join("kpl");
    assert!(eventually(Duration::from_secs(10), || !objects(&root).is_empty()).await);
    assert_eq!(objects(&root)[0].1, b"user-0\nuser-1\nuser-2\nplain\n");
}
