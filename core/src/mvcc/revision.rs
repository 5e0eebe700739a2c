//! Revisions: `main` is the store revision a write produced, `sub` the
//! position of a change within that write (a txn changes many keys at once).

/// A point in the key space's history.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Revision {
    /// The store revision of the write (what clients see as `mod_revision`).
    pub main: i64,
    /// The change's index inside that write.
    pub sub: i64,
}

impl Revision {
    /// Encoded length of a revision as a backend key.
    pub const ENCODED_LEN: usize = 16;

    /// A revision from its two parts.
    pub const fn new(main: i64, sub: i64) -> Self {
        Revision { main, sub }
    }

    /// Big-endian encoding: byte order equals revision order, so a sorted
    /// backend table iterates in history order.
    ///
    /// ```
    /// use concord_core::mvcc::Revision;
    /// let r = Revision::new(5, 1);
    /// assert_eq!(Revision::from_bytes(&r.to_bytes()), Some(r));
    /// assert!(Revision::new(2, 9).to_bytes() < Revision::new(3, 0).to_bytes());
    /// ```
    pub fn to_bytes(self) -> [u8; Self::ENCODED_LEN] {
        let mut out = [0u8; Self::ENCODED_LEN];
        out[..8].copy_from_slice(&self.main.to_be_bytes());
        out[8..].copy_from_slice(&self.sub.to_be_bytes());
        out
    }

    /// Decodes [`Revision::to_bytes`]; `None` if the length is wrong.
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        if b.len() != Self::ENCODED_LEN {
            return None;
        }
        let main = i64::from_be_bytes(b[..8].try_into().ok()?);
        let sub = i64::from_be_bytes(b[8..].try_into().ok()?);
        Some(Revision { main, sub })
    }
}
