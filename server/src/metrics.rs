//! `GET /metrics`: Prometheus' text format with etcd's metric names, so
//! dashboards and alerts written for etcd read Concord unchanged. Every
//! value is read from the member's state when scraped (a fresh registry
//! per scrape), so nothing is counted twice or drifts.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use concord_core::metrics::{self as core_metrics, Counter as CoreCounter, HistogramSnapshot};
use concord_core::service::{EtcdService, ETCD_API_VERSION};
use prometheus::proto::{self, MetricFamily};
use prometheus::{
    Counter, Encoder, Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};

type Svc = Arc<EtcdService>;

/// A plain series' type.
enum Kind {
    Gauge,
    Counter,
}

/// One scrape's metrics.
fn gather(svc: &Svc) -> prometheus::Result<Vec<u8>> {
    let r = Registry::new();
    let node = svc.node();
    let state = node.state();
    let leader = state.leader();
    let has_leader = !node.is_replicated() || leader != 0;
    let (keys, puts, deletes) = state.key_stats();
    let watch = state.watch_stats();
    let alarms = svc.alarms();
    let series = [
        (
            Kind::Gauge,
            "etcd_server_has_leader",
            "Whether or not a leader exists. 1 is existence, 0 is not.",
            f64::from(u8::from(has_leader)),
        ),
        (
            Kind::Gauge,
            "etcd_server_is_leader",
            "Whether or not this member is a leader. 1 if is, 0 otherwise.",
            f64::from(u8::from(node.is_leader())),
        ),
        (
            Kind::Counter,
            "etcd_server_leader_changes_seen_total",
            "The number of leader changes seen.",
            state.leader_changes() as f64,
        ),
        (
            Kind::Gauge,
            "etcd_server_proposals_applied_total",
            "The total number of consensus proposals applied.",
            state.applied_index() as f64,
        ),
        (
            Kind::Gauge,
            "etcd_server_proposals_committed_total",
            "The total number of consensus proposals committed.",
            state.committed_index() as f64,
        ),
        (
            Kind::Gauge,
            "etcd_server_proposals_pending",
            "The current number of pending proposals to commit.",
            core_metrics::PROPOSALS_PENDING.get() as f64,
        ),
        (
            Kind::Counter,
            "etcd_server_proposals_failed_total",
            "The total number of failed proposals seen.",
            core_metrics::PROPOSALS_FAILED.get() as f64,
        ),
        (
            Kind::Counter,
            "etcd_server_slow_apply_total",
            "The total number of slow apply requests (likely overloaded from slow disk).",
            core_metrics::SLOW_APPLIES.get() as f64,
        ),
        (
            Kind::Counter,
            "etcd_server_health_success",
            "The total number of successful health checks",
            HEALTH_SUCCESS.get() as f64,
        ),
        (
            Kind::Counter,
            "etcd_server_health_failures",
            "The total number of failed health checks",
            HEALTH_FAILURES.get() as f64,
        ),
        (
            Kind::Counter,
            "etcd_debugging_lease_granted_total",
            "The total number of granted leases.",
            core_metrics::LEASES_GRANTED.get() as f64,
        ),
        (
            Kind::Counter,
            "etcd_debugging_lease_revoked_total",
            "The total number of revoked leases.",
            core_metrics::LEASES_REVOKED.get() as f64,
        ),
        (
            Kind::Counter,
            "etcd_debugging_lease_renewed_total",
            "The number of renewed leases seen by the leader.",
            core_metrics::LEASES_RENEWED.get() as f64,
        ),
        (
            Kind::Gauge,
            "etcd_server_quota_backend_bytes",
            "Current backend storage quota size in bytes.",
            svc.config().quota_backend_bytes as f64,
        ),
        (
            Kind::Gauge,
            "etcd_mvcc_db_total_size_in_bytes",
            "Total size of the underlying database physically allocated in bytes.",
            state.db_size() as f64,
        ),
        (
            Kind::Gauge,
            "etcd_debugging_mvcc_db_total_size_in_bytes",
            "Total size of the underlying database physically allocated in bytes (etcd 3.4's older name).",
            state.db_size() as f64,
        ),
        (
            Kind::Gauge,
            "etcd_mvcc_db_total_size_in_use_in_bytes",
            "Total size of the underlying database logically in use in bytes.",
            state.db_size_in_use() as f64,
        ),
        (
            Kind::Gauge,
            "etcd_debugging_mvcc_keys_total",
            "Total number of keys (with history not yet compacted).",
            keys as f64,
        ),
        (
            Kind::Counter,
            "etcd_mvcc_put_total",
            "Total number of puts seen by this member.",
            puts as f64,
        ),
        (
            Kind::Counter,
            "etcd_mvcc_delete_total",
            "Total number of deletes seen by this member.",
            deletes as f64,
        ),
        (
            Kind::Gauge,
            "etcd_debugging_mvcc_watcher_total",
            "Total number of watchers.",
            watch.watchers as f64,
        ),
        (
            Kind::Gauge,
            "etcd_debugging_mvcc_slow_watcher_total",
            "Total number of unsynced slow watchers.",
            watch.unsynced as f64,
        ),
        (
            Kind::Gauge,
            "etcd_debugging_mvcc_watch_stream_total",
            "Total number of watch streams.",
            watch.streams as f64,
        ),
        (
            Kind::Gauge,
            "concord_watch_catchup_lag_revisions",
            "Revisions the furthest-behind watcher still has to replay from history (0: every watcher is live).",
            watch.max_lag as f64,
        ),
        (
            Kind::Gauge,
            "concord_alarms_raised",
            "Alarms (NOSPACE, CORRUPT) raised on the cluster.",
            alarms.len() as f64,
        ),
    ];
    for (kind, name, help, v) in series {
        match kind {
            Kind::Gauge => {
                let g = Gauge::new(name, help)?;
                g.set(v);
                r.register(Box::new(g))?;
            }
            Kind::Counter => {
                let c = Counter::new(name, help)?;
                c.inc_by(v);
                r.register(Box::new(c))?;
            }
        }
    }
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
    #[cfg(target_os = "linux")]
    r.register(Box::new(prometheus::process_collector::ProcessCollector::for_self()))?;
    let mut families = r.gather();
    families.extend(crate::grpc_metrics::REGISTRY.gather());
    families.extend(prometheus::core::Collector::collect(&*GATEWAY_REQUESTS));
    families.extend(prometheus::core::Collector::collect(&*PEER_SENT_BYTES));
    families.extend(prometheus::core::Collector::collect(&*PEER_RECEIVED_BYTES));
    families.extend(prometheus::core::Collector::collect(&*PEER_SENT_FAILURES));
    families.extend(prometheus::core::Collector::collect(&*PEER_RTT));
    families.push(histogram(
        "concord_write_batch_size",
        "Entries made durable by one append of the write path (one fdatasync each).",
        &core_metrics::WRITE_BATCH.snapshot(),
    ));
    families.push(histogram(
        "etcd_disk_wal_fsync_duration_seconds",
        "The latency distributions of fsync called by WAL.",
        &core_metrics::WAL_FSYNC.snapshot(),
    ));
    families.push(histogram(
        "etcd_disk_backend_commit_duration_seconds",
        "The latency distributions of commit called by backend.",
        &core_metrics::BACKEND_COMMIT.snapshot(),
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

/// `/health` answers that were true (etcd: `etcd_server_health_success`).
pub static HEALTH_SUCCESS: CoreCounter = CoreCounter::new();
/// `/health` answers that were false (etcd: `etcd_server_health_failures`).
pub static HEALTH_FAILURES: CoreCounter = CoreCounter::new();

/// A counter by one peer label (`To` or `From`), as etcd's network metrics.
fn peer_counter(name: &str, help: &str, label: &str) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), &[label]).expect("a valid metric")
}

static PEER_SENT_BYTES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    peer_counter(
        "etcd_network_peer_sent_bytes_total",
        "The total number of bytes sent to peers.",
        "To",
    )
});
static PEER_RECEIVED_BYTES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    peer_counter(
        "etcd_network_peer_received_bytes_total",
        "The total number of bytes received from peers.",
        "From",
    )
});
static PEER_SENT_FAILURES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    peer_counter(
        "etcd_network_peer_sent_failures_total",
        "The total number of send failures from peers.",
        "To",
    )
});
static PEER_RTT: LazyLock<HistogramVec> = LazyLock::new(|| {
    HistogramVec::new(
        HistogramOpts::new(
            "etcd_network_peer_round_trip_time_seconds",
            "Round-Trip-Time histogram between peers",
        )
        // etcd's: 0.1 ms doubling, 16 buckets.
        .buckets(prometheus::exponential_buckets(0.0001, 2.0, 16).expect("valid buckets")),
        &["To"],
    )
    .expect("a valid metric")
});

/// What etcd's `/v2/stats/leader` reports of one follower: the round
/// trips measured to it (in ms) and the sends that worked or failed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FollowerStats {
    pub current_ms: f64,
    pub count: u64,
    pub sum_ms: f64,
    pub sum_sq_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
    pub success: u64,
    pub fail: u64,
}

/// Per peer (members only: IDs come from the configuration).
static FOLLOWERS: LazyLock<std::sync::Mutex<std::collections::BTreeMap<u64, FollowerStats>>> =
    LazyLock::new(Default::default);

fn followers() -> std::sync::MutexGuard<'static, std::collections::BTreeMap<u64, FollowerStats>> {
    FOLLOWERS.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What is known of each peer, by ID.
pub fn follower_stats() -> std::collections::BTreeMap<u64, FollowerStats> {
    followers().clone()
}

/// Bytes sent to member `to` over the peer port.
pub fn peer_sent(to: u64, bytes: usize) {
    followers().entry(to).or_default().success += 1;
    PEER_SENT_BYTES
        .with_label_values(&[format!("{to:x}").as_str()])
        .inc_by(bytes as u64);
}

/// Bytes received on the peer port from `from` (a member ID in hex, or
/// "unknown").
pub fn peer_received(from: &str, bytes: usize) {
    PEER_RECEIVED_BYTES.with_label_values(&[from]).inc_by(bytes as u64);
}

/// A send to member `to` that failed.
pub fn peer_send_failed(to: u64) {
    followers().entry(to).or_default().fail += 1;
    PEER_SENT_FAILURES
        .with_label_values(&[format!("{to:x}").as_str()])
        .inc();
}

/// One measured round trip to member `to`.
pub fn peer_round_trip(to: u64, took: Duration) {
    {
        let ms = took.as_secs_f64() * 1e3;
        let mut all = followers();
        let f = all.entry(to).or_default();
        f.min_ms = if f.count == 0 { ms } else { f.min_ms.min(ms) };
        f.max_ms = f.max_ms.max(ms);
        f.current_ms = ms;
        f.count += 1;
        f.sum_ms += ms;
        f.sum_sq_ms += ms * ms;
    }
    PEER_RTT
        .with_label_values(&[format!("{to:x}").as_str()])
        .observe(took.as_secs_f64());
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
