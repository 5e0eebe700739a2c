//! Key ranges a user may access, merged, and the question whether they
//! cover a request's range.

/// The kind of access a request needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Range, watch, txn compares.
    Read,
    /// Put, delete, lease revoke.
    Write,
}

/// The end of a half-open key interval; `None` is past every key.
type End = Option<Vec<u8>>;

/// `[key, range_end)` with etcd's conventions: an empty end is the key
/// alone (`[key, key + "\0")`), `"\0"` is every key from `key` on.
fn interval(key: &[u8], range_end: &[u8]) -> (Vec<u8>, End) {
    match range_end {
        [] => {
            let mut end = key.to_vec();
            end.push(0);
            (key.to_vec(), Some(end))
        }
        [0] => (key.to_vec(), None),
        end => (key.to_vec(), Some(end.to_vec())),
    }
}

/// `a <= b` for interval ends, `None` being the largest.
fn end_le(a: &End, b: &End) -> bool {
    match (a, b) {
        (_, None) => true,
        (None, Some(_)) => false,
        (Some(a), Some(b)) => a <= b,
    }
}

/// A set of key intervals.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RangeSet {
    intervals: Vec<(Vec<u8>, End)>,
}

impl RangeSet {
    /// Adds `[key, range_end)` (call [`RangeSet::normalize`] after adding).
    pub fn add(&mut self, key: &[u8], range_end: &[u8]) {
        let (start, end) = interval(key, range_end);
        if end_le(&end, &Some(start.clone())) {
            return; // empty
        }
        self.intervals.push((start, end));
    }

    /// Sorts and merges overlapping and touching intervals.
    pub fn normalize(&mut self) {
        self.intervals.sort();
        let mut merged: Vec<(Vec<u8>, End)> = Vec::with_capacity(self.intervals.len());
        for (start, end) in self.intervals.drain(..) {
            if let Some(last) = merged.last_mut() {
                if end_le(&Some(start.clone()), &last.1) {
                    if !end_le(&end, &last.1) {
                        last.1 = end;
                    }
                    continue;
                }
            }
            merged.push((start, end));
        }
        self.intervals = merged;
    }

    /// Whether one interval of the (normalized) set holds all of `[key, range_end)`.
    pub fn covers(&self, key: &[u8], range_end: &[u8]) -> bool {
        let (start, end) = interval(key, range_end);
        if end.as_ref().is_some_and(|e| e.as_slice() <= start.as_slice()) {
            return true; // an empty range asks for nothing
        }
        let i = self
            .intervals
            .partition_point(|(s, _)| s.as_slice() <= start.as_slice());
        i > 0 && end_le(&end, &self.intervals[i - 1].1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[(&str, &str)]) -> RangeSet {
        let mut s = RangeSet::default();
        for (k, e) in items {
            s.add(k.as_bytes(), e.as_bytes());
        }
        s.normalize();
        s
    }

    #[test]
    fn merges_touching_ranges() {
        let s = set(&[("a", "c"), ("c", "e"), ("x", "")]);
        assert!(s.covers(b"a", b"e"));
        assert!(s.covers(b"b", b""));
        assert!(!s.covers(b"a", b"f"));
        assert!(s.covers(b"x", b""));
        assert!(!s.covers(b"x", b"y"));
        assert!(!s.covers(b"e", b""));
    }

    #[test]
    fn open_ended() {
        let s = set(&[("m", "\0")]);
        assert!(s.covers(b"m", b"\0"));
        assert!(s.covers(b"zzz", b""));
        assert!(!s.covers(b"a", b"\0"));
        let s = set(&[("m", "n")]);
        assert!(!s.covers(b"m", b"\0"));
    }

    #[test]
    fn single_key_and_its_successor() {
        // [k, k\0) covers exactly k.
        let s = set(&[("k", "")]);
        assert!(s.covers(b"k", b""));
        assert!(s.covers(b"k", b"k\0"));
        assert!(!s.covers(b"k\0", b""));
        assert!(!s.covers(b"j", b""));
    }
}
