//! Key-values: put, get, range, delete, and the owned results.

use concord_core::api::mvccpb;
use concord_core::client::{DeleteOptions, GetOptions, KeyRange, PutOptions};

use crate::client::ConcordClient;
use crate::error::{ConcordError, ConcordStatus};
use crate::guard::{bytes, guard, handle, out};

/// A key-value. `key`/`value` point into memory the library owns; they
/// stay valid until the list or event holding it is freed.
#[repr(C)]
pub struct ConcordKv {
    pub key: *const u8,
    pub key_len: usize,
    pub value: *const u8,
    pub value_len: usize,
    pub create_revision: i64,
    pub mod_revision: i64,
    pub version: i64,
    pub lease: i64,
}

/// Key-values and what the read said about them. Free with `concord_kvs_free`.
#[repr(C)]
pub struct ConcordKvs {
    pub kvs: *const ConcordKv,
    pub len: usize,
    /// How many keys the range holds (whatever the limit).
    pub count: i64,
    /// Whether the limit left keys out.
    pub more: bool,
    /// The revision the read was made at.
    pub revision: i64,
    /// The storage `kvs` points into (not for the caller).
    owner: *mut ConcordKvsStorage,
}

/// The bytes behind a list of `ConcordKv`.
pub(crate) struct ConcordKvsStorage {
    _data: Vec<mvccpb::KeyValue>,
    views: Vec<ConcordKv>,
}

impl ConcordKvsStorage {
    /// Views of `data`: the `Vec`s' heap buffers do not move when the
    /// `Vec`s themselves do, so the pointers stay valid.
    pub(crate) fn new(data: Vec<mvccpb::KeyValue>) -> Box<ConcordKvsStorage> {
        let views = data.iter().map(view).collect();
        Box::new(ConcordKvsStorage { _data: data, views })
    }
    pub(crate) fn views(&self) -> &[ConcordKv] {
        &self.views
    }

    /// A caller-owned list of `data`.
    pub(crate) fn into_list(data: Vec<mvccpb::KeyValue>, count: i64, more: bool, revision: i64) -> *mut ConcordKvs {
        let count = if count == 0 { data.len() as i64 } else { count };
        let owner = Box::into_raw(ConcordKvsStorage::new(data));
        // SAFETY: `owner` was just made from a Box and is not freed yet.
        let views = unsafe { &*owner }.views();
        Box::into_raw(Box::new(ConcordKvs {
            kvs: views.as_ptr(),
            len: views.len(),
            count,
            more,
            revision,
            owner,
        }))
    }
}

pub(crate) fn view(kv: &mvccpb::KeyValue) -> ConcordKv {
    ConcordKv {
        key: kv.key.as_ptr(),
        key_len: kv.key.len(),
        value: kv.value.as_ptr(),
        value_len: kv.value.len(),
        create_revision: kv.create_revision,
        mod_revision: kv.mod_revision,
        version: kv.version,
        lease: kv.lease,
    }
}

/// The keys a C call names: every key starting with the key when
/// `prefix`, else `[key, end)` when `end` is not empty, else the key alone.
pub(crate) fn key_range(prefix: bool, end: Vec<u8>) -> KeyRange {
    if prefix {
        KeyRange::Prefix
    } else if end.is_empty() {
        KeyRange::Single
    } else {
        KeyRange::End(end)
    }
}

/// Options of `concord_range`; zero them for a plain read.
#[repr(C)]
pub struct ConcordRangeOptions {
    /// Every key starting with the key (range_end is then ignored).
    pub prefix: bool,
    /// At most this many keys (0: no limit).
    pub limit: i64,
    /// Read at this revision (0: the newest).
    pub revision: i64,
    /// Served by the member asked, without a round of consensus.
    pub serializable: bool,
    /// Keys only, no values.
    pub keys_only: bool,
    /// Only the count.
    pub count_only: bool,
    /// Every key from the key on (range_end and prefix are then ignored).
    pub from_key: bool,
    /// What to sort by, and in which order (`NONE`: by key, ascending).
    pub sort_target: ConcordSortTarget,
    pub sort_order: ConcordSortOrder,
    /// Only keys last modified at or after / at or before these revisions (0: any).
    pub min_mod_revision: i64,
    pub max_mod_revision: i64,
    /// Only keys created at or after / at or before these revisions (0: any).
    pub min_create_revision: i64,
    pub max_create_revision: i64,
}

/// What a range is sorted by (etcd's numbering).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConcordSortTarget {
    Key = 0,
    Version = 1,
    Create = 2,
    Mod = 3,
    Value = 4,
}

/// The order of a sorted range (etcd's numbering).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConcordSortOrder {
    None = 0,
    Ascend = 1,
    Descend = 2,
}

/// The range options of `o` applied to `g` (the key range aside).
pub(crate) fn range_options(mut g: GetOptions, o: &ConcordRangeOptions) -> GetOptions {
    use concord_core::client::{SortOrder, SortTarget};
    g = g.limit(o.limit).revision(o.revision);
    if o.from_key {
        g = g.from_key();
    }
    if o.serializable {
        g = g.serializable();
    }
    if o.keys_only {
        g = g.keys_only();
    }
    if o.count_only {
        g = g.count_only();
    }
    if o.sort_order != ConcordSortOrder::None {
        let target = match o.sort_target {
            ConcordSortTarget::Key => SortTarget::Key,
            ConcordSortTarget::Version => SortTarget::Version,
            ConcordSortTarget::Create => SortTarget::Create,
            ConcordSortTarget::Mod => SortTarget::Mod,
            ConcordSortTarget::Value => SortTarget::Value,
        };
        let order = if o.sort_order == ConcordSortOrder::Descend {
            SortOrder::Descend
        } else {
            SortOrder::Ascend
        };
        g = g.sort(target, order);
    }
    g.min_mod_revision(o.min_mod_revision)
        .max_mod_revision(o.max_mod_revision)
        .min_create_revision(o.min_create_revision)
        .max_create_revision(o.max_create_revision)
}

/// Writes `key` = `value`, attached to `lease` (0: none). `revision` (may
/// be NULL) receives the revision of the write.
#[no_mangle]
pub extern "C" fn concord_put(
    client: *const ConcordClient,
    key: *const u8,
    key_len: usize,
    value: *const u8,
    value_len: usize,
    lease: i64,
    revision: *mut i64,
    err: *mut *mut ConcordError,
) -> ConcordStatus {
    guard(err, || {
        let c = &handle(client, "client")?.inner;
        let (k, v) = (bytes(key, key_len, "key")?, bytes(value, value_len, "value")?);
        let mut o = PutOptions::new();
        if lease != 0 {
            o = o.lease(lease);
        }
        let r = c.block_on(c.client().put(k, v, o))?;
        if !revision.is_null() {
            out(revision, r.header.map_or(0, |h| h.revision), "revision")?;
        }
        Ok(())
    })
}

/// Reads `key`, or the keys in `[key, range_end)` (`range_end` may be NULL
/// with length 0: just the key), with `options` (may be NULL). `*result`
/// receives a list to free with `concord_kvs_free`.
#[no_mangle]
pub extern "C" fn concord_range(
    client: *const ConcordClient,
    key: *const u8,
    key_len: usize,
    range_end: *const u8,
    range_end_len: usize,
    options: *const ConcordRangeOptions,
    result: *mut *mut ConcordKvs,
    err: *mut *mut ConcordError,
) -> ConcordStatus {
    guard(err, || {
        let c = &handle(client, "client")?.inner;
        let k = bytes(key, key_len, "key")?;
        let end = bytes(range_end, range_end_len, "range_end")?;
        // SAFETY: NULL or a valid `concord_range_options` by contract.
        let o = unsafe { options.as_ref() };
        let mut g = GetOptions::new().key_range(key_range(o.is_some_and(|o| o.prefix), end));
        if let Some(o) = o {
            g = range_options(g, o);
        }
        let r = c.block_on(c.client().get(k, g))?;
        let revision = r.header.map_or(0, |h| h.revision);
        out(
            result,
            ConcordKvsStorage::into_list(r.kvs, r.count, r.more, revision),
            "result",
        )
    })
}

/// Frees a list from `concord_range` (NULL is fine).
#[no_mangle]
pub extern "C" fn concord_kvs_free(kvs: *mut ConcordKvs) {
    let _ = guard(std::ptr::null_mut(), || {
        if !kvs.is_null() {
            // SAFETY: made by `concord_range` with Box::into_raw, freed once.
            let list = unsafe { Box::from_raw(kvs) };
            crate::guard::free(list.owner);
        }
        Ok(())
    });
}

/// Deletes `key` (or `[key, range_end)`, or with `prefix` every key
/// starting with `key`). `deleted` (may be NULL) receives how many.
#[no_mangle]
pub extern "C" fn concord_delete(
    client: *const ConcordClient,
    key: *const u8,
    key_len: usize,
    range_end: *const u8,
    range_end_len: usize,
    prefix: bool,
    deleted: *mut i64,
    err: *mut *mut ConcordError,
) -> ConcordStatus {
    guard(err, || {
        let c = &handle(client, "client")?.inner;
        let k = bytes(key, key_len, "key")?;
        let end = bytes(range_end, range_end_len, "range_end")?;
        let o = DeleteOptions::new().key_range(key_range(prefix, end));
        let r = c.block_on(c.client().delete(k, o))?;
        if !deleted.is_null() {
            out(deleted, r.deleted, "deleted")?;
        }
        Ok(())
    })
}
