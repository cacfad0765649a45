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

pub struct Metrics {
    registry: Mutex<Registry>,
    requests: Family<RequestLabels, Counter>,
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
        Metrics {
            registry: Mutex::new(registry),
            requests,
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
