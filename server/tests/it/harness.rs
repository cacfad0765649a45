//! Starts a real `runnel server` on a free port with a temporary data dir,
//! for every end-to-end test to drive, and stops it when dropped.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const START_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(20);
const PORT_ATTEMPTS: u32 = 5;

pub fn runnel_bin() -> &'static str {
    env!("CARGO_BIN_EXE_runnel")
}

pub struct RunnelServer {
    child: Option<Child>,
    pub port: u16,
    pub data_dir: PathBuf,
    /// The CA certificate of a TLS server (see `ServerBuilder::https`).
    pub tls_ca: Option<PathBuf>,
    log_path: PathBuf,
    // Keeps the temporary data dir alive for as long as the server.
    _temp: Option<tempfile::TempDir>,
}

pub struct ServerBuilder {
    data_dir: Option<PathBuf>,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    port: Option<u16>,
    https: Option<TlsCa>,
}

/// Which certificate a TLS server's clients trust.
enum TlsCa {
    /// `<data dir>/tls/cert.pem`, made by `--tls self-signed`.
    SelfSigned,
    File(PathBuf),
}

impl ServerBuilder {
    /// Reuses a data dir (a restart) instead of a fresh temporary one.
    pub fn data_dir(mut self, dir: &Path) -> Self {
        self.data_dir = Some(dir.to_path_buf());
        self
    }

    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn env(mut self, key: &str, value: impl Into<String>) -> Self {
        self.envs.push((key.to_string(), value.into()));
        self
    }

    /// The server speaks TLS with the certificate `--tls self-signed` makes
    /// (the test passes the flag, or sets it otherwise): its health is
    /// checked, and `url()` is, over https with that certificate.
    pub fn https(mut self) -> Self {
        self.https = Some(TlsCa::SelfSigned);
        self
    }

    /// `https()` with a certificate trusted through this CA file.
    pub fn https_with_ca(mut self, ca: &Path) -> Self {
        self.https = Some(TlsCa::File(ca.to_path_buf()));
        self
    }

    /// Leaves `--port` to the config file or environment; the test then
    /// says which port the server should turn up on.
    pub fn expect_port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    pub fn start(self) -> RunnelServer {
        let (temp, data_dir) = match self.data_dir {
            Some(dir) => (None, dir),
            None => {
                let temp = tempfile::tempdir().expect("temp data dir");
                let dir = temp.path().join("data");
                (Some(temp), dir)
            }
        };
        // A free port can be taken by a parallel test's server between our
        // look and the bind; with a port of our choosing, try another.
        let attempts = if self.port.is_some() {
            1
        } else {
            PORT_ATTEMPTS
        };
        for attempt in 1..=attempts {
            let port = self.port.unwrap_or_else(free_port);
            let log_path = std::env::temp_dir().join(format!("runnel-test-{}.log", uuid_like()));
            let mut command = Command::new(runnel_bin());
            command.arg("server").arg("--data-dir").arg(&data_dir);
            if self.port.is_none() {
                command.arg("--port").arg(port.to_string());
            }
            command
                .args(&self.args)
                .envs(self.envs.iter().map(|(k, v)| (k, v)));
            let log = std::fs::File::create(&log_path).expect("server log file");
            let child = command
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log handle"))
                .stderr(log)
                .spawn()
                .expect("spawn runnel server");
            let mut server = RunnelServer {
                child: Some(child),
                port,
                data_dir: data_dir.clone(),
                tls_ca: self.https.as_ref().map(|ca| match ca {
                    TlsCa::SelfSigned => data_dir.join("tls").join("cert.pem"),
                    TlsCa::File(path) => path.clone(),
                }),
                log_path,
                _temp: None,
            };
            match server.wait_healthy() {
                Ok(()) => {
                    server._temp = temp;
                    return server;
                }
                Err(log) if attempt < attempts && log.contains("cannot listen") => continue,
                Err(log) => panic!("runnel server did not start; log:\n{log}"),
            }
        }
        unreachable!("the last attempt returns or panics")
    }
}

impl RunnelServer {
    pub fn builder() -> ServerBuilder {
        ServerBuilder {
            data_dir: None,
            args: Vec::new(),
            envs: Vec::new(),
            port: None,
            https: None,
        }
    }

    pub fn start() -> Self {
        Self::builder().start()
    }

    /// `http://127.0.0.1:PORT`, or `https://localhost:PORT` for a TLS server.
    pub fn url(&self) -> String {
        match self.tls_ca {
            Some(_) => format!("https://localhost:{}", self.port),
            None => format!("http://127.0.0.1:{}", self.port),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child
            .as_ref()
            .map(Child::id)
            .expect("server is running")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Sends SIGTERM and waits for the server to exit.
    pub fn stop(&mut self) -> ExitStatus {
        self.stop_with("TERM")
    }

    /// Sends the named signal (`TERM`, `INT`) and waits for the server to exit.
    pub fn stop_with(&mut self, signal_name: &str) -> ExitStatus {
        let mut child = self.child.take().expect("server is running");
        signal(child.id(), signal_name);
        wait_bounded(&mut child, STOP_TIMEOUT).unwrap_or_else(|| {
            let _ = child.kill();
            panic!(
                "server ignored SIG{signal_name} for {STOP_TIMEOUT:?}; log:\n{}",
                self.log()
            )
        })
    }

    /// `kill -9`: no chance to flush anything.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits until this server, not another test's on a reused port,
    /// answers its health check. Err carries the log if it did not.
    fn wait_healthy(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        let mut agent = self.tls_ca.is_none().then(agent);
        let data_dir = self.data_dir.display().to_string();
        while Instant::now() < deadline {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                return Err(format!("exited during start ({status}):\n{}", self.log()));
            }
            // A self-signed certificate is there once the server made it.
            if agent.is_none() {
                agent = self.tls_ca.as_deref().and_then(|ca| tls_agent(ca).ok());
            }
            let health: Option<serde_json::Value> = agent.as_ref().and_then(|agent| {
                agent
                    .get(&format!("{}/v1/health", self.url()))
                    .call()
                    .ok()
                    .and_then(|mut response| response.body_mut().read_json().ok())
            });
            if health.is_some_and(|h| h["data_dir"] == data_dir.as_str()) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill();
        Err(format!(
            "not healthy within {START_TIMEOUT:?}:\n{}",
            self.log()
        ))
    }
}

impl Drop for RunnelServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_file(&self.log_path);
    }
}

/// An HTTP client that hands back 4xx/5xx responses instead of erroring, so
/// tests can inspect AWS error bodies.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// `agent()` over TLS, trusting the certificates of the PEM file `ca` (and
/// no others).
pub fn tls_agent(ca: &Path) -> Result<ureq::Agent, String> {
    use ureq::tls::{Certificate, RootCerts, TlsConfig, TlsProvider};
    let pem = std::fs::read(ca).map_err(|e| format!("{}: {e}", ca.display()))?;
    let cert = Certificate::from_pem(&pem).map_err(|e| format!("{}: {e}", ca.display()))?;
    let tls = TlsConfig::builder()
        .provider(TlsProvider::NativeTls)
        .root_certs(RootCerts::new_with_certs(&[cert]))
        .build();
    Ok(ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .tls_config(tls)
        .build()
        .into())
}

/// One AWS JSON 1.1 request (`target` as in `Kinesis_20131202.PutRecords`):
/// its status and body.
pub fn aws_json(
    url: &str,
    target: &str,
    body: &serde_json::Value,
) -> Result<(u16, serde_json::Value), String> {
    let mut response = agent()
        .post(url)
        .header("X-Amz-Target", target)
        .header("Content-Type", "application/x-amz-json-1.1")
        .send(body.to_string())
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response.body_mut().read_json().map_err(|e| e.to_string())?;
    Ok((status, body))
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

pub fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{name} {pid} failed");
}

pub fn wait_bounded(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{}-{nanos}", std::process::id())
}

/// Where `make deps` put the node modules a browser test needs (the
/// Makefile's RUNNEL_TEST_NODE_DIR, with its default for a plain `cargo
/// nextest`), with Debian's Chromium. A machine without them fails here,
/// saying what to run, rather than skip a browser that was never started.
pub fn browser_node_modules(files: &[&str]) -> String {
    let dir = std::env::var_os("RUNNEL_TEST_NODE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/runnel-test-node")
        });
    let modules = dir.join("node_modules");
    let missing: Vec<PathBuf> = std::iter::once(PathBuf::from("/usr/bin/chromium"))
        .chain(files.iter().map(|file| modules.join(file)))
        .filter(|path| !path.exists())
        .collect();
    assert!(
        missing.is_empty(),
        "missing {missing:?}: `make deps` installs Debian's chromium, and the npm packages into {}",
        dir.display()
    );
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.is_ok_and(|out| out.status.success()),
        "node does not run: `make deps` installs it"
    );
    modules.display().to_string()
}
