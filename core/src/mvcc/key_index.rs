//! The history of one key: its generations. A generation runs from the put
//! that creates the key to the delete (tombstone) that ends it; the last
//! generation is open (or empty, if the key is currently deleted).

use super::Revision;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Generation {
    /// Number of changes in this generation, counting ones compacted away.
    ver: i64,
    /// The revision that created the key in this generation.
    created: Revision,
    /// Revisions of this generation still held, oldest first. In a closed
    /// generation the last one is the tombstone.
    revs: Vec<Revision>,
}

/// What the index knows about a key at a given revision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyAt {
    /// The revision holding the key's value at that point.
    pub modified: Revision,
    /// The revision that created the key (in its current generation).
    pub created: Revision,
    /// The key's version at that point (1 for the creating put).
    pub version: i64,
}

/// All generations of one key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyIndex {
    generations: Vec<Generation>,
}

impl KeyIndex {
    /// True when nothing is left (all history compacted away).
    pub fn is_empty(&self) -> bool {
        self.generations.iter().all(|g| g.revs.is_empty())
    }

    /// The key's state right now, if it exists.
    pub fn current(&self) -> Option<KeyAt> {
        self.get(i64::MAX)
    }

    /// Records a put at `rev`.
    ///
    /// Most keys have one generation, and between compactions many have
    /// one revision: the first of each gets room for exactly one (a `Vec`
    /// would reserve four, 200 bytes more per key in the index).
    pub fn put(&mut self, rev: Revision) {
        if self.generations.is_empty() {
            self.generations.reserve_exact(1);
            self.generations.push(Generation::default());
        }
        let g = self.generations.last_mut().expect("one generation at least");
        if g.revs.is_empty() {
            g.created = rev;
            g.revs.reserve_exact(1);
        }
        g.revs.push(rev);
        g.ver += 1;
    }

    /// Rebuilds a generation from a stored value whose earlier history may
    /// have been compacted: `created` and `version` come from that value.
    pub fn restore(&mut self, created: Revision, modified: Revision, version: i64) {
        let g = Generation {
            ver: version,
            created,
            revs: vec![modified],
        };
        match self.generations.last_mut() {
            Some(last) if last.revs.is_empty() => *last = g,
            _ => {
                self.generations.reserve_exact(1);
                self.generations.push(g);
            }
        }
    }

    /// True if the key is live at the latest revision (a put since the last
    /// tombstone).
    pub fn is_live(&self) -> bool {
        self.generations.last().is_some_and(|g| !g.revs.is_empty())
    }

    /// Records a delete at `rev`, closing the current generation.
    /// The caller only tombstones live keys.
    pub fn tombstone(&mut self, rev: Revision) {
        debug_assert!(self.is_live());
        self.put(rev);
        self.generations.push(Generation::default());
    }

    /// The key as of store revision `at`, or `None` if it did not exist then.
    pub fn get(&self, at: i64) -> Option<KeyAt> {
        let last = self.generations.len().checked_sub(1)?;
        for (i, g) in self.generations.iter().enumerate().rev() {
            let Some(first) = g.revs.first() else { continue };
            if i != last {
                let tomb = g.revs.last().expect("non-empty");
                if tomb.main <= at {
                    return None;
                }
            }
            if first.main <= at {
                let n = g.revs.iter().rposition(|r| r.main <= at).expect("first qualifies");
                let version = g.ver - (g.revs.len() - 1 - n) as i64;
                return Some(KeyAt {
                    modified: g.revs[n],
                    created: g.created,
                    version,
                });
            }
        }
        None
    }

    /// Drops history older than `at`, keeping, for each key, the newest
    /// revision at or before `at` unless it is a tombstone. Every revision
    /// kept at or below `at` is pushed to `keep`; the caller frees the rest.
    pub fn compact(&mut self, at: i64, keep: &mut Vec<Revision>) {
        if self.generations.is_empty() {
            return;
        }
        // Find the first generation that is still open at `at` (its
        // tombstone is after `at`) or is the last one.
        let mut gi = 0;
        while gi + 1 < self.generations.len() {
            let g = &self.generations[gi];
            match g.revs.last() {
                Some(tomb) if tomb.main > at => break,
                _ => gi += 1,
            }
        }
        let last = self.generations.len() - 1;
        let g = &mut self.generations[gi];
        if let Some(idx) = g.revs.iter().rposition(|r| r.main <= at) {
            g.revs.drain(..idx);
            if g.revs.len() == 1 && gi != last && g.revs[0].main <= at {
                // Only the tombstone is left at or below `at`: drop it too.
                gi += 1;
            } else {
                keep.push(g.revs[0]);
            }
            if g.revs.capacity() > 2 * g.revs.len() {
                g.revs.shrink_to_fit();
            }
        }
        self.generations.drain(..gi);
        if self.generations.capacity() > 2 * self.generations.len() {
            self.generations.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(main: i64) -> Revision {
        Revision::new(main, 0)
    }

    #[test]
    fn a_new_key_reserves_room_for_one_revision_only() {
        let mut k = KeyIndex::default();
        k.put(r(2));
        assert_eq!(k.generations.capacity(), 1);
        assert_eq!(k.generations[0].revs.capacity(), 1);
        let mut restored = KeyIndex::default();
        restored.restore(r(1), r(3), 2);
        assert_eq!(restored.generations.capacity(), 1);
        assert_eq!(restored.generations[0].revs.capacity(), 1);
    }

    #[test]
    fn compaction_gives_back_the_room_it_empties() {
        let mut k = KeyIndex::default();
        for main in 2..40 {
            k.put(r(main));
        }
        let mut keep = Vec::new();
        k.compact(39, &mut keep);
        assert_eq!(keep, [r(39)]);
        assert_eq!(k.current().map(|a| (a.modified, a.version)), Some((r(39), 38)));
        assert!(
            k.generations[0].revs.capacity() <= 2,
            "{}",
            k.generations[0].revs.capacity()
        );
    }

    #[test]
    fn versions_and_generations() {
        let mut ki = KeyIndex::default();
        ki.put(r(2));
        ki.put(r(4));
        ki.tombstone(r(6));
        ki.put(r(8));
        assert_eq!(ki.get(1), None);
        assert_eq!(ki.get(3).unwrap().version, 1);
        let at5 = ki.get(5).unwrap();
        assert_eq!((at5.modified, at5.created, at5.version), (r(4), r(2), 2));
        assert_eq!(ki.get(6), None);
        assert_eq!(ki.get(7), None);
        let at9 = ki.get(9).unwrap();
        assert_eq!((at9.modified, at9.created, at9.version), (r(8), r(8), 1));
    }

    #[test]
    fn compaction_keeps_latest_and_drops_tombstones() {
        let mut ki = KeyIndex::default();
        ki.put(r(2));
        ki.put(r(4));
        ki.tombstone(r(6));
        ki.put(r(8));
        ki.put(r(10));

        let mut keep = vec![];
        ki.compact(5, &mut keep);
        assert_eq!(keep, vec![r(4)]);
        assert_eq!(ki.get(5).unwrap().version, 2);

        keep.clear();
        ki.compact(7, &mut keep);
        assert!(keep.is_empty(), "the tombstone at 6 goes");
        assert_eq!(ki.get(7), None);
        assert_eq!(ki.get(9).unwrap().modified, r(8));

        keep.clear();
        ki.compact(9, &mut keep);
        assert_eq!(keep, vec![r(8)]);
        assert_eq!(ki.get(11).unwrap().version, 2);
    }

    #[test]
    fn compacting_a_deleted_key_empties_it() {
        let mut ki = KeyIndex::default();
        ki.put(r(2));
        ki.tombstone(r(3));
        let mut keep = vec![];
        ki.compact(3, &mut keep);
        assert!(keep.is_empty());
        assert!(ki.is_empty());
    }
}
