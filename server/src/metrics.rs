//! `GET /metrics`: Prometheus' text format with etcd's metric names, so
//! dashboards and alerts written for etcd read Concord unchanged. Every
//! value is read from the member's state when scraped (a fresh registry
//! per scrape), so nothing is counted twice or drifts.

use std::sync::{Arc, LazyLock};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use concord_core::metrics::HistogramSnapshot;
use concord_core::service::{EtcdService, ETCD_API_VERSION};
use prometheus::proto::{self, MetricFamily};
use prometheus::{Counter, Encoder, Gauge, GaugeVec, IntCounterVec, Opts, Registry, TextEncoder};

type Svc = Arc<EtcdService>;

/// One scrape's metrics.
fn gather(svc: &Svc) -> prometheus::Result<Vec<u8>> {
    let r = Registry::new();
    let gauge = |name: &str, help: &str, v: f64| -> prometheus::Result<()> {
        let g = Gauge::new(name, help)?;
        g.set(v);
        r.register(Box::new(g))
    };
    let counter = |name: &str, help: &str, v: f64| -> prometheus::Result<()> {
        let c = Counter::new(name, help)?;
        c.inc_by(v);
        r.register(Box::new(c))
    };
    let node = svc.node();
    let state = node.state();
    let leader = state.leader();
    let has_leader = !node.is_replicated() || leader != 0;
    gauge(
        "etcd_server_has_leader",
        "Whether or not a leader exists. 1 is existence, 0 is not.",
        f64::from(u8::from(has_leader)),
    )?;
    gauge(
        "etcd_server_is_leader",
        "Whether or not this member is a leader. 1 if is, 0 otherwise.",
        f64::from(u8::from(node.is_leader())),
    )?;
    counter(
        "etcd_server_leader_changes_seen_total",
        "The number of leader changes seen.",
        state.leader_changes() as f64,
    )?;
    gauge(
        "etcd_server_proposals_applied_total",
        "The total number of consensus proposals applied.",
        state.applied_index() as f64,
    )?;
    gauge(
        "etcd_server_quota_backend_bytes",
        "Current backend storage quota size in bytes.",
        svc.config().quota_backend_bytes as f64,
    )?;
    gauge(
        "etcd_mvcc_db_total_size_in_bytes",
        "Total size of the underlying database physically allocated in bytes.",
        state.db_size() as f64,
    )?;
    gauge(
        "etcd_mvcc_db_total_size_in_use_in_bytes",
        "Total size of the underlying database logically in use in bytes.",
        state.db_size_in_use() as f64,
    )?;
    let (keys, puts, deletes) = state.key_stats();
    gauge(
        "etcd_debugging_mvcc_keys_total",
        "Total number of keys (with history not yet compacted).",
        keys as f64,
    )?;
    counter(
        "etcd_mvcc_put_total",
        "Total number of puts seen by this member.",
        puts as f64,
    )?;
    counter(
        "etcd_mvcc_delete_total",
        "Total number of deletes seen by this member.",
        deletes as f64,
    )?;
    gauge(
        "etcd_debugging_mvcc_watcher_total",
        "Total number of watchers.",
        state.watcher_count() as f64,
    )?;
    let alarms = svc.alarms();
    let version = GaugeVec::new(
        Opts::new(
            "etcd_server_version",
            "Which version is running. 1 for 'server_version' label with current version.",
        ),
        &["server_version"],
    )?;
    version.with_label_values(&[ETCD_API_VERSION]).set(1.0);
    r.register(Box::new(version))?;
    let id = GaugeVec::new(
        Opts::new(
            "etcd_server_id",
            "Server or member ID in hexadecimal format. 1 for 'server_id' label with current ID.",
        ),
        &["server_id"],
    )?;
    id.with_label_values(&[&format!("{:x}", state.member_id)]).set(1.0);
    r.register(Box::new(id))?;
    gauge(
        "concord_alarms_raised",
        "Alarms (NOSPACE, CORRUPT) raised on the cluster.",
        alarms.len() as f64,
    )?;
    #[cfg(target_os = "linux")]
    r.register(Box::new(prometheus::process_collector::ProcessCollector::for_self()))?;
    let mut families = r.gather();
    families.extend(crate::grpc_metrics::REGISTRY.gather());
    families.extend(prometheus::core::Collector::collect(&*GATEWAY_REQUESTS));
    families.push(histogram(
        "etcd_disk_wal_fsync_duration_seconds",
        "The latency distributions of fsync called by WAL.",
        &concord_core::metrics::WAL_FSYNC.snapshot(),
    ));
    families.push(histogram(
        "etcd_disk_backend_commit_duration_seconds",
        "The latency distributions of commit called by backend.",
        &concord_core::metrics::BACKEND_COMMIT.snapshot(),
    ));
    // A family with no series yet (no request of that kind) is left out:
    // the text encoder refuses empty ones.
    families.retain(|f| !f.get_metric().is_empty());
    families.sort_by(|a, b| a.name().cmp(b.name()));
    let mut out = Vec::new();
    TextEncoder::new().encode(&families, &mut out)?;
    Ok(out)
}

/// A histogram read from core's atomics, as one metric family.
fn histogram(name: &str, help: &str, s: &HistogramSnapshot) -> MetricFamily {
    let mut h = proto::Histogram::default();
    h.set_sample_count(s.count);
    h.set_sample_sum(s.sum);
    h.set_bucket(
        s.buckets
            .iter()
            .map(|&(bound, count)| {
                let mut b = proto::Bucket::default();
                b.set_upper_bound(bound);
                b.set_cumulative_count(count);
                b
            })
            .collect(),
    );
    let mut m = proto::Metric::default();
    m.set_histogram(h);
    let mut f = MetricFamily::default();
    f.set_name(name.to_string());
    f.set_help(help.to_string());
    f.set_field_type(proto::MetricType::HISTOGRAM);
    f.set_metric(vec![m]);
    f
}

/// The JSON gateway's requests by route and HTTP status, since start.
static GATEWAY_REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    IntCounterVec::new(
        Opts::new(
            "concord_gateway_requests_total",
            "Requests to the HTTP gateway, by route and HTTP status.",
        ),
        &["path", "status"],
    )
    .expect("a valid metric")
});

/// Middleware on the gateway's routes: counts each request under its
/// route's pattern (so the label set stays bounded) and status.
pub async fn count_gateway(req: Request, next: Next) -> Response {
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "other".to_string(), |p| p.as_str().to_string());
    let resp = next.run(req).await;
    GATEWAY_REQUESTS
        .with_label_values(&[path.as_str(), resp.status().as_str()])
        .inc();
    resp
}

/// `GET /metrics`.
pub async fn metrics(State(svc): State<Svc>) -> Response {
    match gather(&svc) {
        Ok(body) => (StatusCode::OK, [(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)], body).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "metrics could not be gathered");
            (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response()
        }
    }
}
