//! The one place where the shared client's errors become JavaScript
//! errors: an `Error` whose `name` is `ConcordError`, with etcd's gRPC
//! `code` and the client's `kind` (`index.js` turns them into subclasses).

use concord_core::client::Error;
use wasm_bindgen::JsValue;

/// `e` as a JavaScript error `{ name, message, code, kind }`.
pub fn to_js(e: Error) -> JsValue {
    let err = js_sys::Error::new(&e.to_string());
    err.set_name("ConcordError");
    let o: &JsValue = err.as_ref();
    let _ = js_sys::Reflect::set(o, &"code".into(), &JsValue::from_f64(e.code() as i32 as f64));
    let _ = js_sys::Reflect::set(o, &"kind".into(), &JsValue::from_str(&format!("{:?}", e.kind())));
    if let Error::WatchCompacted { compact_revision, .. } = e {
        let _ = js_sys::Reflect::set(
            o,
            &"compactRevision".into(),
            &JsValue::from_f64(compact_revision as f64),
        );
    }
    err.into()
}

/// A `TypeError` for an argument of the wrong type.
pub fn type_error(msg: &str) -> JsValue {
    js_sys::TypeError::new(msg).into()
}
