//! Checks that a recorded history of operations on registers (keys) is
//! linearizable: that some order of the operations, consistent with their
//! real-time order (an operation that returned before another was called
//! comes first), explains every answer.
//!
//! Keys are independent registers, and linearizability is local, so each
//! key's history is checked on its own. For one key the search is Wing &
//! Gong's: repeatedly pick, among the operations not yet placed, one that
//! may come next (called before every unplaced operation returned), apply
//! it to the model, and backtrack when an answer does not fit; states
//! already explored (placed set + register value) are remembered, as in
//! Lowe's and Porcupine's versions, which keeps it fast.
//!
//! Operations whose outcome the client never learned (a timeout after the
//! request left) may or may not have happened: they never return (return
//! time = infinity) and any effect is accepted, or none at all.
//!
//! ```
//! use concord_checker::{Op, Kind, Outcome, check};
//! let h = vec![
//!     Op { key: "x".into(), kind: Kind::Put("1".into()), call: 0, ret: Some(10), outcome: Outcome::Ok },
//!     Op { key: "x".into(), kind: Kind::Get, call: 20, ret: Some(30), outcome: Outcome::Value(None) },
//! ];
//! assert!(check(&h).is_err(), "a read after an acknowledged write must see it");
//! ```

use std::collections::{BTreeMap, HashSet};

/// What an operation does to its key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Write a value.
    Put(String),
    /// Read the value.
    Get,
    /// Write `new` if the value is `expected` (`None`: the key is absent).
    Cas {
        /// The value compared with.
        expected: Option<String>,
        /// The value written if it matched.
        new: String,
    },
    /// Delete the key.
    Delete,
}

/// What the client learned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A write or delete took effect.
    Ok,
    /// A read's answer.
    Value(Option<String>),
    /// A compare-and-swap's answer.
    Swapped(bool),
    /// Unknown: the operation may or may not have taken effect.
    Unknown,
}

/// One operation of a history, with call and return times (any monotonic
/// unit; `ret: None` for an operation that never answered).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Op {
    /// The key.
    pub key: String,
    /// What it did.
    pub kind: Kind,
    /// When it was called.
    pub call: u128,
    /// When it returned; `None` if never.
    pub ret: Option<u128>,
    /// What the client learned.
    pub outcome: Outcome,
}

/// Why a history is not linearizable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The key whose history cannot be explained.
    pub key: String,
    /// Its operations, by call time.
    pub ops: Vec<Op>,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "history of key {:?} is not linearizable:", self.key)?;
        for o in &self.ops {
            writeln!(f, "  [{} .. {:?}] {:?} -> {:?}", o.call, o.ret, o.kind, o.outcome)?;
        }
        Ok(())
    }
}

/// Applies `op` to `state`; `None` if its known outcome does not fit.
fn step(state: &Option<String>, op: &Op) -> Option<Option<String>> {
    let unknown = op.outcome == Outcome::Unknown;
    match &op.kind {
        Kind::Put(v) => (unknown || op.outcome == Outcome::Ok).then(|| Some(v.clone())),
        Kind::Delete => (unknown || op.outcome == Outcome::Ok).then_some(None),
        Kind::Get => match &op.outcome {
            Outcome::Value(v) if v == state => Some(state.clone()),
            Outcome::Unknown => Some(state.clone()),
            _ => None,
        },
        Kind::Cas { expected, new } => {
            let matches = expected == state;
            match &op.outcome {
                Outcome::Swapped(s) if *s == matches => Some(if matches { Some(new.clone()) } else { state.clone() }),
                Outcome::Unknown => Some(if matches { Some(new.clone()) } else { state.clone() }),
                _ => None,
            }
        }
    }
}

/// Where the search stands at one depth: the state after the operations
/// placed so far, the next candidate to try, and the operation whose
/// placing led here.
struct Frame {
    state: Option<String>,
    next: usize,
    horizon: u128,
    via: Option<usize>,
}

/// What entering a search state found.
enum Entered {
    /// Every operation that must happen is placed: linearizable.
    Done,
    /// Already explored from here without success.
    Seen,
    /// Worth exploring: operations called before this time may go next.
    Open(u128),
}

struct Search {
    /// Sorted by call time.
    ops: Vec<Op>,
    placed: Vec<u64>,
    /// Unplaced operations whose outcome is known (they must happen).
    must_left: usize,
    /// Return times of unplaced operations (a multiset).
    returns: BTreeMap<u128, usize>,
    seen: HashSet<(Vec<u64>, Option<String>)>,
}

impl Search {
    fn new(ops: &[Op]) -> Search {
        let mut ops = ops.to_vec();
        ops.sort_by_key(|o| o.call);
        let mut returns = BTreeMap::new();
        for r in ops.iter().filter_map(|o| o.ret) {
            *returns.entry(r).or_insert(0) += 1;
        }
        Search {
            placed: vec![0u64; ops.len().div_ceil(64).max(1)],
            must_left: ops.iter().filter(|o| o.outcome != Outcome::Unknown).count(),
            returns,
            ops,
            seen: HashSet::new(),
        }
    }

    fn is_placed(&self, i: usize) -> bool {
        self.placed[i / 64] & (1 << (i % 64)) != 0
    }

    fn set(&mut self, i: usize, on: bool) {
        let op = &self.ops[i];
        let must = usize::from(op.outcome != Outcome::Unknown);
        if on {
            self.placed[i / 64] |= 1 << (i % 64);
            self.must_left -= must;
            if let Some(r) = op.ret {
                if let Some(n) = self.returns.get_mut(&r) {
                    *n -= 1;
                    if *n == 0 {
                        self.returns.remove(&r);
                    }
                }
            }
        } else {
            self.placed[i / 64] &= !(1 << (i % 64));
            self.must_left += must;
            if let Some(r) = op.ret {
                *self.returns.entry(r).or_insert(0) += 1;
            }
        }
    }

    fn enter(&mut self, state: &Option<String>) -> Entered {
        if self.must_left == 0 {
            return Entered::Done;
        }
        if !self.seen.insert((self.placed.clone(), state.clone())) {
            return Entered::Seen;
        }
        // The earliest return among unplaced operations bounds who may go next.
        Entered::Open(self.returns.keys().next().copied().unwrap_or(u128::MAX))
    }

    /// Depth-first search over the orders the real-time constraints allow
    /// (an explicit stack: histories run to thousands of operations).
    fn run(&mut self) -> bool {
        let horizon = match self.enter(&None) {
            Entered::Done => return true,
            Entered::Seen => return false,
            Entered::Open(h) => h,
        };
        let mut stack = vec![Frame {
            state: None,
            next: 0,
            horizon,
            via: None,
        }];
        while let Some(top) = stack.last_mut() {
            let mut found = None;
            while top.next < self.ops.len() {
                let i = top.next;
                top.next += 1;
                if self.ops[i].call > top.horizon {
                    // Sorted by call: nothing later may go next either.
                    top.next = self.ops.len();
                    break;
                }
                if self.is_placed(i) {
                    continue;
                }
                if let Some(next) = step(&top.state, &self.ops[i]) {
                    found = Some((i, next));
                    break;
                }
            }
            let Some((i, next)) = found else {
                // Nothing more to try here: undo the step that led here.
                if let Some(i) = stack.pop().and_then(|f| f.via) {
                    self.set(i, false);
                }
                continue;
            };
            self.set(i, true);
            match self.enter(&next) {
                Entered::Done => return true,
                Entered::Seen => self.set(i, false),
                Entered::Open(horizon) => stack.push(Frame {
                    state: next,
                    next: 0,
                    horizon,
                    via: Some(i),
                }),
            }
        }
        false
    }
}

/// Checks one key's history, starting from an absent key.
pub fn check_key(ops: &[Op]) -> bool {
    Search::new(ops).run()
}

/// Checks a whole history (every key from absent); the first key that
/// cannot be explained is the error.
pub fn check(history: &[Op]) -> Result<usize, Violation> {
    let mut by_key: BTreeMap<&str, Vec<Op>> = BTreeMap::new();
    for op in history {
        by_key.entry(&op.key).or_default().push(op.clone());
    }
    for (key, mut ops) in by_key.clone() {
        ops.sort_by_key(|o| o.call);
        if !check_key(&ops) {
            return Err(Violation {
                key: key.to_string(),
                ops,
            });
        }
    }
    Ok(by_key.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(kind: Kind, call: u128, ret: Option<u128>, outcome: Outcome) -> Op {
        Op {
            key: "k".into(),
            kind,
            call,
            ret,
            outcome,
        }
    }
    fn put(v: &str, c: u128, r: u128) -> Op {
        op(Kind::Put(v.into()), c, Some(r), Outcome::Ok)
    }
    fn get(v: Option<&str>, c: u128, r: u128) -> Op {
        op(Kind::Get, c, Some(r), Outcome::Value(v.map(Into::into)))
    }

    #[test]
    fn sequential_histories() {
        assert!(check_key(&[
            put("a", 0, 1),
            get(Some("a"), 2, 3),
            put("b", 4, 5),
            get(Some("b"), 6, 7)
        ]));
        assert!(
            !check_key(&[put("a", 0, 1), put("b", 2, 3), get(Some("a"), 4, 5)]),
            "stale read"
        );
        assert!(
            !check_key(&[get(Some("a"), 0, 1), put("a", 2, 3)]),
            "read from the future"
        );
        assert!(!check_key(&[put("a", 0, 1), get(None, 2, 3)]), "lost write");
    }

    #[test]
    fn concurrency_allows_either_order() {
        // Overlapping put and get: the get may see either value.
        assert!(check_key(&[put("a", 0, 1), put("b", 2, 10), get(Some("a"), 3, 4)]));
        assert!(check_key(&[put("a", 0, 1), put("b", 2, 10), get(Some("b"), 3, 4)]));
        // But two reads after it cannot go back in time.
        assert!(!check_key(&[
            put("a", 0, 1),
            put("b", 2, 10),
            get(Some("b"), 3, 4),
            get(Some("a"), 5, 6)
        ]));
    }

    #[test]
    fn compare_and_swap() {
        let cas = |e: Option<&str>, n: &str, c, r, ok| {
            op(
                Kind::Cas {
                    expected: e.map(Into::into),
                    new: n.into(),
                },
                c,
                Some(r),
                Outcome::Swapped(ok),
            )
        };
        assert!(check_key(&[
            put("a", 0, 1),
            cas(Some("a"), "b", 2, 3, true),
            get(Some("b"), 4, 5)
        ]));
        assert!(
            !check_key(&[put("a", 0, 1), cas(Some("a"), "b", 2, 3, false)]),
            "a failed CAS that should succeed"
        );
        assert!(
            !check_key(&[
                put("a", 0, 1),
                cas(Some("a"), "b", 2, 5, true),
                cas(Some("a"), "c", 3, 6, true)
            ]),
            "two CAS from the same value both succeeding"
        );
        assert!(check_key(&[cas(None, "x", 0, 1, true), get(Some("x"), 2, 3)]));
    }

    #[test]
    fn unknown_outcomes_may_or_may_not_happen() {
        let lost = op(Kind::Put("b".into()), 2, None, Outcome::Unknown);
        assert!(check_key(&[put("a", 0, 1), lost.clone(), get(Some("a"), 3, 4)]));
        assert!(check_key(&[put("a", 0, 1), lost.clone(), get(Some("b"), 3, 4)]));
        // Once seen it stays: no going back to "a" afterwards.
        assert!(!check_key(&[
            put("a", 0, 1),
            lost,
            get(Some("b"), 3, 4),
            get(Some("a"), 5, 6)
        ]));
    }

    #[test]
    fn keys_are_checked_separately() {
        let mut h = vec![put("a", 0, 1), get(Some("a"), 2, 3)];
        let mut other = put("z", 0, 1);
        other.key = "other".into();
        h.push(other);
        assert_eq!(check(&h), Ok(2));
        let mut bad = get(Some("nope"), 5, 6);
        bad.key = "other".into();
        h.push(bad);
        assert_eq!(check(&h).unwrap_err().key, "other");
    }

    #[test]
    fn a_long_concurrent_history_is_quick() {
        // 4 clients, 300 operations each round-robin, overlapping pairwise.
        let mut h = Vec::new();
        let mut t = 0;
        let mut last = None;
        for i in 0..300 {
            let v = format!("v{i}");
            h.push(put(&v, t, t + 3));
            h.push(get(Some(&v), t + 4, t + 6));
            if let Some(prev) = last.replace(v) {
                h.push(get(Some(&prev), t + 1, t + 2));
            }
            t += 7;
        }
        let start = std::time::Instant::now();
        assert!(check_key(&h));
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn a_deep_history_does_not_exhaust_the_stack() {
        // One key, 10,000 operations in sequence: the search goes as deep
        // as the history is long (this used to recurse once per level).
        let mut h = Vec::new();
        for i in 0..5_000u128 {
            let v = format!("v{i}");
            h.push(put(&v, 4 * i, 4 * i + 1));
            h.push(get(Some(&v), 4 * i + 2, 4 * i + 3));
        }
        assert!(std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn({
                let h = h.clone();
                move || check_key(&h)
            })
            .unwrap()
            .join()
            .unwrap());
        // A stale read at the very end is still found.
        h.push(get(Some("v0"), 1_000_000, 1_000_001));
        assert!(!check_key(&h));
    }
}
