//! A real PostgreSQL (Debian's, installed by `make deps`) on a free
//! loopback port in a temporary directory, for the Redshift destination;
//! stopped when dropped. As root, it runs as the `postgres` user.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Postgres {
    pub port: u16,
    dir: tempfile::TempDir,
    bin: PathBuf,
    root: bool,
}

fn bin_dir() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed (make deps installs Debian's postgresql)")
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").exists())
        .collect();
    versions.sort();
    versions
        .pop()
        .expect("an initdb under /usr/lib/postgresql/*/bin")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

impl Postgres {
    pub fn start() -> Postgres {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .unwrap_or(false);
        if root {
            let status = Command::new("chown")
                .args(["-R", "postgres"])
                .arg(dir.path())
                .status()
                .expect("chown");
            assert!(status.success());
        }
        let postgres = Postgres {
            port: free_port(),
            bin: bin_dir(),
            dir,
            root,
        };
        let data = postgres.dir.path().join("data");
        postgres.run(
            "initdb",
            &[
                "-D",
                &data.display().to_string(),
                "-A",
                "trust",
                "-U",
                "runnel",
                "--no-sync",
            ],
        );
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            postgres.port,
            postgres.dir.path().display()
        );
        let log = postgres.dir.path().join("log");
        postgres.run(
            "pg_ctl",
            &[
                "-D",
                &data.display().to_string(),
                "-o",
                &options,
                "-l",
                &log.display().to_string(),
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
        postgres
    }

    fn run(&self, program: &str, args: &[&str]) {
        let binary = self.bin.join(program);
        let output = if self.root {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&binary)
                .args(args)
                .current_dir(self.dir.path())
                .output()
        } else {
            Command::new(&binary)
                .args(args)
                .current_dir(self.dir.path())
                .output()
        }
        .expect("run a PostgreSQL program");
        assert!(
            output.status.success(),
            "{program} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    pub fn jdbc(&self) -> String {
        format!("jdbc:redshift://127.0.0.1:{}/postgres", self.port)
    }

    pub async fn client(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(
            &format!(
                "host=127.0.0.1 port={} user=runnel dbname=postgres",
                self.port
            ),
            tokio_postgres::NoTls,
        )
        .await
        .expect("connect to the test PostgreSQL");
        tokio::spawn(connection);
        client
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.dir.path().join("data").display().to_string();
        let binary = self.bin.join("pg_ctl");
        let _ = if self.root {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&binary)
                .args(["-D", &data, "-m", "immediate", "stop"])
                .output()
        } else {
            Command::new(&binary)
                .args(["-D", &data, "-m", "immediate", "stop"])
                .output()
        };
    }
}
