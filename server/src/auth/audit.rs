//! The audit log: one JSON line per denied request and per allowed one
//! that changes something, saying who, what, on which resource, from where,
//! and whether it was let through.

use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::json;

pub struct AuditLog {
    path: PathBuf,
    file: Mutex<std::fs::File>,
}

pub struct Entry<'a> {
    pub principal: &'a str,
    pub access_key_id: &'a str,
    pub source_ip: Option<IpAddr>,
    pub action: &'a str,
    pub resource: &'a str,
    pub allowed: bool,
    /// Why a request was refused.
    pub reason: Option<&'a str>,
}

impl AuditLog {
    pub fn open(path: &Path) -> std::io::Result<AuditLog> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(AuditLog {
            path: path.to_path_buf(),
            file: Mutex::new(file),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A line written whole with one `write`, so lines of concurrent
    /// requests never interleave. A failed write is logged, not fatal: the
    /// request was already decided.
    pub fn record(&self, entry: &Entry<'_>) {
        let mut line = json!({
            "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "principal": entry.principal,
            "access_key_id": entry.access_key_id,
            "source_ip": entry.source_ip.map(|ip| ip.to_string()),
            "action": entry.action,
            "resource": entry.resource,
            "allowed": entry.allowed,
        });
        if let Some(reason) = entry.reason {
            line["reason"] = reason.into();
        }
        let mut bytes = line.to_string().into_bytes();
        bytes.push(b'\n');
        let mut file = self
            .file
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Err(error) = file.write_all(&bytes) {
            tracing::warn!(path = %self.path.display(), %error, "audit log write failed");
        }
    }
}
