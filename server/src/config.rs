//! Server settings: flags > `RUNNEL_*` environment > TOML file > defaults.
//!
//! clap already resolves flags over the environment; this module lays the
//! file and the defaults underneath.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use runnel_streams::ShardLimits;
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
    pub streams: StreamsSettings,
    pub firehose: FirehoseSettings,
    /// `[tls]` and the `--tls*` flags: None serves plain HTTP.
    pub tls: Option<crate::tls::TlsSettings>,
    /// A job's timely workers when its submission names none.
    pub workers: usize,
    /// `[auth]`: the access keys requests must be signed with.
    pub auth: crate::auth::AuthSettings,
    /// `[video]`: Kinesis Video's limits.
    pub video: VideoSettings,
}

/// The `[video]` table, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoSettings {
    /// A PutMedia connection is ended (`ErrorId` 4003) after this long;
    /// Kinesis Video's 45 minutes by default.
    pub put_media_max_connection_seconds: u64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct VideoFile {
    put_media_max_connection_seconds: Option<u64>,
}

/// The `[streams]` table of the config file, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamsSettings {
    /// None when limits are off (`--no-shard-limits` or `shard_limits = false`).
    pub shard_limits: Option<ShardLimits>,
    pub iterator_ttl_seconds: u64,
    pub retention_check_seconds: u64,
    /// 32 bytes, from 64 hex digits: the key encrypted streams are sealed with.
    pub encryption_key: Option<[u8; 32]>,
    pub region: String,
}

/// The `[firehose]` table, resolved: where S3 destinations write.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FirehoseSettings {
    /// An S3-compatible endpoint; without one each bucket is a directory
    /// under `<data dir>/buckets`.
    pub s3_endpoint: Option<String>,
    pub s3_access_key_id: Option<String>,
    pub s3_secret_access_key: Option<String>,
    pub s3_region: Option<String>,
    /// A delivery stream refuses records past this much buffered.
    pub max_buffer_mb: u64,
    /// `[firehose.lambda]`: each Lambda ARN a transform names, and the URL
    /// that answers its invocations.
    pub lambdas: std::collections::BTreeMap<String, String>,
    /// `[firehose.schemas]`: `"database.table"` to its columns, the schema
    /// Parquet conversion takes where AWS reads a Glue table.
    pub schemas: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FirehoseFile {
    s3_endpoint: Option<String>,
    s3_access_key_id: Option<String>,
    s3_secret_access_key: Option<String>,
    s3_region: Option<String>,
    max_buffer_mb: Option<u64>,
    lambda: Option<std::collections::BTreeMap<String, String>>,
    schemas: Option<std::collections::BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StreamsFile {
    shard_limits: Option<bool>,
    shard_write_bytes_per_sec: Option<u64>,
    shard_write_records_per_sec: Option<u64>,
    shard_read_bytes_per_sec: Option<u64>,
    shard_get_records_per_sec: Option<u64>,
    iterator_ttl_seconds: Option<u64>,
    retention_check_seconds: Option<u64>,
    encryption_key: Option<String>,
    region: Option<String>,
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
    workers: Option<usize>,
    streams: Option<StreamsFile>,
    firehose: Option<FirehoseFile>,
    tls: Option<crate::tls::TlsFile>,
    auth: Option<crate::auth::AuthFile>,
    video: Option<VideoFile>,
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
            workers: args
                .workers
                .or(file.workers)
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
                .max(1),
            streams: streams_settings(
                args.no_shard_limits,
                file.streams.unwrap_or_default(),
                config_file.as_deref(),
            )?,
            firehose: firehose_settings(file.firehose.unwrap_or_default(), |name| {
                std::env::var(name).ok().filter(|v| !v.is_empty())
            }),
            tls: crate::tls::TlsSettings::resolve(
                crate::tls::TlsFlags {
                    cert: args.tls_cert,
                    key: args.tls_key,
                    mode: args.tls,
                    allow_plain: args.tls_allow_plain,
                },
                file.tls.unwrap_or_default(),
            )
            .map_err(|message| ConfigError::Parse {
                path: config_file.clone().unwrap_or_default(),
                message,
            })?,
            auth: crate::auth::AuthSettings::resolve(
                file.auth.unwrap_or_default(),
                args.insecure,
                |name| std::env::var(name).ok().filter(|v| !v.is_empty()),
            )
            .map_err(|message| ConfigError::Parse {
                path: config_file.clone().unwrap_or_default(),
                message,
            })?,
            video: video_settings(file.video.unwrap_or_default()),
            config_file,
        })
    }
}

/// The file's `[firehose]` table over the standard AWS variables
/// (`AWS_ENDPOINT_URL_S3`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
/// `AWS_REGION`), as the aws CLI reads them.
fn firehose_settings(file: FirehoseFile, env: impl Fn(&str) -> Option<String>) -> FirehoseSettings {
    FirehoseSettings {
        s3_endpoint: file.s3_endpoint.or_else(|| env("AWS_ENDPOINT_URL_S3")),
        s3_access_key_id: file.s3_access_key_id.or_else(|| env("AWS_ACCESS_KEY_ID")),
        s3_secret_access_key: file
            .s3_secret_access_key
            .or_else(|| env("AWS_SECRET_ACCESS_KEY")),
        s3_region: file.s3_region.or_else(|| env("AWS_REGION")),
        max_buffer_mb: file.max_buffer_mb.unwrap_or(1024).max(1),
        lambdas: file.lambda.unwrap_or_default(),
        schemas: file.schemas.unwrap_or_default(),
    }
}

fn video_settings(file: VideoFile) -> VideoSettings {
    VideoSettings {
        put_media_max_connection_seconds: file
            .put_media_max_connection_seconds
            .unwrap_or(runnel_video::MAX_PUT_CONNECTION.as_secs())
            .max(1),
    }
}

fn streams_settings(
    no_shard_limits: bool,
    file: StreamsFile,
    path: Option<&Path>,
) -> Result<StreamsSettings, ConfigError> {
    let defaults = ShardLimits::default();
    let shard_limits =
        (!no_shard_limits && file.shard_limits.unwrap_or(true)).then(|| ShardLimits {
            write_bytes_per_sec: file
                .shard_write_bytes_per_sec
                .unwrap_or(defaults.write_bytes_per_sec),
            write_records_per_sec: file
                .shard_write_records_per_sec
                .unwrap_or(defaults.write_records_per_sec),
            read_bytes_per_sec: file
                .shard_read_bytes_per_sec
                .unwrap_or(defaults.read_bytes_per_sec),
            get_records_per_sec: file
                .shard_get_records_per_sec
                .unwrap_or(defaults.get_records_per_sec),
        });
    let encryption_key = file
        .encryption_key
        .map(|hex| {
            parse_key(&hex).ok_or_else(|| ConfigError::Parse {
                path: path.map(Path::to_path_buf).unwrap_or_default(),
                message: "streams.encryption_key must be 64 hexadecimal digits (32 bytes)".into(),
            })
        })
        .transpose()?;
    Ok(StreamsSettings {
        shard_limits,
        iterator_ttl_seconds: file.iterator_ttl_seconds.unwrap_or(300),
        retention_check_seconds: file.retention_check_seconds.unwrap_or(60).max(1),
        encryption_key,
        region: file.region.unwrap_or_else(|| "us-east-1".into()),
    })
}

fn parse_key(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.trim();
    if hex.len() != 64 {
        return None;
    }
    let mut key = [0u8; 32];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(key)
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
    fn put_media_connections_last_45_minutes_unless_the_video_table_says() {
        let default = ServerConfig::resolve(ServerArgs::default()).unwrap();
        assert_eq!(default.video.put_media_max_connection_seconds, 45 * 60);
        let file = config_file("[video]\nput_media_max_connection_seconds = 4\n");
        let args = ServerArgs {
            config: Some(file.path().to_path_buf()),
            ..Default::default()
        };
        let video = ServerConfig::resolve(args).unwrap().video;
        assert_eq!(video.put_media_max_connection_seconds, 4);
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
    fn firehose_settings_come_from_the_file_over_the_aws_variables() {
        let file = config_file(
            "[firehose]\ns3_endpoint = \"http://127.0.0.1:8333\"\nmax_buffer_mb = 64\n\n[firehose.lambda]\n\"arn:aws:lambda:us-east-1:1:function:f\" = \"http://127.0.0.1:9000/\"\n\n[firehose.schemas]\n\"shop.orders\" = \"id BIGINT\"\n",
        );
        let args = ServerArgs {
            config: Some(file.path().to_path_buf()),
            ..Default::default()
        };
        let firehose = ServerConfig::resolve(args).unwrap().firehose;
        assert_eq!(
            firehose.s3_endpoint.as_deref(),
            Some("http://127.0.0.1:8333")
        );
        assert_eq!(firehose.max_buffer_mb, 64);
        assert_eq!(
            firehose.lambdas["arn:aws:lambda:us-east-1:1:function:f"],
            "http://127.0.0.1:9000/"
        );
        assert_eq!(firehose.schemas["shop.orders"], "id BIGINT");
        let from_env = firehose_settings(FirehoseFile::default(), |name| {
            (name == "AWS_ENDPOINT_URL_S3").then(|| "http://s3.local".to_string())
        });
        assert_eq!(from_env.s3_endpoint.as_deref(), Some("http://s3.local"));
    }

    #[test]
    fn streams_settings_come_from_the_file_and_the_flag_turns_limits_off() {
        let file = config_file(
            "[streams]\nshard_write_records_per_sec = 10\niterator_ttl_seconds = 2\nencryption_key = \"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\"\n",
        );
        let args = ServerArgs {
            config: Some(file.path().to_path_buf()),
            ..Default::default()
        };
        let config = ServerConfig::resolve(args).unwrap();
        assert_eq!(
            config.streams.shard_limits.unwrap().write_records_per_sec,
            10
        );
        assert_eq!(config.streams.iterator_ttl_seconds, 2);
        assert_eq!(config.streams.encryption_key.unwrap()[31], 0x1f);
        let args = ServerArgs {
            config: Some(file.path().to_path_buf()),
            no_shard_limits: true,
            ..Default::default()
        };
        assert_eq!(
            ServerConfig::resolve(args).unwrap().streams.shard_limits,
            None
        );
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

    #[test]
    fn the_tls_table_is_read_and_flags_override_it() {
        use crate::tls::{Identity, TlsMode};
        let file = config_file("[tls]\nself_signed = true\nallow_plain = true\n");
        let args = ServerArgs {
            config: Some(file.path().to_path_buf()),
            ..Default::default()
        };
        let tls = ServerConfig::resolve(args).unwrap().tls.unwrap();
        assert_eq!(tls.identity, Identity::SelfSigned);
        assert!(tls.allow_plain);
        let args = ServerArgs {
            config: Some(file.path().to_path_buf()),
            tls: Some(TlsMode::Off),
            ..Default::default()
        };
        assert_eq!(ServerConfig::resolve(args).unwrap().tls, None);
        assert_eq!(
            ServerConfig::resolve(ServerArgs::default()).unwrap().tls,
            None
        );
        let file = config_file("[tls]\ncert = \"server.crt\"\n");
        let args = ServerArgs {
            config: Some(file.path().to_path_buf()),
            ..Default::default()
        };
        let err = ServerConfig::resolve(args).unwrap_err().to_string();
        assert!(
            err.contains("tls.key") && err.contains(&file.path().display().to_string()),
            "{err}"
        );
    }
}
