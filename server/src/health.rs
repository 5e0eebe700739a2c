//! Health endpoints as etcd serves them. `GET /health` as etcd 3.4
//! (`{"health":"true"}` or 503 `{"health":"false"}`), with 3.5's
//! `?serializable=true` (this member alone, leader or not) and
//! `?exclude=NOSPACE` (an alarm that does not count). `GET /livez` and
//! `GET /readyz` as etcd 3.6: named checks, `ok` when all pass,
//! `?verbose` listing each as `[+]name ok`, `?exclude=name`, 503 with the
//! `[-]name failed: reason` lines when one fails, and a path per check
//! (`/readyz/linearizable_read`).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use concord_core::api::etcdserverpb::{AlarmType, RangeRequest};
use concord_core::service::{Caller, EtcdService};

type Svc = Arc<EtcdService>;

/// How long the read a health check makes may take (etcd: its request
/// timeout, 5 s plus two election timeouts by default).
const READ_TIMEOUT: Duration = Duration::from_secs(7);

/// The values of `name` in a query string (`exclude=a&exclude=b`).
fn params<'a>(query: &'a Option<String>, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    query.as_deref().unwrap_or("").split('&').filter_map(move |kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == name).then_some(v)
    })
}

fn has_param(query: &Option<String>, name: &str) -> bool {
    params(query, name).next().is_some()
}

/// What stops the member serving, or `None`: fatal error, an alarm not
/// excluded, no leader (unless `serializable`), not yet published.
fn member_problem(svc: &Svc, excluded: &[&str], serializable: bool) -> Option<String> {
    if let Some(fatal) = svc.node().fatal().borrow().clone() {
        return Some(fatal);
    }
    for a in svc.alarms() {
        let name = AlarmType::try_from(a.alarm).map_or("UNKNOWN", |t| t.as_str_name());
        if !excluded.contains(&name) {
            return Some(format!("ALARM {name}"));
        }
    }
    if !serializable && svc.node().is_replicated() && svc.node().state().leader() == 0 {
        return Some("RAFT NO LEADER".into());
    }
    if !svc.is_published() {
        return Some("member not published yet".into());
    }
    None
}

/// A one-key read as the member itself (auth does not apply), local or
/// linearizable.
async fn read(svc: &Svc, serializable: bool) -> Result<(), String> {
    let req = RangeRequest {
        key: vec![0],
        keys_only: true,
        limit: 1,
        serializable,
        ..Default::default()
    };
    match tokio::time::timeout(READ_TIMEOUT, svc.range(&Caller::member(), req)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("RANGE ERROR:{e}")),
        Err(_) => Err("RANGE ERROR:context deadline exceeded".into()),
    }
}

fn method_not_allowed() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        [
            (header::ALLOW, "GET"),
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
        ],
        "Method Not Allowed\n",
    )
        .into_response()
}

/// `GET /health`.
async fn health(State(svc): State<Svc>, RawQuery(query): RawQuery) -> Response {
    let serializable = params(&query, "serializable").any(|v| v == "true");
    let excluded: Vec<&str> = params(&query, "exclude").collect();
    let mut problem = member_problem(&svc, &excluded, serializable);
    if problem.is_none() {
        problem = read(&svc, serializable).await.err();
    }
    let (status, body) = match problem {
        None => {
            crate::metrics::HEALTH_SUCCESS.inc();
            (StatusCode::OK, r#"{"health":"true"}"#)
        }
        Some(reason) => {
            crate::metrics::HEALTH_FAILURES.inc();
            tracing::warn!(%reason, "serving /health false");
            (StatusCode::SERVICE_UNAVAILABLE, r#"{"health":"false"}"#)
        }
    };
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
}

/// A named check of `/livez` or `/readyz`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Check {
    DataCorruption,
    SerializableRead,
    LinearizableRead,
}

impl Check {
    fn name(self) -> &'static str {
        match self {
            Check::DataCorruption => "data_corruption",
            Check::SerializableRead => "serializable_read",
            Check::LinearizableRead => "linearizable_read",
        }
    }

    async fn run(self, svc: &Svc) -> Result<(), String> {
        if let Some(fatal) = svc.node().fatal().borrow().clone() {
            return Err(fatal);
        }
        match self {
            Check::DataCorruption => {
                let corrupt = svc.alarms().iter().any(|a| a.alarm == AlarmType::Corrupt as i32);
                if corrupt {
                    Err("alarm activated: CORRUPT".into())
                } else {
                    Ok(())
                }
            }
            Check::SerializableRead => read(svc, true).await,
            Check::LinearizableRead => read(svc, false).await,
        }
    }
}

const LIVEZ: &[Check] = &[Check::SerializableRead];
const READYZ: &[Check] = &[Check::DataCorruption, Check::SerializableRead, Check::LinearizableRead];

/// Runs `checks`; 200 `ok` (with each line under `?verbose`) or 503 with
/// each line.
async fn run_checks(svc: &Svc, checks: &[Check], verbose: bool) -> Response {
    let mut lines = String::new();
    let mut failed = false;
    for c in checks {
        match c.run(svc).await {
            Ok(()) => lines.push_str(&format!("[+]{} ok\n", c.name())),
            Err(e) => {
                failed = true;
                lines.push_str(&format!("[-]{} failed: {e}\n", c.name()));
            }
        }
    }
    let headers = [
        (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ];
    if failed {
        tracing::warn!(checks = %lines.trim_end(), "health check failed");
        return (StatusCode::SERVICE_UNAVAILABLE, headers, format!("{lines}\n")).into_response();
    }
    let body = if verbose { format!("{lines}ok\n") } else { "ok\n".into() };
    (StatusCode::OK, headers, body).into_response()
}

/// `GET /livez` or `/readyz`: every check of `all` but those excluded.
async fn root(svc: Svc, all: &'static [Check], query: Option<String>) -> Response {
    let excluded: Vec<&str> = params(&query, "exclude").collect();
    let checks: Vec<Check> = all.iter().copied().filter(|c| !excluded.contains(&c.name())).collect();
    run_checks(&svc, &checks, has_param(&query, "verbose")).await
}

/// The health routes: `/health`, `/livez[/check]`, `/readyz[/check]`,
/// and `/metrics` beside them (etcd serves them together).
pub fn routes() -> Router<Svc> {
    let mut r = Router::new()
        .route("/metrics", get(crate::metrics::metrics))
        .route("/health", get(health).fallback(|| async { method_not_allowed() }))
        .route(
            "/livez",
            get(|State(svc): State<Svc>, RawQuery(q): RawQuery| root(svc, LIVEZ, q))
                .fallback(|| async { method_not_allowed() }),
        )
        .route(
            "/readyz",
            get(|State(svc): State<Svc>, RawQuery(q): RawQuery| root(svc, READYZ, q))
                .fallback(|| async { method_not_allowed() }),
        );
    for (prefix, checks) in [("/livez", LIVEZ), ("/readyz", READYZ)] {
        for &check in checks {
            r = r.route(
                &format!("{prefix}/{}", check.name()),
                get(move |State(svc): State<Svc>, RawQuery(q): RawQuery| async move {
                    run_checks(&svc, &[check], has_param(&q, "verbose")).await
                })
                .fallback(|| async { method_not_allowed() }),
            );
        }
    }
    r
}
