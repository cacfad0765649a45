//! Dynamic partitioning: a jq query gives each record its keys, each key
//! set is its own buffer with the stream's hints, delivered under the
//! prefix its keys fill in; partitions survive a restart.

use std::time::Duration;

use serde_json::{Value, json};

use crate::{Fixture, create, eventually, objects};

fn destination(interval: u64) -> Value {
    json!({"BucketARN": "arn:aws:s3:::lake", "RoleARN": "r",
           "Prefix": "customer=!{partitionKeyFromQuery:customer}/",
           "ErrorOutputPrefix": "errors/!{firehose:error-output-type}/",
           "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": interval},
           "DynamicPartitioningConfiguration": {"Enabled": true},
           "ProcessingConfiguration": {"Enabled": true, "Processors": [
               {"Type": "MetadataExtraction", "Parameters": [
                   {"ParameterName": "MetadataExtractionQuery", "ParameterValue": "{customer: .customer}"},
                   {"ParameterName": "JsonParsingEngine", "ParameterValue": "JQ-1.6"}]},
               {"Type": "AppendDelimiterToRecord"}]}})
}

fn record(customer: &str, n: usize, pad: usize) -> Vec<u8> {
    json!({"customer": customer, "n": n, "pad": "x".repeat(pad)})
        .to_string()
        .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_partition_is_its_own_buffer_with_the_hints() {
    let mut fixture = Fixture::new();
    {
        let firehose = fixture.open();
        create(&firehose, "orders", destination(900));
        // A's records fill a 1 MiB object at once; B's wait for the interval.
        let mut records: Vec<Vec<u8>> = (0..120).map(|n| record("a", n, 10_000)).collect();
        records.push(record("b", 0, 10));
        records.push(record("b", 1, 10));
        records.push(b"not json".to_vec());
        let outcomes = firehose.put("orders", records).await.unwrap();
        assert!(
            outcomes
                .iter()
                .all(|o| matches!(o, runnel_firehose::Accepted::Buffered(_)))
        );
        let root = fixture.buckets().join("lake");
        assert!(eventually(Duration::from_secs(10), || !objects(&root).is_empty()).await);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let keys: Vec<String> = objects(&root).into_iter().map(|(k, _)| k).collect();
        assert!(
            keys.iter().all(|k| k.starts_with("customer=a/orders-1-")),
            "{keys:?}"
        );
    }
    // The partitions and what they hold survive a restart.
    fixture.reopen_store().await;
    let firehose = fixture.open();
    assert!(firehose.figures()[0].1.buffered_bytes > 0);
    firehose
        .update_destination(
            "orders",
            "1",
            runnel_firehose::DESTINATION_ID,
            &destination(0)["BufferingHints"]
                .clone()
                .as_object()
                .map(|h| json!({"BufferingHints": h}))
                .unwrap(),
        )
        .unwrap();
    let root = fixture.buckets().join("lake");
    assert!(
        eventually(Duration::from_secs(10), || firehose.figures()[0]
            .1
            .buffered_bytes
            == 0)
        .await
    );
    let found = objects(&root);
    assert_eq!(lines_under(&found, "customer=a/").len(), 120);
    let b = lines_under(&found, "customer=b/");
    assert_eq!(b.len(), 2);
    assert!(b.iter().all(|r| r["customer"] == "b"));
    let failed = lines_under(&found, "errors/partitioning-failed/");
    assert_eq!(
        failed.len(),
        1,
        "{:?}",
        found.iter().map(|(k, _)| k).collect::<Vec<_>>()
    );
    assert_eq!(
        failed[0]["errorCode"],
        "DynamicPartitioning.MetadataExtractionFailed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitioning_needs_a_query_and_a_key_in_the_prefix() {
    let fixture = Fixture::new();
    let firehose = fixture.open();
    for (change, words) in [
        (json!({"Prefix": "static/"}), "partitionKeyFromQuery"),
        (json!({"ErrorOutputPrefix": null}), "ErrorOutputPrefix"),
        (
            json!({"ProcessingConfiguration": {"Enabled": false}}),
            "MetadataExtraction",
        ),
        (
            json!({"Prefix": "c=!{partitionKeyFromLambda:c}/"}),
            "partitionKeyFromLambda",
        ),
    ] {
        let mut config = destination(60);
        for (k, v) in change.as_object().unwrap() {
            if v.is_null() {
                config.as_object_mut().unwrap().remove(k);
            } else {
                config[k] = v.clone();
            }
        }
        let error = firehose
            .create(runnel_firehose::CreateSpec {
                name: "refused".into(),
                stream_type: "DirectPut".into(),
                destination: config,
                destination_kind: runnel_firehose::DestinationKind::ExtendedS3,
                source: None,
                encryption: None,
                tags: Default::default(),
            })
            .unwrap_err()
            .to_string();
        assert!(error.contains(words), "{words}: {error}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_partitions_make_room_and_busy_ones_are_a_limit() {
    let fixture = Fixture::new();
    let firehose = fixture.open();
    let max = runnel_firehose::MAX_ACTIVE_PARTITIONS;
    // Partitions that delivered everything are idle: new keys take their place.
    create(&firehose, "rolling", destination(0));
    for round in 0..2 {
        let records: Vec<Vec<u8>> = (0..max)
            .map(|n| record(&format!("r{round}-{n}"), n, 1))
            .collect();
        firehose.put("rolling", records).await.unwrap();
        assert!(
            eventually(Duration::from_secs(30), || firehose.figures()[0]
                .1
                .buffered_bytes
                == 0)
            .await
        );
    }
    let root = fixture.buckets().join("lake");
    let found = objects(&root);
    assert_eq!(
        found
            .iter()
            .filter(|(k, _)| k.starts_with("customer=r1-"))
            .count(),
        max
    );
    assert!(found.iter().all(|(k, _)| !k.starts_with("errors/")));
    // Busy partitions are a limit: past it, records go to partitioning-failed.
    create(
        &firehose,
        "busy",
        json!({"BucketARN": "arn:aws:s3:::busy", "RoleARN": "r",
        "Prefix": "c=!{partitionKeyFromQuery:customer}/", "ErrorOutputPrefix": "errors/!{firehose:error-output-type}/",
        "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 900},
        "DynamicPartitioningConfiguration": {"Enabled": true},
        "ProcessingConfiguration": {"Enabled": true, "Processors": [{"Type": "MetadataExtraction", "Parameters": [
            {"ParameterName": "MetadataExtractionQuery", "ParameterValue": "{customer: .customer}"}]}]}}),
    );
    let records: Vec<Vec<u8>> = (0..=max).map(|n| record(&format!("b{n}"), n, 1)).collect();
    firehose.put("busy", records).await.unwrap();
    firehose
        .update_destination(
            "busy",
            "1",
            runnel_firehose::DESTINATION_ID,
            &json!({"BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0}}),
        )
        .unwrap();
    let busy = fixture.buckets().join("busy");
    assert!(eventually(Duration::from_secs(30), || objects(&busy).len() == max + 1).await);
    assert_eq!(
        objects(&busy)
            .iter()
            .filter(|(k, _)| k.starts_with("errors/partitioning-failed/"))
            .count(),
        1
    );
}

/// Keys from a Lambda: each record's `region` as `metadata.partitionKeys`,
/// none for region "none", and records saying "fail" failed.
fn lambda_destination(url_arn: &str, lambda_interval: u64) -> Value {
    json!({"BucketARN": "arn:aws:s3:::lake", "RoleARN": "r",
           "Prefix": "region=!{partitionKeyFromLambda:region}/",
           "ErrorOutputPrefix": "errors/!{firehose:error-output-type}/",
           "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
           "DynamicPartitioningConfiguration": {"Enabled": true},
           "ProcessingConfiguration": {"Enabled": true, "Processors": [
               {"Type": "RecordDeAggregation", "Parameters": [
                   {"ParameterName": "SubRecordType", "ParameterValue": "JSON"}]},
               {"Type": "Lambda", "Parameters": [
                   {"ParameterName": "LambdaArn", "ParameterValue": url_arn},
                   {"ParameterName": "BufferIntervalInSeconds", "ParameterValue": lambda_interval.to_string()}]},
               {"Type": "AppendDelimiterToRecord"}]}})
}

fn region_lambda() -> String {
    crate::processing::lambda_receiver_with(false, |text| {
        let record: Value = serde_json::from_str(text).unwrap();
        let region = record["region"].as_str().unwrap_or("none").to_string();
        let data = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, text);
        if text.contains("fail") {
            json!({"result": "ProcessingFailed", "data": data})
        } else if region == "none" {
            json!({"result": "Ok", "data": data})
        } else {
            json!({"result": "Ok", "data": data,
                   "metadata": {"partitionKeys": {"region": region}}})
        }
    })
}

fn lines_under(found: &[(String, Vec<u8>)], prefix: &str) -> Vec<Value> {
    found
        .iter()
        .filter(|(k, _)| k.starts_with(prefix))
        .flat_map(|(_, body)| {
            body.split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .map(|l| serde_json::from_slice(l).unwrap())
                .collect::<Vec<Value>>()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lambda_names_the_partitions_of_de_aggregated_records_and_routing_survives_a_restart() {
    let mut fixture = Fixture::new();
    let arn = "arn:aws:lambda:us-east-1:000000000000:function:region";
    let url = region_lambda();
    let open = |fixture: &Fixture| {
        let mut config = runnel_firehose::FirehoseConfig::new(fixture.buckets());
        config.lookups.lambdas = std::collections::HashMap::from([(arn.to_string(), url.clone())]);
        runnel_firehose::Firehose::open(fixture.store.as_ref().unwrap().db().clone(), config)
            .unwrap()
    };
    let root = fixture.buckets().join("lake");
    {
        let firehose = open(&fixture);
        create(&firehose, "events", lambda_destination(arn, 0));
        // Concatenated JSON: each sub-record is partitioned on its own.
        let records = vec![
            br#"{"region":"eu","n":1}{"region":"us","n":2}"#.to_vec(),
            br#"{"region":"eu","n":3}"#.to_vec(),
            br#"{"n":4}"#.to_vec(),
            br#"{"region":"us","n":5,"fail":true}"#.to_vec(),
        ];
        firehose.put("events", records).await.unwrap();
        assert!(
            eventually(Duration::from_secs(10), || {
                let found = objects(&root);
                lines_under(&found, "region=").len() == 3
                    && lines_under(&found, "errors/").len() == 2
            })
            .await,
            "{:?}",
            objects(&root).iter().map(|(k, _)| k).collect::<Vec<_>>()
        );
        let found = objects(&root);
        let eu = lines_under(&found, "region=eu/");
        assert_eq!(
            eu.iter()
                .map(|r| r["n"].as_u64().unwrap())
                .collect::<Vec<_>>(),
            [1, 3]
        );
        let us = lines_under(&found, "region=us/");
        assert_eq!(
            us.iter()
                .map(|r| r["n"].as_u64().unwrap())
                .collect::<Vec<_>>(),
            [2]
        );
        let unkeyed = lines_under(&found, "errors/partitioning-failed/");
        assert_eq!(unkeyed.len(), 1);
        let failed = lines_under(&found, "errors/processing-failed/");
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0]["errorCode"], "Lambda.ProcessingFailed");

        // With the Lambda's interval at 900 s, records wait in the stream's
        // own buffer, unrouted, across a restart.
        firehose
            .update_destination(
                "events",
                "1",
                runnel_firehose::DESTINATION_ID,
                &json!({"ProcessingConfiguration": lambda_destination(arn, 900)["ProcessingConfiguration"]}),
            )
            .unwrap();
        let later: Vec<Vec<u8>> = (10..20)
            .map(|n| format!(r#"{{"region":"ap","n":{n}}}"#).into_bytes())
            .collect();
        firehose.put("events", later).await.unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(lines_under(&objects(&root), "region=ap/").is_empty());
    }
    fixture.reopen_store().await;
    let firehose = open(&fixture);
    firehose
        .update_destination(
            "events",
            "2",
            runnel_firehose::DESTINATION_ID,
            &json!({"ProcessingConfiguration": lambda_destination(arn, 0)["ProcessingConfiguration"]}),
        )
        .unwrap();
    assert!(
        eventually(Duration::from_secs(10), || lines_under(
            &objects(&root),
            "region=ap/"
        )
        .len()
            >= 10)
        .await
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ap = lines_under(&objects(&root), "region=ap/");
    assert_eq!(
        ap.iter()
            .map(|r| r["n"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        (10..20).collect::<Vec<_>>()
    );
}
