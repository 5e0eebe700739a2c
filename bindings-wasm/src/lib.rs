//! `concord-kv` for JavaScript: the shared client (`concord_core::client`)
//! compiled to WebAssembly, for browsers and Node 18+ (both over `fetch`).
//!
//! This layer converts JavaScript values to the client's types and back,
//! and the client's errors to JavaScript errors, nothing more: failover,
//! watch resume, keep-alive and token renewal are the shared client's.
//! `js/index.js` shapes it as JavaScript users expect (async iterators,
//! classes, `ConcordError` subclasses) and `js/index.d.ts` types it.
//!
//! Conventions at this boundary: keys and values are `string` (UTF-8) or
//! `Uint8Array`; revisions and counts are numbers; lease IDs are decimal
//! strings (they use all 64 bits, more than a JavaScript number holds).

mod convert;
mod error;

use std::rc::Rc;
use std::time::Duration;

use concord_core::client::{Client, ClientOptions, Feed, KeepAlive, Observer, WatchHandle, WatchOptions};
use js_sys::Promise;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use convert::{bytes, get, get_bool, get_f64, get_str, lease_id, obj, set};
use error::to_js;

/// A client of a Concord or etcd cluster (`Client.connect` in `index.js`).
#[wasm_bindgen]
pub struct NativeClient {
    c: Client,
}

fn promise<F>(f: F) -> Promise
where
    F: std::future::Future<Output = Result<JsValue, JsValue>> + 'static,
{
    future_to_promise(f)
}

#[wasm_bindgen]
impl NativeClient {
    /// `{ endpoints, user, password, timeoutMs }`; resolves once
    /// authenticated (with a user).
    pub fn connect(opts: JsValue) -> Promise {
        promise(async move {
            let eps = get(&opts, "endpoints");
            let endpoints: Vec<String> = if eps.is_undefined() {
                vec!["http://127.0.0.1:2379".into()]
            } else {
                convert::items(&eps, "endpoints")?
                    .iter()
                    .map(|e| {
                        e.as_string()
                            .ok_or_else(|| error::type_error("endpoints must be strings"))
                    })
                    .collect::<Result<_, _>>()?
            };
            let mut o = ClientOptions::new(endpoints);
            if let Some(ms) = get_f64(&opts, "timeoutMs") {
                o = o.timeout(Duration::from_secs_f64(ms.max(1.0) / 1000.0));
            }
            if let Some(user) = get_str(&opts, "user") {
                o = o.user(user, get_str(&opts, "password").unwrap_or_default());
            }
            let c = Client::connect(o).await.map_err(to_js)?;
            Ok(NativeClient { c }.into())
        })
    }

    /// Put `key` = `value`; opts `{ lease, prevKv }`.
    pub fn put(&self, key: JsValue, value: JsValue, opts: JsValue) -> Promise {
        let c = self.c.clone();
        promise(async move {
            let p = convert::put_options(&opts)?;
            let r = c.put(bytes(&key)?, bytes(&value)?, p).await.map_err(to_js)?;
            let out = obj();
            set(&out, "revision", convert::revision(&r.header));
            if let Some(kv) = &r.prev_kv {
                set(&out, "prevKv", convert::kv(kv));
            }
            Ok(out.into())
        })
    }

    /// A range: opts as `GetOptions` in `index.d.ts`.
    pub fn range(&self, key: JsValue, opts: JsValue) -> Promise {
        let c = self.c.clone();
        promise(async move {
            let g = convert::get_options(&opts)?;
            let r = c.get(bytes(&key)?, g).await.map_err(to_js)?;
            Ok(convert::range(&r).into())
        })
    }

    /// A delete: opts `{ rangeEnd, prefix, fromKey, prevKv }`.
    pub fn delete(&self, key: JsValue, opts: JsValue) -> Promise {
        let c = self.c.clone();
        promise(async move {
            let d = convert::delete_options(&opts)?;
            let r = c.delete(bytes(&key)?, d).await.map_err(to_js)?;
            Ok(convert::deleted(&r).into())
        })
    }

    /// A transaction `{ compare, success, failure }` (see `index.d.ts`).
    pub fn txn(&self, spec: JsValue) -> Promise {
        let c = self.c.clone();
        promise(async move {
            let t = convert::txn(&spec, 0)?;
            let r = c.txn(t).await.map_err(to_js)?;
            Ok(convert::txn_response(&r).into())
        })
    }

    /// Starts a watch: opts `{ prefix, rangeEnd, startRevision, prevKv, noPut, noDelete, progressNotify }`.
    pub fn watch(&self, key: JsValue, opts: JsValue) -> Promise {
        let c = self.c.clone();
        promise(async move {
            let (range, mut w) = (convert::key_range(&opts)?, WatchOptions::new());
            if let Some(rev) = get_f64(&opts, "startRevision") {
                w = w.start_revision(rev as i64);
            }
            if get_bool(&opts, "prevKv") {
                w = w.prev_kv();
            }
            if get_bool(&opts, "noPut") {
                w = w.no_put();
            }
            if get_bool(&opts, "noDelete") {
                w = w.no_delete();
            }
            if get_bool(&opts, "progressNotify") {
                w = w.progress_notify();
            }
            let w = c.watch(bytes(&key)?, w.key_range(range)).await.map_err(to_js)?;
            let start = w.next_revision();
            Ok(NativeWatch {
                h: Rc::new(Feed::spawn(w.into_stream())),
                start,
            }
            .into())
        })
    }

    /// Grants a lease of `ttl` seconds (`id`: "0" for one the server picks); its ID.
    #[wasm_bindgen(js_name = leaseGrant)]
    pub fn lease_grant(&self, ttl: f64, id: JsValue) -> Promise {
        let c = self.c.clone();
        promise(async move {
            let id = if id.is_undefined() || id.is_null() {
                0
            } else {
                lease_id(&id)?
            };
            let r = c.lease_grant(ttl as i64, id).await.map_err(to_js)?;
            Ok(JsValue::from_str(&r.id.to_string()))
        })
    }

    /// Revokes a lease (its keys are deleted).
    #[wasm_bindgen(js_name = leaseRevoke)]
    pub fn lease_revoke(&self, id: JsValue) -> Promise {
        let c = self.c.clone();
        promise(async move {
            c.lease_revoke(lease_id(&id)?).await.map_err(to_js)?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// `{ ttl, grantedTtl, keys }` of a lease (`ttl` -1: it does not exist).
    #[wasm_bindgen(js_name = leaseTimeToLive)]
    pub fn lease_time_to_live(&self, id: JsValue) -> Promise {
        let c = self.c.clone();
        promise(async move {
            let r = c.lease_time_to_live(lease_id(&id)?, true).await.map_err(to_js)?;
            let out = obj();
            set(&out, "ttl", JsValue::from_f64(r.ttl as f64));
            set(&out, "grantedTtl", JsValue::from_f64(r.granted_ttl as f64));
            let keys = js_sys::Array::new();
            for k in &r.keys {
                keys.push(&js_sys::Uint8Array::from(k.as_slice()));
            }
            set(&out, "keys", keys.into());
            Ok(out.into())
        })
    }

    /// The IDs of every lease on the cluster.
    pub fn leases(&self) -> Promise {
        let c = self.c.clone();
        promise(async move {
            let r = c.leases().await.map_err(to_js)?;
            let ids = js_sys::Array::new();
            for l in &r.leases {
                ids.push(&JsValue::from_str(&l.id.to_string()));
            }
            Ok(ids.into())
        })
    }

    /// Keeps a lease alive in the background until closed or lost.
    #[wasm_bindgen(js_name = keepAlive)]
    pub fn keep_alive(&self, id: JsValue) -> Promise {
        let c = self.c.clone();
        promise(async move {
            let k = c.lease_keep_alive(lease_id(&id)?).await.map_err(to_js)?;
            Ok(NativeKeepAlive { k: Rc::new(k) }.into())
        })
    }

    /// Waits for lock `name` held under `lease`, at most `timeoutMs`
    /// (negative: no limit); `{ key, revision }`.
    pub fn lock(&self, name: JsValue, lease: JsValue, timeout_ms: f64) -> Promise {
        let c = self.c.clone();
        promise(async move {
            let wait = (timeout_ms >= 0.0).then(|| Duration::from_secs_f64(timeout_ms / 1000.0));
            let r = c.lock(bytes(&name)?, lease_id(&lease)?, wait).await.map_err(to_js)?;
            let out = obj();
            set(&out, "key", js_sys::Uint8Array::from(r.key.as_slice()).into());
            set(&out, "revision", convert::revision(&r.header));
            Ok(out.into())
        })
    }

    /// Releases a lock by its key.
    pub fn unlock(&self, key: JsValue) -> Promise {
        let c = self.c.clone();
        promise(async move {
            c.unlock(bytes(&key)?).await.map_err(to_js)?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Campaigns in election `name` under `lease` with `value`; resolves
    /// when elected, with the leadership `{ name, key, rev, lease }`.
    pub fn campaign(&self, name: JsValue, lease: JsValue, value: JsValue) -> Promise {
        let c = self.c.clone();
        promise(async move {
            let r = c
                .campaign(bytes(&name)?, lease_id(&lease)?, bytes(&value)?, None)
                .await
                .map_err(to_js)?;
            Ok(convert::leader_key(&r.leader.unwrap_or_default()).into())
        })
    }

    /// Announces a new value as the leader.
    pub fn proclaim(&self, leader: JsValue, value: JsValue) -> Promise {
        let c = self.c.clone();
        promise(async move {
            let l = convert::to_leader_key(&leader)?;
            c.proclaim(&l, bytes(&value)?).await.map_err(to_js)?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Gives up leadership.
    pub fn resign(&self, leader: JsValue) -> Promise {
        let c = self.c.clone();
        promise(async move {
            let l = convert::to_leader_key(&leader)?;
            c.resign(&l).await.map_err(to_js)?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// The leader's key-value of election `name`, or null when none leads.
    pub fn leader(&self, name: JsValue) -> Promise {
        let c = self.c.clone();
        promise(async move {
            let kv = c.current_leader(bytes(&name)?).await.map_err(to_js)?;
            Ok(kv.as_ref().map_or(JsValue::NULL, convert::kv))
        })
    }

    /// Each change of leader in election `name` (the current one first).
    pub fn observe(&self, name: JsValue) -> Result<NativeObserver, JsValue> {
        let o = self.c.observe(bytes(&name)?).map_err(to_js)?;
        Ok(NativeObserver { o: Rc::new(o) })
    }

    /// The status of the member that answers.
    pub fn status(&self) -> Promise {
        let c = self.c.clone();
        promise(async move {
            let r = c.status().await.map_err(to_js)?;
            Ok(convert::status(&r).into())
        })
    }

    /// The members of the cluster.
    pub fn members(&self) -> Promise {
        let c = self.c.clone();
        promise(async move {
            let r = c.member_list().await.map_err(to_js)?;
            Ok(convert::members(&r))
        })
    }
}

/// A running watch.
#[wasm_bindgen]
pub struct NativeWatch {
    h: Rc<WatchHandle>,
    /// The revision its first event can have (known once created).
    start: i64,
}

#[wasm_bindgen]
impl NativeWatch {
    /// The revision the watch started from: where to reopen it if nothing
    /// was delivered yet.
    #[wasm_bindgen(getter, js_name = startRevision)]
    pub fn start_revision(&self) -> f64 {
        self.start as f64
    }

    /// The next response `{ revision, events }`, or null once canceled.
    pub fn next(&self) -> Promise {
        let h = Rc::clone(&self.h);
        promise(async move {
            match h.next().await {
                None => Ok(JsValue::NULL),
                Some(Ok(r)) => Ok(convert::watch_response(&r).into()),
                Some(Err(e)) => Err(to_js(e)),
            }
        })
    }

    /// Stops the watch: `next` then resolves null.
    pub fn cancel(&self) {
        self.h.cancel();
    }
}

/// Changes of leader.
#[wasm_bindgen]
pub struct NativeObserver {
    o: Rc<Observer>,
}

#[wasm_bindgen]
impl NativeObserver {
    /// The next leader's key-value, or null once canceled.
    pub fn next(&self) -> Promise {
        let o = Rc::clone(&self.o);
        promise(async move {
            match o.next().await {
                None => Ok(JsValue::NULL),
                Some(Ok(r)) => Ok(r.kv.as_ref().map_or(JsValue::NULL, convert::kv)),
                Some(Err(e)) => Err(to_js(e)),
            }
        })
    }

    /// Stops observing.
    pub fn cancel(&self) {
        self.o.cancel();
    }
}

/// A lease kept alive in the background.
#[wasm_bindgen]
pub struct NativeKeepAlive {
    k: Rc<KeepAlive>,
}

#[wasm_bindgen]
impl NativeKeepAlive {
    /// Resolves with the error once the lease is lost (null if closed first).
    pub fn lost(&self) -> Promise {
        let k = Rc::clone(&self.k);
        promise(async move { Ok(k.lost().await.map_or(JsValue::NULL, to_js)) })
    }

    /// Stops refreshing (the lease itself is not revoked).
    pub fn close(&self) {
        self.k.close();
    }
}

/// Makes unary calls go through `post(url, body, token)` (a function
/// returning a Promise of `{ status, body }`, rejecting with `{ unsent,
/// message }`); `null` goes back to `fetch`. `index.js` installs one on
/// `node:http` under Node.
#[cfg(target_arch = "wasm32")]
#[wasm_bindgen(js_name = usePost)]
pub fn use_post(post: Option<js_sys::Function>) {
    use concord_core::client::post::{install, PostError, PostFuture};
    let Some(f) = post else {
        install(None);
        return;
    };
    install(Some(Rc::new(
        move |url: String, body: bytes::Bytes, token: Option<String>| {
            let token = token.map_or(JsValue::NULL, |t| JsValue::from_str(&t));
            let called = f.call3(
                &JsValue::NULL,
                &JsValue::from_str(&url),
                &js_sys::Uint8Array::from(body.as_ref()).into(),
                &token,
            );
            Box::pin(async move {
                let failed = |e: JsValue| PostError {
                    unsent: get_bool(&e, "unsent"),
                    message: get_str(&e, "message").unwrap_or_else(|| format!("{e:?}")),
                };
                let promise: Promise = called.map_err(failed)?.into();
                let r = wasm_bindgen_futures::JsFuture::from(promise).await.map_err(failed)?;
                let status = get_f64(&r, "status").unwrap_or(0.0) as u16;
                let body = get(&r, "body")
                    .dyn_ref::<js_sys::Uint8Array>()
                    .map(|b| b.to_vec())
                    .ok_or_else(|| PostError {
                        unsent: false,
                        message: "the POST hook answered without a Uint8Array body".into(),
                    })?;
                Ok((status, bytes::Bytes::from(body)))
            }) as PostFuture
        },
    )));
}

thread_local! {
    /// JavaScript's `onPanic` callback (see `setPanicHandler`).
    static PANIC_HANDLER: std::cell::RefCell<Option<js_sys::Function>> = const { std::cell::RefCell::new(None) };
}

/// Registers `f(message)`, called when Rust code panics, just before the
/// instance traps. `index.js` uses it to reject every call in flight with a
/// `ConcordError`; the instance itself is rebuilt before the next call
/// (wasm-bindgen's `schedule_reinit`), so the module never stays dead.
#[wasm_bindgen(js_name = setPanicHandler)]
pub fn set_panic_handler(f: Option<js_sys::Function>) {
    PANIC_HANDLER.with(|h| {
        if let Ok(mut h) = h.try_borrow_mut() {
            *h = f;
        }
    });
}

/// Panics, now or inside a task: for the tests of the recovery only.
#[doc(hidden)]
#[wasm_bindgen(js_name = __panicForTests)]
pub fn panic_for_tests(in_task: bool) -> Promise {
    if !in_task {
        panic!("a panic for the tests (in a call)");
    }
    promise(async move {
        rt_yield().await;
        panic!("a panic for the tests (in a task)")
    })
}

/// Lets a task yield once to the executor.
async fn rt_yield() {
    let p = Promise::resolve(&JsValue::NULL);
    let _ = wasm_bindgen_futures::JsFuture::from(p).await;
}

/// A panic is logged, reported to `index.js`, and the instance is scheduled
/// for a rebuild before the next call.
#[wasm_bindgen(start)]
pub fn start() {
    std::panic::set_hook(Box::new(|info| {
        let message = info.to_string();
        web_log(&format!("concord-kv: {message}"));
        wasm_bindgen::handler::schedule_reinit();
        let handler = PANIC_HANDLER
            .try_with(|h| h.try_borrow().ok().and_then(|f| f.clone()))
            .ok()
            .flatten();
        if let Some(f) = handler {
            let _ = f.call1(&JsValue::NULL, &JsValue::from_str(&message));
        }
    }));
}

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console, js_name = error)]
    fn web_log(s: &str);
}
