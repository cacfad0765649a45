//! The `runnel` command line.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "runnel",
    version,
    about = "Kinesis Data Streams, Analytics (streaming SQL), Firehose and Video (in part) in one binary",
    long_about = "Runnel is a self-hosted streaming platform that speaks the Amazon Kinesis wire \
protocols. Point boto3, the aws CLI or an AWS SDK at its endpoint and it behaves like Kinesis.\n\n\
Built: Kinesis Data Streams; Flink SQL jobs (embedded with `runnel sql run`, or inside the \
server over its streams with `runnel jobs` and the Kinesis Analytics V2 API), with checkpoints, \
savepoints and exactly-once output into the server's streams (every operator is checkpointed; \
a differential operator with a state TTL is refused; `sql run` checkpoints jobs over several \
processes too); Firehose delivery \
streams to S3 (a local directory or an S3 endpoint), HTTP endpoints, OpenSearch, Splunk and \
Redshift on PostgreSQL; Kinesis Video Streams' streams, PutMedia, GetMedia, ListFragments and \
GetMediaForFragmentList, GetClip, HLS and DASH sessions, GetImages, and a video stream's \
fragments and frames as SQL tables.\n\n\
Start with `runnel server`, then talk to http://127.0.0.1:4567."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server: every service on one HTTP port, state in one data dir.
    #[command(
        long_about = "Run the server: Kinesis Data Streams, Analytics (SQL jobs on /v1/jobs and \
the Kinesis Analytics V2 API) and Firehose on one HTTP port, with all state under one data dir \
(delivered objects under <data dir>/buckets unless [firehose] names an S3 endpoint) and Kinesis \
Video's streams, PutMedia and GetMedia (fragments under <data dir>/video).\n\n\
Access: with access keys configured ([[auth.keys]] in the config file, or one key in \
RUNNEL_ACCESS_KEY_ID/RUNNEL_SECRET_ACCESS_KEY) every request but /v1/health and the console's \
pages must be SigV4-signed (or presigned, or carry a console session), and each key's IAM-style \
policy and a stream's resource policy decide what it may do; denials and every mutating call \
go to <data dir>/audit.log. Without keys any credentials are accepted, which the server allows \
on a loopback address only, unless --insecure. TLS: --tls-cert/--tls-key, or --tls self-signed \
(a certificate for localhost kept in <data dir>/tls/cert.pem, which clients take as their CA \
bundle); HTTP/2 by ALPN.\n\n\
Settings come from, in order of precedence: flags, RUNNEL_* environment variables, the TOML \
config file, built-in defaults. Stop with Ctrl-C or SIGTERM; the store is flushed before exit."
    )]
    Server(ServerArgs),
    /// Streaming SQL jobs.
    #[command(subcommand)]
    Sql(SqlCommand),
    /// Kinesis streams on a running server: create, list, describe, put, tail.
    Streams(StreamsArgs),
    /// SQL jobs on a running server: submit, list, describe, stop, delete, results, savepoints.
    Jobs(JobsArgs),
    /// Benchmarks of the SQL engine, run embedded.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Debug, clap::Args)]
pub struct JobsArgs {
    /// The server's URL
    #[arg(
        long,
        env = "RUNNEL_ENDPOINT",
        default_value = "http://127.0.0.1:4567",
        global = true
    )]
    pub endpoint: String,

    #[command(subcommand)]
    pub command: JobsCommand,
}

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// Submit a Flink SQL script (DDL, SET, INSERT INTO, EXECUTE STATEMENT SET or a SELECT); prints the job's id
    Submit {
        /// The script; `-` reads stdin
        file: PathBuf,
        /// The job's name [default: the file's name]
        #[arg(long)]
        name: Option<String>,
        /// Timely workers [default: the server's --workers]
        #[arg(long)]
        parallelism: Option<usize>,
        /// Start from this savepoint's state (the script must set
        /// 'execution.checkpointing.interval')
        #[arg(long, value_name = "NAME")]
        from_savepoint: Option<String>,
        /// Drop savepoint state that no operator of the script takes,
        /// instead of refusing the start
        #[arg(long, requires = "from_savepoint")]
        allow_non_restored_state: bool,
    },
    /// List jobs with their status
    List,
    /// A job's status, SQL, plan, figures and checkpoints, as JSON
    Describe { id: String },
    /// Stop a job: its sources end, windows fire, sinks flush; with
    /// --savepoint, take a savepoint and stop there without draining
    Stop {
        id: String,
        /// Take a savepoint first (named NAME, or after the job)
        #[arg(long, value_name = "NAME", num_args = 0..=1, default_missing_value = "")]
        savepoint: Option<String>,
    },
    /// Take a savepoint of a running checkpointed job; prints its name
    Savepoint {
        id: String,
        /// Its name [default: savepoint-<job name>-<checkpoint id>]
        name: Option<String>,
    },
    /// List savepoints
    Savepoints,
    /// Delete a savepoint
    DeleteSavepoint { name: String },
    /// Remove a job that has ended
    Delete { id: String },
    /// Print a SELECT job's rows as they come (`+I[...]`, `-U[...]`, ...) until it ends
    Results { id: String },
}

#[derive(Debug, clap::Args)]
pub struct StreamsArgs {
    /// The server's URL
    #[arg(
        long,
        env = "RUNNEL_ENDPOINT",
        default_value = "http://127.0.0.1:4567",
        global = true
    )]
    pub endpoint: String,

    #[command(subcommand)]
    pub command: StreamsCommand,
}

#[derive(Debug, Subcommand)]
pub enum StreamsCommand {
    /// Create a stream
    Create {
        name: String,
        /// Shards of a provisioned stream
        #[arg(long, default_value_t = 1)]
        shards: u32,
        /// An on-demand stream instead
        #[arg(long)]
        on_demand: bool,
    },
    /// List the streams
    List,
    /// A stream's summary and shards, as JSON
    Describe { name: String },
    /// Put records: the arguments, or else one record per line of stdin
    Put {
        name: String,
        /// Partition key for every record [default: the record's position]
        #[arg(long, short = 'k')]
        partition_key: Option<String>,
        records: Vec<String>,
    },
    /// Print a stream's records as they arrive, following every shard and
    /// reshard (parents before children)
    Tail {
        name: String,
        /// Where to start
        #[arg(long, value_enum, default_value = "latest")]
        from: TailFrom,
        /// Stop after this many records
        #[arg(long, short = 'n')]
        count: Option<usize>,
        /// Print shard id, sequence number and partition key before the data
        #[arg(long)]
        show_meta: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TailFrom {
    TrimHorizon,
    Latest,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// The Nexmark suite over the in-process nexmark generator.
    #[command(
        long_about = "Run Nexmark queries (benches/nexmark/queries, built into the binary) over the \
in-process nexmark generator, each into a blackhole sink, and report events, wall and CPU seconds \
of this process, cores used, events/s and events/s per core.\n\n\
Event time advances by 1/RATE s per event whatever the speed of the run, so RATE changes window \
and join results, not the speed. A query the engine rejects is reported with its error and the \
suite goes on.\n\n\
With --export FILE, writes the generated events as JSON lines instead (Flink's json format of the \
nexmark table) for other engines to read."
    )]
    Nexmark(NexmarkArgs),
    /// Load any Kinesis endpoint: PutRecords at a fixed rate, read back.
    #[command(
        long_about = "Drive PutRecords at a fixed rate (or as fast as the endpoint takes them) \
against any Kinesis endpoint (this server, AWS, an emulator), read the records back, and report \
records/s and MB/s in and out, PutRecords latency (p50, p99, p99.9), put-to-get latency, and \
throttled, failed, missing and duplicated records.\n\n\
At a fixed rate every PutRecords call has an intended send time, and its latency is measured \
from that time, not from when it was sent: a slow answer that delays the calls after it counts \
against each of them (coordinated omission). Requests are SigV4-signed with the key in \
RUNNEL_ACCESS_KEY_ID/RUNNEL_SECRET_ACCESS_KEY or the AWS_* environment, for AWS_REGION \
(default us-east-1)."
    )]
    Streams(StreamsBenchArgs),
}

#[derive(Debug, clap::Args)]
pub struct StreamsBenchArgs {
    /// The Kinesis endpoint
    #[arg(long, default_value = "http://127.0.0.1:4567")]
    pub endpoint: String,

    /// The stream to load
    #[arg(long, default_value = "runnel-bench")]
    pub stream: String,

    /// Create the stream first (and delete it afterwards)
    #[arg(long)]
    pub create: bool,

    /// Shards of a stream --create makes
    #[arg(long, default_value_t = 1)]
    pub shards: u32,

    /// Records per second over all producers; 0: as fast as the endpoint answers
    #[arg(long, default_value_t = 1000)]
    pub rate: u64,

    /// Bytes of data per record (at least 24: a record carries its send time and number)
    #[arg(long, default_value_t = 1024)]
    pub record_size: usize,

    /// How long to put, in seconds
    #[arg(long, default_value_t = 30)]
    pub duration: u64,

    /// Producer threads, each sending its share of the rate
    #[arg(long, default_value_t = 1)]
    pub producers: usize,

    /// Records per PutRecords call (1 to 500) [default: 100, fewer at low rates so that each
    /// producer calls at least 10 times a second]
    #[arg(long)]
    pub batch: Option<usize>,

    /// How records are read back: GetRecords polling (5 calls/s per shard), or efo
    /// (SubscribeToShard through a registered consumer)
    #[arg(long, value_enum, default_value = "polling")]
    pub consumer: ConsumerKind,

    /// One JSON object on stdout instead of a table
    #[arg(long)]
    pub json: bool,

    /// No progress on stderr
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ConsumerKind {
    Polling,
    Efo,
}

#[derive(Debug, clap::Args)]
pub struct NexmarkArgs {
    /// Query to run (q0 ... q22), or `all`
    #[arg(long, short, default_value = "all")]
    pub query: String,

    /// Events to generate
    #[arg(long, short, default_value_t = 10_000_000)]
    pub events: u64,

    /// Event-time rate: events per second of event time
    #[arg(long, default_value_t = 10_000_000)]
    pub rate: u64,

    /// Worker threads
    #[arg(long, short, default_value_t = 1)]
    pub workers: usize,

    /// One JSON object per query on stdout instead of a table
    #[arg(long)]
    pub json: bool,

    /// Write the events as JSON lines to this file instead of running queries
    #[arg(long)]
    pub export: Option<PathBuf>,

    /// Measure the generator alone (one thread per worker, no engine)
    #[arg(long, conflicts_with = "export")]
    pub generator_only: bool,

    /// Run each query twice, without checkpoints and with one every
    /// INTERVAL (such as '1 s'; exactly-once, kept in a RocksDB store in a
    /// scratch dir), and report both and their ratio
    #[arg(long, value_name = "INTERVAL")]
    pub checkpoint_interval: Option<String>,

    /// No progress on stderr
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum SqlCommand {
    /// Run a SQL script as one job, embedded: no server needed.
    #[command(
        long_about = "Run a SQL script (Flink's dialect) as one job, embedded in this process.\n\n\
CREATE TABLE / CREATE VIEW / SET statements set up the catalog; every INSERT INTO and bare SELECT \
becomes part of one dataflow. A bare SELECT prints its rows to stdout as Flink's print connector \
does. A job over bounded sources finishes, firing every window, and exits 0 when its input ends; \
progress goes to stderr. EXPLAIN prints the dataflow instead of running it.\n\n\
Connectors: filesystem, datagen, nexmark, print, blackhole, jdbc (PostgreSQL: scan, append or \
upsert sink, lookup joins), and kinesis with 'aws.endpoint' naming a Kinesis endpoint (a runnel \
server, or any other; SigV4 keys from 'aws.credentials.*' or the AWS_* environment), and \
kinesis-video with 'aws.endpoint' (a video stream's fragments or frames, read through the Kinesis \
Video API).\n\n\
A cluster of processes: run the same command once per process with --processes N, --process-id i \
and the same --hosts file (one host:port per line, in process-id order)."
    )]
    Run(SqlRunArgs),
}

#[derive(Debug, clap::Args)]
pub struct SqlRunArgs {
    /// The SQL script
    #[arg(long, short)]
    pub file: PathBuf,

    /// Worker threads in this process
    #[arg(long, short, default_value_t = 1)]
    pub workers: usize,

    /// Processes in the cluster
    #[arg(long, default_value_t = 1)]
    pub processes: usize,

    /// This process's index in the cluster, from 0
    #[arg(long, default_value_t = 0)]
    pub process_id: usize,

    /// File with one host:port per process, in process-id order
    #[arg(long)]
    pub hosts: Option<PathBuf>,

    /// No progress on stderr
    #[arg(long, short)]
    pub quiet: bool,

    /// Keep the job's checkpoints in DIR (a RocksDB store; the script sets
    /// 'execution.checkpointing.interval' to take them); with --processes,
    /// each process keeps its share in DIR/process-<id>
    #[arg(long, value_name = "DIR")]
    pub checkpoint_dir: Option<PathBuf>,

    /// Resume from the latest checkpoint in --checkpoint-dir instead of
    /// starting afresh
    #[arg(long, requires = "checkpoint_dir")]
    pub from_checkpoint: bool,
}

/// Every field is optional so that an unset flag falls through to the
/// environment, the config file and then the default.
#[derive(Debug, Default, clap::Args)]
pub struct ServerArgs {
    /// HTTP port for every service [default: 4567]
    #[arg(long, env = "RUNNEL_PORT")]
    pub port: Option<u16>,

    /// Address to listen on [default: 127.0.0.1]
    #[arg(long, env = "RUNNEL_LISTEN")]
    pub listen: Option<IpAddr>,

    /// Directory holding all state; created if missing [default: ./runnel-data]
    #[arg(long, env = "RUNNEL_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// TOML config file; `./runnel.toml` is read when present and this is not given
    #[arg(long, env = "RUNNEL_CONFIG")]
    pub config: Option<PathBuf>,

    /// Log format [default: human]
    #[arg(long, env = "RUNNEL_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,

    /// Log filter, as RUST_LOG spells it (e.g. `info,runnel=debug`) [default: info]
    #[arg(long, env = "RUNNEL_LOG")]
    pub log: Option<String>,

    /// Turn off the per-shard Kinesis throughput limits (1 MiB/s or 1,000
    /// records/s in, 2 MiB/s and 5 GetRecords/s out), e.g. for benchmarks
    #[arg(long, env = "RUNNEL_NO_SHARD_LIMITS")]
    pub no_shard_limits: bool,

    /// Timely workers of a job submitted without a parallelism [default: the number of cores]
    #[arg(long, env = "RUNNEL_WORKERS")]
    pub workers: Option<usize>,

    /// Serve HTTPS with this certificate chain (PEM, leaf first); needs --tls-key
    #[arg(
        long,
        env = "RUNNEL_TLS_CERT",
        value_name = "PATH",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,

    /// The private key of --tls-cert (PEM: PKCS#8, RSA or EC)
    #[arg(
        long,
        env = "RUNNEL_TLS_KEY",
        value_name = "PATH",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,

    /// Serve HTTPS with a certificate made for localhost (`self-signed`), or
    /// plain HTTP whatever the config file says (`off`)
    #[arg(
        long,
        env = "RUNNEL_TLS",
        value_enum,
        value_name = "MODE",
        conflicts_with_all = ["tls_cert", "tls_key"]
    )]
    pub tls: Option<crate::tls::TlsMode>,

    /// With TLS, serve plain HTTP too on the same port (by the first byte a
    /// client sends); without it plain HTTP connections are closed
    #[arg(long, env = "RUNNEL_TLS_ALLOW_PLAIN")]
    pub tls_allow_plain: bool,

    /// Serve on a non-loopback address without access keys: any caller may
    /// do anything. Without it such a server refuses to start
    #[arg(long, env = "RUNNEL_INSECURE")]
    pub insecure: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Human,
    Json,
}
