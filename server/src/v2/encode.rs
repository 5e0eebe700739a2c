//! etcd's v2 JSON: nodes with their fields in etcd's order and zero values
//! left out, times as Go writes them (RFC 3339 with nanoseconds, UTC),
//! one JSON document and a newline per answer.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use concord_core::v2::{Event, NodeView, V2Error};
use serde::Serialize;

#[derive(Serialize)]
struct NodeJson<'a> {
    #[serde(skip_serializing_if = "str::is_empty")]
    key: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<&'a str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    dir: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    expiration: Option<String>,
    #[serde(skip_serializing_if = "is_zero_i64")]
    ttl: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    nodes: Option<Vec<NodeJson<'a>>>,
    #[serde(rename = "modifiedIndex", skip_serializing_if = "is_zero_u64")]
    modified_index: u64,
    #[serde(rename = "createdIndex", skip_serializing_if = "is_zero_u64")]
    created_index: u64,
}

fn is_zero_i64(v: &i64) -> bool {
    *v == 0
}

fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}

fn node(n: &NodeView) -> NodeJson<'_> {
    NodeJson {
        key: &n.key,
        value: n.value.as_deref(),
        dir: n.dir,
        expiration: (n.expiration != 0).then(|| unix_nanos_rfc3339(n.expiration)),
        ttl: n.ttl,
        nodes: n.nodes.as_ref().map(|ns| ns.iter().map(node).collect()),
        modified_index: n.modified_index,
        created_index: n.created_index,
    }
}

#[derive(Serialize)]
struct EventJson<'a> {
    action: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    node: Option<NodeJson<'a>>,
    #[serde(rename = "prevNode", skip_serializing_if = "Option::is_none")]
    prev_node: Option<NodeJson<'a>>,
}

/// An event's body; without its nodes for `noValueOnSuccess`.
pub fn event_body(e: &Event, omit_nodes: bool) -> Vec<u8> {
    let j = EventJson {
        action: e.action.as_str(),
        node: (!omit_nodes).then(|| node(&e.node)),
        prev_node: if omit_nodes {
            None
        } else {
            e.prev_node.as_ref().map(node)
        },
    };
    let mut out = serde_json::to_vec(&j).expect("plain data serializes");
    out.push(b'\n');
    out
}

/// An error's body: `errorCode`, `message`, `cause` (if any), `index`.
pub fn error_body(e: &V2Error) -> Vec<u8> {
    #[derive(Serialize)]
    struct ErrorJson<'a> {
        #[serde(rename = "errorCode")]
        error_code: u32,
        message: &'a str,
        #[serde(skip_serializing_if = "str::is_empty")]
        cause: &'a str,
        index: u64,
    }
    let mut out = serde_json::to_vec(&ErrorJson {
        error_code: e.code.number(),
        message: e.code.message(),
        cause: &e.cause,
        index: e.index,
    })
    .expect("plain data serializes");
    out.push(b'\n');
    out
}

/// Go's `time.Time` in JSON (RFC 3339, nanoseconds without trailing
/// zeros, `Z`), from Unix nanoseconds.
pub fn unix_nanos_rfc3339(ns: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ns)).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let mut s = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    let nanos = t.nanosecond();
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// A wall-clock time as Go's JSON writes it.
pub fn go_time(t: SystemTime) -> String {
    let ns = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    unix_nanos_rfc3339(i64::try_from(ns).unwrap_or(i64::MAX))
}

/// A duration as Go's `Duration.String` writes it (`1h2m3.5s`, `15.2s`,
/// `250ms`).
pub fn go_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".into();
    }
    if ns < 1_000 {
        return format!("{ns}ns");
    }
    if ns < 1_000_000 {
        return format!("{}µs", trim(ns as f64 / 1e3));
    }
    if ns < 1_000_000_000 {
        return format!("{}ms", trim(ns as f64 / 1e6));
    }
    let secs = d.as_secs();
    let (h, m) = (secs / 3600, (secs / 60) % 60);
    let s = (secs % 60) as f64 + f64::from(d.subsec_nanos()) / 1e9;
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    out.push_str(&format!("{}s", trim(s)));
    out
}

fn trim(v: f64) -> String {
    let s = format!("{v:.9}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_durations_as_go_writes_them() {
        assert_eq!(
            unix_nanos_rfc3339(1_795_697_373_288_403_310),
            "2026-11-26T12:49:33.28840331Z"
        );
        assert_eq!(unix_nanos_rfc3339(1_795_697_373_000_000_000), "2026-11-26T12:49:33Z");
        assert_eq!(go_duration(Duration::from_nanos(15_220_708_584)), "15.220708584s");
        assert_eq!(go_duration(Duration::from_secs(3723)), "1h2m3s");
        assert_eq!(go_duration(Duration::from_millis(250)), "250ms");
    }

    #[test]
    fn nodes_in_etcds_shape() {
        let e = Event {
            action: concord_core::v2::Action::Set,
            node: NodeView {
                key: "/foo".into(),
                value: Some(String::new()),
                modified_index: 5,
                created_index: 5,
                ..Default::default()
            },
            prev_node: None,
            etcd_index: 5,
        };
        assert_eq!(
            String::from_utf8(event_body(&e, false)).unwrap(),
            "{\"action\":\"set\",\"node\":{\"key\":\"/foo\",\"value\":\"\",\"modifiedIndex\":5,\"createdIndex\":5}}\n"
        );
    }
}
