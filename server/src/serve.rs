//! `runnel server`: open the data dir, serve until SIGINT/SIGTERM, flush.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use runnel_store::Store;
use tokio::sync::Notify;

use runnel_firehose::{Firehose, FirehoseConfig, S3Endpoint};
use runnel_streams::{Streams, StreamsConfig};
use runnel_video::{Video, VideoConfig};

use runnel_connectors::{Connectors, Services};

use crate::analytics::{self, JobManager, JobStore};
use crate::auth::{Auth, Scope};
use crate::aws::AwsRouter;
use crate::config::ServerConfig;
use crate::firehose;
use crate::http::{self, AppState};
use crate::kinesis;
use crate::metrics::Metrics;
use crate::video;

/// How long in-flight requests may run on after a shutdown signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
const STORE_ID_KEY: &[u8] = b"store_id";

pub async fn run(config: ServerConfig) -> anyhow::Result<()> {
    if let Some(file) = &config.config_file {
        tracing::info!(file = %file.display(), "read config file");
    }
    check_exposure(&config)?;
    let families: Vec<&str> = runnel_streams::COLUMN_FAMILIES
        .iter()
        .chain(runnel_firehose::COLUMN_FAMILIES)
        .chain(analytics::COLUMN_FAMILIES)
        .chain(runnel_video::COLUMN_FAMILIES)
        .copied()
        .collect();
    let store = Store::open(&config.data_dir, &families)?;
    let store_id = store_id(&store)?;
    tracing::info!(data_dir = %config.data_dir.display(), %store_id, "store open");
    // Before anything slow: a certificate that cannot be read fails at once.
    let tls = config
        .tls
        .as_ref()
        .map(|settings| crate::tls::load(settings, &config.data_dir))
        .transpose()?;

    let addr = SocketAddr::new(config.listen, config.port);
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
        format!(
            "cannot listen on {addr} (is another server using port {}?)",
            config.port
        )
    })?;

    let streams = Arc::new(
        Streams::open(store.db().clone(), streams_config(&config))
            .context("opening the stream store")?,
    );
    let mut aws = AwsRouter::default();
    let rates = kinesis::register(&mut aws, streams.clone());
    let firehose = Arc::new(
        Firehose::open(store.db().clone(), firehose_config(&config, &streams))
            .context("opening the delivery streams")?,
    );
    firehose::register(&mut aws, firehose.clone());
    let video = Arc::new(
        Video::open(store.db().clone(), video_config(&config, &streams))
            .context("opening the video streams")?,
    );
    let streaming = video::Streaming::new(video.clone());
    video::register(&mut aws, video.clone(), streaming.clone());
    video::spawn_retention(video.clone());

    let services = Services {
        streams: Some(streams.clone()),
        firehose: Some(firehose.clone()),
        video: Some(video.clone()),
        port: Some(config.port),
    };
    let jobs = JobManager::new(
        Connectors::new(services),
        config.workers,
        JobStore::new(store.db().clone()),
        config.streams.encryption_key,
    );
    jobs.recover()
        .await
        .context("recovering the jobs of the data dir")?;
    analytics::kda::register(
        &mut aws,
        store.db().clone(),
        jobs.clone(),
        config.streams.region.clone(),
        streams.config().account.clone(),
    );

    let auth = Arc::new(
        Auth::new(
            &config.auth,
            &config.data_dir,
            Scope {
                region: config.streams.region.clone(),
                account: streams.config().account.clone(),
            },
            aws.rest_paths().collect::<Vec<_>>(),
            streams.clone(),
            video.clone(),
        )
        .context("opening the audit log")?,
    );
    if let Some(path) = auth.audit_path() {
        tracing::info!(keys = auth.key_count(), audit_log = %path.display(), "requests must be signed with a configured access key");
    }
    let state = Arc::new(AppState {
        aws,
        jobs: jobs.clone(),
        firehose: firehose.clone(),
        budget: Default::default(),
        metrics: Metrics::new(),
        started: Instant::now(),
        store_id,
        data_dir: config.data_dir.display().to_string(),
    });
    let app = http::router(state)
        .merge(analytics::routes(jobs.clone()))
        .merge(video::playback_routes(streaming))
        .merge(crate::console::routes(crate::console::Console::new(
            streams.clone(),
            firehose.clone(),
            rates,
            &config,
        )));
    let app = app.layer(axum::middleware::from_fn_with_state(
        auth,
        crate::auth::layer,
    ));
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(%addr, "listening; AWS endpoint is {scheme}://{addr}");

    let stop = Arc::new(Notify::new());
    let signalled = {
        let stop = stop.clone();
        async move { stop.notified().await }
    };
    let server = crate::listener::serve(listener, app, tls, signalled);
    let mut server = std::pin::pin!(server);

    tokio::select! {
        () = &mut server => anyhow::bail!("the HTTP server stopped by itself"),
        signal = shutdown_signal() => {
            tracing::info!(signal = signal?, "shutting down");
            stop.notify_one();
            if tokio::time::timeout(DRAIN_TIMEOUT, &mut server).await.is_err() {
                tracing::warn!("requests still running after {DRAIN_TIMEOUT:?}; closing them");
            }
        }
    }

    // Handlers hold the service through the router; once the server is
    // gone this is the last reference, and dropping it drains the writer.
    drop(jobs);
    drop(firehose);
    drop(video);
    drop(streams);
    store.flush().context("flushing the store")?;
    drop(store);
    tracing::info!("store flushed; bye");
    Ok(())
}

fn streams_config(config: &ServerConfig) -> StreamsConfig {
    let settings = &config.streams;
    StreamsConfig {
        limits: settings.shard_limits,
        iterator_ttl_ms: settings.iterator_ttl_seconds.saturating_mul(1000),
        retention_check_interval: Duration::from_secs(settings.retention_check_seconds),
        region: settings.region.clone(),
        encryption_key: settings.encryption_key,
        ..StreamsConfig::default()
    }
}

/// Buckets of the S3 destination live under `<data dir>/buckets/<bucket>`
/// unless an S3 endpoint is configured.
fn firehose_config(config: &ServerConfig, streams: &Arc<Streams>) -> FirehoseConfig {
    let settings = &config.firehose;
    let s3_endpoint = settings.s3_endpoint.as_ref().map(|url| S3Endpoint {
        url: url.clone(),
        region: settings
            .s3_region
            .clone()
            .unwrap_or_else(|| config.streams.region.clone()),
        access_key_id: settings.s3_access_key_id.clone(),
        secret_access_key: settings.s3_secret_access_key.clone(),
    });
    if let Some(endpoint) = &s3_endpoint {
        tracing::info!(endpoint = %endpoint.url, "firehose writes S3 buckets to this endpoint");
    }
    FirehoseConfig {
        region: config.streams.region.clone(),
        account: streams.config().account.clone(),
        s3_endpoint,
        streams: Some(streams.clone()),
        encryption_key: config.streams.encryption_key,
        lookups: runnel_firehose::Lookups {
            lambdas: settings.lambdas.clone().into_iter().collect(),
            schemas: settings.schemas.clone().into_iter().collect(),
        },
        max_buffer_bytes: settings.max_buffer_mb.saturating_mul(1024 * 1024),
        ..FirehoseConfig::new(config.data_dir.join("buckets"))
    }
}

/// Video fragments live under `<data dir>/video`, a directory per stream.
fn video_config(config: &ServerConfig, streams: &Arc<Streams>) -> VideoConfig {
    VideoConfig {
        region: config.streams.region.clone(),
        account: streams.config().account.clone(),
        encryption_key: config.streams.encryption_key,
        max_put_connection: std::time::Duration::from_secs(
            config.video.put_media_max_connection_seconds,
        ),
        ..VideoConfig::new(config.data_dir.join("video"))
    }
}

/// Safe by default: without access keys any caller may do anything, which
/// is what users of the local emulators expect on their own machine, and
/// nothing a server reachable from a network should do unasked.
fn check_exposure(config: &ServerConfig) -> anyhow::Result<()> {
    if !config.auth.keys.is_empty() {
        return Ok(());
    }
    if config.listen.is_loopback() {
        tracing::warn!(
            listen = %config.listen,
            "no access keys configured: authentication is off and any credentials are accepted (loopback only; configure [[auth.keys]] or RUNNEL_ACCESS_KEY_ID to turn it on)"
        );
        return Ok(());
    }
    if config.auth.insecure {
        tracing::warn!(
            listen = %config.listen,
            "--insecure: no access keys on a non-loopback address; anyone who can reach this port may do anything"
        );
        return Ok(());
    }
    anyhow::bail!(
        "refusing to listen on {} without access keys: configure [[auth.keys]] in the config file or RUNNEL_ACCESS_KEY_ID/RUNNEL_SECRET_ACCESS_KEY, or pass --insecure to allow anyone who can reach the port",
        config.listen
    )
}

/// A stable identity for this data dir, so operators (and tests) can tell
/// a restart on the same state from a fresh start.
fn store_id(store: &Store) -> anyhow::Result<String> {
    if let Some(id) = store.meta_get(STORE_ID_KEY)? {
        return String::from_utf8(id).context("store id is not UTF-8");
    }
    let id = uuid::Uuid::new_v4().to_string();
    store.meta_put(STORE_ID_KEY, id.as_bytes())?;
    Ok(id)
}

async fn shutdown_signal() -> anyhow::Result<&'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate =
        signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    Ok(tokio::select! {
        _ = terminate.recv() => "SIGTERM",
        _ = interrupt.recv() => "SIGINT",
    })
}
