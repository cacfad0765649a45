//! What the load generators share: a server under test started on a free
//! port (and stopped when dropped), and AWS JSON requests shaped as SigV4
//! requests (emulators check the shape, not the signature; Runnel ignores
//! both).

#![allow(dead_code, reason = "each bench uses its own part")]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub struct Target {
    pub name: &'static str,
    pub url: String,
    pub child: Child,
    pub _dir: Option<tempfile::TempDir>,
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A release `runnel server` with `args` on a free port and a temporary
/// data dir, once `ready(url)` says it answers.
pub fn start_runnel(args: &[&str], ready: impl Fn(&str) -> bool) -> Option<Target> {
    let dir = tempfile::tempdir().ok()?;
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_runnel"))
        .arg("server")
        .args(args)
        .args(["--log", "warn", "--port"])
        .arg(port.to_string())
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let url = format!("http://127.0.0.1:{port}");
    let target = Target {
        name: "runnel",
        url,
        child,
        _dir: Some(dir),
    };
    wait_until(|| ready(&target.url)).then_some(target)
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(45_678)
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(300)))
        .build()
        .into()
}

/// POSTs an AWS JSON 1.1 request for `target` (`Kinesis_20131202.PutRecords`)
/// of the SigV4 service `service`; the status and the body's text.
pub fn post(
    agent: &ureq::Agent,
    url: &str,
    target: &str,
    service: &str,
    body: &str,
) -> Result<(u16, String), String> {
    let mut response = agent
        .post(url)
        .header("X-Amz-Target", target)
        .header("Content-Type", "application/x-amz-json-1.1")
        .header("X-Amz-Date", "20261126T000000Z")
        .header(
            "Authorization",
            format!("AWS4-HMAC-SHA256 Credential=bench/20261126/us-east-1/{service}/aws4_request, SignedHeaders=host;x-amz-date, Signature=0"),
        )
        .send(body)
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .with_config()
        .limit(64 * 1024 * 1024)
        .read_to_string()
        .map_err(|e| e.to_string())?;
    Ok((status, text))
}

/// `post`, with the answer parsed (Null when it is not JSON).
pub fn call(
    agent: &ureq::Agent,
    url: &str,
    target: &str,
    service: &str,
    body: &str,
) -> Result<(u16, Value), String> {
    let (status, text) = post(agent, url, target, service, body)?;
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

/// The integer after `"field":` in a JSON text, found without parsing it
/// all, so a generator spends its CPU on sending.
pub fn int_field(text: &str, field: &str) -> Option<u64> {
    let key = format!("\"{field}\":");
    let at = text.find(&key)?;
    text[at + key.len()..]
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .ok()
}

/// Waits until `ready` holds, for at most two minutes.
pub fn wait_until(mut ready: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if ready() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

/// The value at `q` (0..1) of sorted samples.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    sorted
        .get(((sorted.len() as f64 * q) as usize).min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or(f64::NAN)
}
