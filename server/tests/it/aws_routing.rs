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

/// Sends raw HTTP/1.1 bytes and returns the status, headers and body of the
/// answer (the server closes the connection after it).
fn raw_http(server: &RunnelServer, head: &str, body: &[u8]) -> (u16, String, Vec<u8>) {
    use std::io::{Read, Write};
    let address = server.url().trim_start_matches("http://").to_string();
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    // The server may answer (and close) before it has read everything.
    let _ = stream.write_all(body);
    let _ = stream.flush();
    let mut answer = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
        }
        if let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&answer[..end]).to_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .and_then(|l| l.trim().parse::<usize>().ok());
            if length.is_some_and(|l| answer.len() >= end + 4 + l) {
                break;
            }
        }
    }
    let end = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP answer");
    let head = String::from_utf8_lossy(&answer[..end]).to_string();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head, answer[end + 4..].to_vec())
}

fn aws_head(content_type: &str, extra: &str) -> String {
    format!(
        "POST / HTTP/1.1\r\nHost: localhost\r\nX-Amz-Target: Kinesis_20131202.PutRecords\r\nContent-Type: {content_type}\r\n{extra}\r\n"
    )
}

#[test]
fn errors_before_the_handler_come_in_the_aws_shape_and_encoding() {
    let server = RunnelServer::start();
    // A body over the limit, announced.
    let (status, head, body) = raw_http(
        &server,
        &aws_head(
            "application/x-amz-json-1.1",
            &format!("Content-Length: {}\r\n", 17 * 1024 * 1024),
        ),
        &[],
    );
    assert_eq!(status, 413, "{head}");
    let error: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(error["__type"], "RequestEntityTooLargeException");
    // The same in CBOR.
    let (status, _, body) = raw_http(
        &server,
        &aws_head(
            "application/x-amz-cbor-1.1",
            &format!("Content-Length: {}\r\n", 17 * 1024 * 1024),
        ),
        &[],
    );
    assert_eq!(status, 413);
    let value: ciborium::Value = ciborium::from_reader(&body[..]).expect("a CBOR error body");
    assert!(format!("{value:?}").contains("RequestEntityTooLargeException"));
    // A chunked body that grows past the limit.
    let chunk = vec![b' '; 1 << 20];
    let mut chunked = Vec::new();
    for _ in 0..17 {
        chunked.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        chunked.extend_from_slice(&chunk);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let (status, _, body) = raw_http(
        &server,
        &aws_head(
            "application/x-amz-json-1.1",
            "Transfer-Encoding: chunked\r\n",
        ),
        &chunked,
    );
    assert_eq!(status, 413);
    assert!(String::from_utf8_lossy(&body).contains("RequestEntityTooLargeException"));
    // A broken chunked encoding.
    let (status, _, body) = raw_http(
        &server,
        &aws_head(
            "application/x-amz-json-1.1",
            "Transfer-Encoding: chunked\r\n",
        ),
        b"zz\r\n{}\r\n0\r\n\r\n",
    );
    assert_eq!(status, 400);
    let error: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(error["__type"], "SerializationException", "{error}");
    // The server is still there.
    let (status, _, _) = raw_http(
        &server,
        &aws_head("application/x-amz-json-1.1", "Content-Length: 2\r\n"),
        b"{}",
    );
    assert_eq!(status, 400);
}

/// The largest memory the server has held, from /proc.
fn peak_rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse::<u64>().ok())
        .unwrap()
        / 1024
}

#[test]
fn hostile_bodies_cost_a_bounded_amount_and_are_refused() {
    let server = RunnelServer::start();
    let before = peak_rss_mib(server.pid());
    // 16 MiB of tiny values, deep nesting, and a CBOR array that claims
    // more items than it has, several times over.
    let tiny = format!("[{}0]", "0,".repeat(8 * 1024 * 1024 - 2));
    let deep = "[".repeat(1 << 20);
    let mut claims = vec![0x9bu8];
    claims.extend_from_slice(&u64::MAX.to_be_bytes());
    for _ in 0..3 {
        for (content_type, body) in [
            ("application/x-amz-json-1.1", tiny.as_bytes()),
            ("application/x-amz-json-1.1", deep.as_bytes()),
            ("application/x-amz-cbor-1.1", &claims[..]),
        ] {
            let (status, head, _) = raw_http(
                &server,
                &aws_head(content_type, &format!("Content-Length: {}\r\n", body.len())),
                body,
            );
            assert_eq!(status, 400, "{head}");
        }
    }
    let after = peak_rss_mib(server.pid());
    assert!(
        after < before + 256,
        "decoding hostile bodies took the server from {before} MiB to {after} MiB"
    );
}
