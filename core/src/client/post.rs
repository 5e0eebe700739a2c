//! In a JavaScript host, the function unary calls are POSTed with, when
//! the host has a faster way than `fetch` (Node's `fetch` costs several
//! times what `node:http` does per request). Streams (watch, observe,
//! keep-alive) always use `fetch`. The function is the host's, for every
//! client of this (single-threaded) module.
//!
//! ```no_run
//! # use std::rc::Rc;
//! use concord_core::client::post::{install, PostError};
//! install(Some(Rc::new(|url: String, body: bytes::Bytes, token: Option<String>| {
//!     Box::pin(async move { Err::<(u16, bytes::Bytes), _>(PostError { unsent: true, message: "not here".into() }) })
//!         as concord_core::client::post::PostFuture
//! })));
//! ```

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use bytes::Bytes;

/// Why a POST made by the host failed.
#[derive(Debug)]
pub struct PostError {
    /// The request certainly never reached the member (connection refused…).
    pub unsent: bool,
    /// What happened.
    pub message: String,
}

/// The answer to a POST: the HTTP status and the whole body.
pub type PostFuture = Pin<Box<dyn Future<Output = Result<(u16, Bytes), PostError>>>>;

/// POSTs `body` (JSON) to the URL, with the auth token as `Authorization` if given.
pub type PostFn = Rc<dyn Fn(String, Bytes, Option<String>) -> PostFuture>;

thread_local! {
    static POST: RefCell<Option<PostFn>> = const { RefCell::new(None) };
}

/// Makes unary calls go through `f` (`None`: back to `fetch`).
pub fn install(f: Option<PostFn>) {
    POST.with(|p| *p.borrow_mut() = f);
}

/// The installed function, if any.
pub(crate) fn installed() -> Option<PostFn> {
    POST.with(|p| p.borrow().clone())
}
