//! Transaction building blocks as Python writes them:
//! `Compare.value(k) == v`, `Compare.version(k) > 0`, `Op.put(k, v)`.

use concord_core::client::{self as core, DeleteOptions, GetOptions, PutOptions, SortOrder, SortTarget};
use pyo3::basic::CompareOp;
use pyo3::prelude::*;

use concord_core::client::Error;

use crate::error::to_py;
use crate::types::{Bytes, LeaseId};

/// Which key range a call covers: one key, `[key, range_end)`, or a prefix.
pub enum Range {
    Key,
    End(Vec<u8>),
    Prefix,
}

impl Range {
    pub fn of(range_end: Option<Bytes>, prefix: bool) -> Result<Range, Error> {
        match (range_end, prefix) {
            (Some(_), true) => Err(bad("give range_end or prefix, not both")),
            (Some(end), false) => Ok(Range::End(end.0)),
            (None, true) => Ok(Range::Prefix),
            (None, false) => Ok(Range::Key),
        }
    }
}

macro_rules! with_range {
    ($opts:expr, $range:expr) => {
        match $range {
            Range::Key => $opts,
            Range::End(end) => $opts.range_end(end),
            Range::Prefix => $opts.prefix(),
        }
    };
}
pub(crate) use with_range;

fn bad(message: impl Into<String>) -> Error {
    Error::InvalidArgument(message.into())
}

/// Options of a get as Python passes them.
pub struct Get {
    pub revision: Option<i64>,
    pub serializable: bool,
    pub limit: i64,
    pub sort: Option<String>,
    pub order: Option<String>,
    pub keys_only: bool,
    pub count_only: bool,
}

impl Get {
    pub fn options(self, range: Range) -> Result<GetOptions, Error> {
        let mut o = with_range!(GetOptions::new(), range).limit(self.limit);
        if let Some(r) = self.revision {
            o = o.revision(r);
        }
        if self.serializable {
            o = o.serializable();
        }
        if self.keys_only {
            o = o.keys_only();
        }
        if self.count_only {
            o = o.count_only();
        }
        if self.sort.is_some() || self.order.is_some() {
            let target = match self.sort.as_deref().unwrap_or("key") {
                "key" => SortTarget::Key,
                "version" => SortTarget::Version,
                "create" | "create_revision" => SortTarget::Create,
                "mod" | "mod_revision" => SortTarget::Mod,
                "value" => SortTarget::Value,
                s => return Err(bad(format!("sort: {s:?} is not key, version, create, mod or value"))),
            };
            let order = match self.order.as_deref().unwrap_or("ascend") {
                "ascend" | "asc" => SortOrder::Ascend,
                "descend" | "desc" => SortOrder::Descend,
                o => return Err(bad(format!("order: {o:?} is not ascend or descend"))),
            };
            o = o.sort(target, order);
        }
        Ok(o)
    }
}

pub fn put_options(lease: Option<LeaseId>, prev_kv: bool) -> PutOptions {
    let mut o = PutOptions::new();
    if let Some(LeaseId(id)) = lease {
        o = o.lease(id);
    }
    if prev_kv {
        o = o.prev_kv();
    }
    o
}

pub fn delete_options(range: Range, prev_kv: bool) -> DeleteOptions {
    let o = with_range!(DeleteOptions::new(), range);
    if prev_kv {
        o.prev_kv()
    } else {
        o
    }
}

/// A transaction compare: `Compare.value(key) == b"v"`,
/// `Compare.version(key) > 0`, `Compare.mod_revision(key) < 10`, ...
#[pyclass(module = "concord", frozen, from_py_object)]
#[derive(Clone)]
pub struct Compare(pub core::Compare);

/// A compare's target, waiting for `==`, `!=`, `<` or `>`.
#[pyclass(module = "concord", frozen)]
pub struct CompareTarget {
    on: core::CompareOn,
    numeric: bool,
}

fn target(on: core::CompareOn, numeric: bool, range_end: Option<Bytes>, prefix: bool) -> PyResult<CompareTarget> {
    let on = with_range!(on, Range::of(range_end, prefix).map_err(to_py)?);
    Ok(CompareTarget { on, numeric })
}

#[pymethods]
impl Compare {
    /// Compare the key's value (bytes or str).
    #[staticmethod]
    #[pyo3(signature = (key, *, range_end=None, prefix=false))]
    fn value(key: Bytes, range_end: Option<Bytes>, prefix: bool) -> PyResult<CompareTarget> {
        target(core::Compare::value(key.0), false, range_end, prefix)
    }
    /// Compare the key's version (0: the key does not exist).
    #[staticmethod]
    #[pyo3(signature = (key, *, range_end=None, prefix=false))]
    fn version(key: Bytes, range_end: Option<Bytes>, prefix: bool) -> PyResult<CompareTarget> {
        target(core::Compare::version(key.0), true, range_end, prefix)
    }
    /// Compare the revision the key was created at.
    #[staticmethod]
    #[pyo3(signature = (key, *, range_end=None, prefix=false))]
    fn create_revision(key: Bytes, range_end: Option<Bytes>, prefix: bool) -> PyResult<CompareTarget> {
        target(core::Compare::create_revision(key.0), true, range_end, prefix)
    }
    /// Compare the revision of the key's last change.
    #[staticmethod]
    #[pyo3(signature = (key, *, range_end=None, prefix=false))]
    fn mod_revision(key: Bytes, range_end: Option<Bytes>, prefix: bool) -> PyResult<CompareTarget> {
        target(core::Compare::mod_revision(key.0), true, range_end, prefix)
    }
    /// Compare the key's lease ID.
    #[staticmethod]
    #[pyo3(signature = (key, *, range_end=None, prefix=false))]
    fn lease(key: Bytes, range_end: Option<Bytes>, prefix: bool) -> PyResult<CompareTarget> {
        target(core::Compare::lease(key.0), true, range_end, prefix)
    }
}

#[pymethods]
impl CompareTarget {
    fn __richcmp__(&self, other: &Bound<'_, PyAny>, op: CompareOp) -> PyResult<Compare> {
        let on = self.on.clone();
        let c = if self.numeric {
            let n: i64 = other.extract()?;
            match op {
                CompareOp::Eq => on.eq(n),
                CompareOp::Ne => on.ne(n),
                CompareOp::Lt => on.lt(n),
                CompareOp::Gt => on.gt(n),
                _ => return Err(to_py(bad("compares are ==, !=, < or >"))),
            }
        } else {
            let v: Bytes = other.extract()?;
            match op {
                CompareOp::Eq => on.eq(v.0),
                CompareOp::Ne => on.ne(v.0),
                CompareOp::Lt => on.lt(v.0),
                CompareOp::Gt => on.gt(v.0),
                _ => return Err(to_py(bad("compares are ==, !=, < or >"))),
            }
        };
        Ok(Compare(c))
    }
}

/// One operation of a transaction: `Op.put`, `Op.get`, `Op.delete`, `Op.txn`.
#[pyclass(module = "concord", frozen, from_py_object)]
#[derive(Clone)]
pub struct Op(pub core::Op);

#[pymethods]
impl Op {
    /// A put.
    #[staticmethod]
    #[pyo3(signature = (key, value, *, lease=None, prev_kv=false))]
    fn put(key: Bytes, value: Bytes, lease: Option<LeaseId>, prev_kv: bool) -> Op {
        Op(core::Op::put(key.0, value.0, put_options(lease, prev_kv)))
    }
    /// A get (one key, a range or a prefix).
    #[staticmethod]
    #[pyo3(signature = (key, *, range_end=None, prefix=false, revision=None, limit=0, keys_only=false, count_only=false))]
    #[allow(clippy::too_many_arguments)]
    fn get(
        key: Bytes,
        range_end: Option<Bytes>,
        prefix: bool,
        revision: Option<i64>,
        limit: i64,
        keys_only: bool,
        count_only: bool,
    ) -> PyResult<Op> {
        let get = Get {
            revision,
            serializable: false,
            limit,
            sort: None,
            order: None,
            keys_only,
            count_only,
        };
        let range = Range::of(range_end, prefix).map_err(to_py)?;
        Ok(Op(core::Op::get(key.0, get.options(range).map_err(to_py)?)))
    }
    /// A delete (one key, a range or a prefix).
    #[staticmethod]
    #[pyo3(signature = (key, *, range_end=None, prefix=false, prev_kv=false))]
    fn delete(key: Bytes, range_end: Option<Bytes>, prefix: bool, prev_kv: bool) -> PyResult<Op> {
        let range = Range::of(range_end, prefix).map_err(to_py)?;
        Ok(Op(core::Op::delete(key.0, delete_options(range, prev_kv))))
    }
    /// A nested transaction.
    #[staticmethod]
    #[pyo3(signature = (compare=Vec::new(), success=Vec::new(), failure=Vec::new()))]
    fn txn(compare: Vec<Compare>, success: Vec<Op>, failure: Vec<Op>) -> Op {
        Op(core::Op::txn(txn(compare, success, failure)))
    }
}

/// The core transaction of Python's compares and operations.
pub fn txn(compare: Vec<Compare>, success: Vec<Op>, failure: Vec<Op>) -> core::Txn {
    core::Txn::new()
        .when(compare.into_iter().map(|c| c.0))
        .and_then(success.into_iter().map(|o| o.0))
        .or_else(failure.into_iter().map(|o| o.0))
}
