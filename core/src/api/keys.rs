//! Key ranges as etcd spells them.

/// The end of the range holding every key that starts with `prefix`
/// (the prefix with its last byte below 0xff raised by one); `"\0"` — all
/// keys from the start key — when there is no such byte.
///
/// ```
/// use concord_core::api::keys::prefix_end;
/// assert_eq!(prefix_end(b"a/"), b"a0".to_vec());
/// assert_eq!(prefix_end(b"a\xff"), b"b".to_vec());
/// assert_eq!(prefix_end(b""), vec![0]);
/// ```
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}
