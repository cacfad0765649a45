use crate::harness::{RunnelServer, agent};

#[test]
fn an_unknown_kinesis_operation_gets_the_aws_error_shape_in_json() {
    let server = RunnelServer::start();
    let mut response = agent()
        .post(&server.url())
        .header("X-Amz-Target", "Kinesis_20131202.NoSuchOperation")
        .header("Content-Type", "application/x-amz-json-1.1")
        .send("{}")
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.headers()["content-type"],
        "application/x-amz-json-1.1"
    );
    assert!(response.headers().contains_key("x-amzn-requestid"));
    let body: serde_json::Value = response.body_mut().read_json().unwrap();
    assert_eq!(body["__type"], "UnknownOperationException");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("NoSuchOperation"),
        "{body}"
    );
}

#[test]
fn a_cbor_request_gets_its_error_in_cbor() {
    let server = RunnelServer::start();
    let mut response = agent()
        .post(&server.url())
        .header("X-Amz-Target", "Firehose_20150804.NoSuchOperation")
        .header("Content-Type", "application/x-amz-cbor-1.1")
        .send(&[0xa0u8][..])
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.headers()["content-type"],
        "application/x-amz-cbor-1.1"
    );
    let bytes = response.body_mut().read_to_vec().unwrap();
    let value: ciborium::Value = ciborium::from_reader(&bytes[..]).expect("CBOR error body");
    let map = value.as_map().expect("a CBOR map");
    let field = |name: &str| {
        map.iter()
            .find(|(k, _)| k.as_text() == Some(name))
            .and_then(|(_, v)| v.as_text())
            .map(str::to_string)
    };
    assert_eq!(
        field("__type").as_deref(),
        Some("UnknownOperationException")
    );
    assert!(field("message").unwrap().contains("NoSuchOperation"));
}

#[test]
fn a_post_without_a_target_is_an_unknown_operation() {
    let server = RunnelServer::start();
    let mut response = agent().post(&server.url()).send("{}").unwrap();
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.body_mut().read_json().unwrap();
    assert_eq!(body["__type"], "UnknownOperationException");
    assert_eq!(body["message"], "Missing X-Amz-Target header");
}

#[test]
fn an_unknown_path_is_a_404_in_the_aws_shape() {
    let server = RunnelServer::start();
    let mut response = agent()
        .get(&format!("{}/no/such/path", server.url()))
        .call()
        .unwrap();
    assert_eq!(response.status(), 404);
    let body: serde_json::Value = response.body_mut().read_json().unwrap();
    assert_eq!(body["__type"], "UnknownOperationException");
    assert!(body["message"].as_str().unwrap().contains("/no/such/path"));
}
