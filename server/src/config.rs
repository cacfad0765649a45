//! Server settings: flags > `RUNNEL_*` environment > TOML file > defaults.
//!
//! clap already resolves flags over the environment; this module lays the
//! file and the defaults underneath.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::cli::{LogFormat, ServerArgs};

pub const DEFAULT_PORT: u16 = 4567;
pub const DEFAULT_CONFIG_FILE: &str = "runnel.toml";

#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    pub listen: IpAddr,
    pub port: u16,
    pub data_dir: PathBuf,
    pub log_format: LogFormat,
    pub log: String,
    /// The file the settings were read from, if any, for the start-up log.
    pub config_file: Option<PathBuf>,
}

/// The config file's shape. Unknown keys are errors so that a typo is not
/// silently ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<IpAddr>,
    port: Option<u16>,
    data_dir: Option<PathBuf>,
    log_format: Option<LogFormat>,
    log: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
}

impl ServerConfig {
    pub fn resolve(args: ServerArgs) -> Result<Self, ConfigError> {
        let (file, config_file) = match &args.config {
            Some(path) => (read_file(path)?, Some(path.clone())),
            None if Path::new(DEFAULT_CONFIG_FILE).is_file() => {
                let path = PathBuf::from(DEFAULT_CONFIG_FILE);
                (read_file(&path)?, Some(path))
            }
            None => (FileConfig::default(), None),
        };
        Ok(ServerConfig {
            listen: args
                .listen
                .or(file.listen)
                .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            port: args.port.or(file.port).unwrap_or(DEFAULT_PORT),
            data_dir: args
                .data_dir
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from("runnel-data")),
            log_format: args
                .log_format
                .or(file.log_format)
                .unwrap_or(LogFormat::Human),
            log: args.log.or(file.log).unwrap_or_else(|| "info".to_string()),
            config_file,
        })
    }
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_file(text: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), text).unwrap();
        file
    }

    #[test]
    fn flags_override_the_file_and_the_file_overrides_defaults() {
        let file =
            config_file("port = 5000\ndata_dir = \"/tmp/from-file\"\nlog_format = \"json\"\n");
        let args = ServerArgs {
            port: Some(6000),
            config: Some(file.path().to_path_buf()),
            ..Default::default()
        };
        let config = ServerConfig::resolve(args).unwrap();
        assert_eq!(config.port, 6000);
        assert_eq!(config.data_dir, PathBuf::from("/tmp/from-file"));
        assert_eq!(config.log_format, LogFormat::Json);
        assert_eq!(config.listen, IpAddr::V4(Ipv4Addr::LOCALHOST));
    }

    #[test]
    fn unknown_keys_in_the_file_are_rejected_by_name() {
        let file = config_file("prot = 5000\n");
        let args = ServerArgs {
            config: Some(file.path().to_path_buf()),
            ..Default::default()
        };
        let err = ServerConfig::resolve(args).unwrap_err().to_string();
        assert!(err.contains("prot"), "{err}");
    }

    #[test]
    fn a_missing_explicit_config_file_is_an_error() {
        let args = ServerArgs {
            config: Some(PathBuf::from("/nonexistent/runnel.toml")),
            ..Default::default()
        };
        assert!(matches!(
            ServerConfig::resolve(args),
            Err(ConfigError::Read { .. })
        ));
    }
}
