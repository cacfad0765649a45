//! Prometheus metrics served at `GET /metrics`.

use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    service: String,
    operation: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    job: String,
    name: String,
}

type JobGauge = Family<JobLabels, Gauge<i64, std::sync::atomic::AtomicI64>>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryStreamLabels {
    delivery_stream: String,
}

type DeliveryGauge = Family<DeliveryStreamLabels, Gauge<i64, std::sync::atomic::AtomicI64>>;

/// A job's figures as `/metrics` shows them.
pub struct JobFigures {
    pub id: String,
    pub name: String,
    pub running: bool,
    pub rows_in: u64,
    pub rows_out: u64,
    pub late_rows: u64,
    pub state_rows: u64,
    /// Milliseconds from the job's watermark to now, while it has one.
    pub watermark_lag_ms: Option<i64>,
}

pub struct Metrics {
    registry: Mutex<Registry>,
    requests: Family<RequestLabels, Counter>,
    jobs: [JobGauge; 6],
    firehose: [DeliveryGauge; 8],
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("runnel");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "Requests answered, by service, operation and HTTP status",
            requests.clone(),
        );
        let start_time = Gauge::<i64, std::sync::atomic::AtomicI64>::default();
        registry.register(
            "start_time_seconds",
            "Unix time at which the server started",
            start_time.clone(),
        );
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        start_time.set(started);
        let jobs: [JobGauge; 6] = Default::default();
        for (family, (name, help)) in jobs.iter().zip([
            ("job_running", "1 while the job runs, 0 once it has ended"),
            ("job_rows_in", "Rows the job's sources have read"),
            ("job_rows_out", "Rows the job's sinks have been given"),
            (
                "job_late_rows",
                "Rows that came after the watermark, dropped or sent aside",
            ),
            ("job_state_rows", "Rows and keys the job's operators hold"),
            (
                "job_watermark_lag_milliseconds",
                "How far the job's watermark is behind the wall clock",
            ),
        ]) {
            registry.register(name, help, family.clone());
        }
        let firehose: [DeliveryGauge; 8] = Default::default();
        for (family, (name, help)) in firehose.iter().zip([
            (
                "firehose_incoming_records",
                "Records the delivery stream has buffered",
            ),
            (
                "firehose_incoming_bytes",
                "Bytes of records the delivery stream has buffered",
            ),
            (
                "firehose_delivered_records",
                "Records delivered to the destination",
            ),
            (
                "firehose_delivered_bytes",
                "Bytes of records delivered (before compression)",
            ),
            (
                "firehose_delivered_objects",
                "Objects written to the destination",
            ),
            (
                "firehose_delivery_failures",
                "Failed attempts to write to the destination",
            ),
            (
                "firehose_buffered_bytes",
                "Bytes buffered and not yet delivered",
            ),
            (
                "firehose_data_freshness_milliseconds",
                "Age of the oldest record of the last delivered object when it was delivered",
            ),
        ]) {
            registry.register(name, help, family.clone());
        }
        Metrics {
            registry: Mutex::new(registry),
            requests,
            jobs,
            firehose,
        }
    }

    pub fn record_request(&self, service: &str, operation: &str, status: u16) {
        self.requests
            .get_or_create(&RequestLabels {
                service: service.to_string(),
                operation: operation.to_string(),
                status,
            })
            .inc();
    }

    /// Replaces the per-job gauges with `jobs`' figures (a deleted job's
    /// series go away).
    pub fn record_jobs(&self, jobs: &[JobFigures]) {
        for family in &self.jobs {
            family.clear();
        }
        let [running, rows_in, rows_out, late, state, lag] = &self.jobs;
        for job in jobs {
            let labels = JobLabels {
                job: job.id.clone(),
                name: job.name.clone(),
            };
            let as_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
            running.get_or_create(&labels).set(i64::from(job.running));
            rows_in.get_or_create(&labels).set(as_i64(job.rows_in));
            rows_out.get_or_create(&labels).set(as_i64(job.rows_out));
            late.get_or_create(&labels).set(as_i64(job.late_rows));
            state.get_or_create(&labels).set(as_i64(job.state_rows));
            if let Some(ms) = job.watermark_lag_ms {
                lag.get_or_create(&labels).set(ms);
            }
        }
    }

    /// Replaces the per-delivery-stream gauges with `streams`' figures.
    pub fn record_firehose(&self, streams: &[(String, runnel_firehose::FiguresSnapshot)]) {
        for family in &self.firehose {
            family.clear();
        }
        for (name, figures) in streams {
            let labels = DeliveryStreamLabels {
                delivery_stream: name.clone(),
            };
            let values = [
                figures.incoming_records,
                figures.incoming_bytes,
                figures.delivered_records,
                figures.delivered_bytes,
                figures.delivered_objects,
                figures.delivery_failures,
                figures.buffered_bytes,
                figures.freshness_ms,
            ];
            for (family, value) in self.firehose.iter().zip(values) {
                family
                    .get_or_create(&labels)
                    .set(i64::try_from(value).unwrap_or(i64::MAX));
            }
        }
    }

    pub fn render(&self) -> String {
        let mut text = String::new();
        let registry = self
            .registry
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Encoding into a String only fails if a metric's Display does.
        let _ = prometheus_client::encoding::text::encode(&mut text, &registry);
        text
    }
}
