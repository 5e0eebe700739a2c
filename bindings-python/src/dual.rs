//! One definition, two Python classes: every call is written once as a
//! future of the shared client and exposed twice, as a blocking method of
//! the sync class (GIL released, Ctrl-C honored) and as a coroutine of the
//! asyncio class. Both classes hold a `core: Core`.

/// `dual_methods! { sync Client, async AsyncClient; fn name(c, arg: Ty) -> Out { body } ... }`:
/// `c` is a pattern bound to the class's `Dual::ctx()` (the client, with the
/// lease ID for a lease), moved into the body; the body is an async
/// block's contents returning `Result<Out, concord_core::client::Error>`.
macro_rules! dual_methods {
    (sync $sync:ty, async $aio:ty; $(
        $(#[doc = $doc:literal])*
        #[pyo3(signature = $sig:tt)]
        fn $name:ident($c:pat $(, $arg:ident : $ty:ty)* $(,)?) -> $out:ty $body:block
    )*) => {
        #[pymethods]
        impl $sync {
            $(
                $(#[doc = $doc])*
                #[pyo3(signature = $sig)]
                #[allow(clippy::too_many_arguments)]
                fn $name(&self, py: Python<'_> $(, $arg: $ty)*) -> PyResult<$out> {
                    let $c = Dual::ctx(self);
                    Dual::core(self).wait(py, async move $body)
                }
            )*
        }
        #[pymethods]
        impl $aio {
            $(
                $(#[doc = $doc])*
                #[pyo3(signature = $sig)]
                #[allow(clippy::too_many_arguments)]
                fn $name<'py>(&self, py: Python<'py> $(, $arg: $ty)*) -> PyResult<Bound<'py, PyAny>> {
                    let $c = Dual::ctx(self);
                    Dual::core(self).spawn::<$out, _>(py, async move $body)
                }
            )*
        }
    };
}
pub(crate) use dual_methods;
