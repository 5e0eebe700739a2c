//! Pure helpers of the watch logic: which events a watcher wants, and how
//! a large response is split into fragments.

use prost::Message;

use crate::api::etcdserverpb::watch_create_request::FilterType;
use crate::api::etcdserverpb::WatchResponse;
use crate::api::mvccpb::event::EventType;
use crate::api::mvccpb::Event;

/// What one watcher selects.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selector {
    /// First key.
    pub key: Vec<u8>,
    /// End of the range (etcd's convention: empty = one key, `"\0"` = to the end).
    pub range_end: Vec<u8>,
    /// Drop PUT events.
    pub no_put: bool,
    /// Drop DELETE events.
    pub no_delete: bool,
}

impl Selector {
    /// A selector from a create request's fields.
    pub fn new(key: Vec<u8>, range_end: Vec<u8>, filters: &[i32]) -> Self {
        Selector {
            key,
            range_end,
            no_put: filters.contains(&(FilterType::Noput as i32)),
            no_delete: filters.contains(&(FilterType::Nodelete as i32)),
        }
    }

    /// True if `key` is in the watched range.
    pub fn covers(&self, key: &[u8]) -> bool {
        if self.range_end.is_empty() {
            key == self.key.as_slice()
        } else if self.range_end == [0] {
            key >= self.key.as_slice()
        } else {
            key >= self.key.as_slice() && key < self.range_end.as_slice()
        }
    }

    /// True if the watcher wants `ev`.
    pub fn wants(&self, ev: &Event) -> bool {
        let Some(kv) = &ev.kv else { return false };
        let filtered = match ev.r#type() {
            EventType::Put => self.no_put,
            EventType::Delete => self.no_delete,
        };
        !filtered && self.covers(&kv.key)
    }
}

/// Splits `resp` so that each part stays under `limit` bytes where a single
/// event allows it; every part but the last has `fragment` set. A response
/// that fits is returned whole.
pub fn fragments(resp: WatchResponse, limit: usize) -> Vec<WatchResponse> {
    if resp.encoded_len() <= limit || resp.events.len() < 2 {
        return vec![resp];
    }
    let mut out = Vec::new();
    let mut cur = WatchResponse {
        events: Vec::new(),
        ..resp.clone()
    };
    let mut size = cur.encoded_len();
    for ev in resp.events {
        let ev_len = ev.encoded_len() + 4;
        if !cur.events.is_empty() && size + ev_len > limit {
            let next = WatchResponse {
                events: Vec::new(),
                ..cur.clone()
            };
            cur.fragment = true;
            out.push(std::mem::replace(&mut cur, next));
            size = cur.encoded_len();
        }
        size += ev_len;
        cur.events.push(ev);
    }
    out.push(cur);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::mvccpb::KeyValue;

    fn put(key: &str, size: usize) -> Event {
        Event {
            r#type: EventType::Put as i32,
            kv: Some(KeyValue {
                key: key.into(),
                value: vec![0; size],
                ..Default::default()
            }),
            prev_kv: None,
        }
    }

    #[test]
    fn selectors() {
        let prefix = Selector::new(b"a/".to_vec(), b"a0".to_vec(), &[]);
        assert!(prefix.covers(b"a/x") && !prefix.covers(b"a0") && !prefix.covers(b"b"));
        let from = Selector::new(b"m".to_vec(), vec![0], &[FilterType::Noput as i32]);
        assert!(from.covers(b"z") && !from.covers(b"a"));
        assert!(!from.wants(&put("z", 1)));
    }

    #[test]
    fn fragments_keep_order_and_mark_all_but_last() {
        let resp = WatchResponse {
            watch_id: 7,
            events: (0..10).map(|i| put(&format!("k{i}"), 100)).collect(),
            ..Default::default()
        };
        let parts = fragments(resp.clone(), 350);
        assert!(parts.len() > 1);
        assert!(parts.iter().all(|p| p.encoded_len() <= 350 && p.watch_id == 7));
        assert!(parts[..parts.len() - 1].iter().all(|p| p.fragment) && !parts.last().unwrap().fragment);
        let joined: Vec<Event> = parts.into_iter().flat_map(|p| p.events).collect();
        assert_eq!(joined, resp.events);
        assert_eq!(fragments(resp.clone(), 1 << 20), vec![resp]);
    }
}
