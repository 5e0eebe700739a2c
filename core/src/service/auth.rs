//! `Auth`: who is calling, what they may do, and the Auth service itself
//! (enable/disable, users, roles, authenticate).
//!
//! Front ends hand over a [`Caller`] (the token from gRPC metadata or the
//! gateway's `Authorization` header, the client certificate's common name,
//! the source address); this layer turns it into a user and checks each
//! request where etcd does. Writes carry the auth revision they were
//! checked at, and applying refuses them if auth changed in between.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

use parking_lot::Mutex;

use super::EtcdService;
use crate::api::concordpb::log_request::Request as LogOp;
use crate::api::error::EtcdError;
use crate::api::etcdserverpb::request_op::Request as Op;
use crate::api::etcdserverpb::*;
use crate::auth::token::Tokens;
use crate::auth::Access;
use crate::raft::State;
use crate::state_machine::WriteResponse;

/// Who sent a request, as the front end saw it.
#[derive(Clone, Debug, Default)]
pub struct Caller {
    /// The auth token (gRPC `token` metadata, gateway `Authorization`).
    pub token: Option<String>,
    /// The common name of a verified client certificate (gRPC over TLS
    /// with `--client-cert-auth`): the user when no token is given.
    pub cert_user: Option<String>,
    /// The source address (for limiting failed authentications).
    pub addr: Option<IpAddr>,
    member: bool,
}

impl Caller {
    /// A client, as a front end saw it.
    pub fn client(token: Option<String>, cert_user: Option<String>, addr: Option<IpAddr>) -> Caller {
        Caller {
            token,
            cert_user,
            addr,
            member: false,
        }
    }

    /// The member itself (lease expiry, auto-compaction): never checked.
    pub fn member() -> Caller {
        Caller {
            member: true,
            ..Caller::default()
        }
    }
}

/// A caller resolved while auth is on: the user (empty when the caller
/// gave no credentials) and the auth revision the check is valid at.
#[derive(Clone, Debug)]
pub(crate) struct Identity {
    pub(crate) user: String,
    revision: u64,
}

/// Resolves `caller`: `None` when no check applies (auth off, or the member).
pub(crate) fn identify(tokens: &Tokens, state: &State, caller: &Caller) -> Result<Option<Identity>, EtcdError> {
    if caller.member {
        return Ok(None);
    }
    let (enabled, revision) = state.auth_gate();
    if !enabled {
        return Ok(None);
    }
    if let Some(t) = caller.token.as_deref().filter(|t| !t.is_empty()) {
        let info = tokens.info(t).ok_or(EtcdError::InvalidAuthToken)?;
        if info.revision < revision {
            return Err(EtcdError::AuthOldRevision);
        }
        return Ok(Some(Identity {
            user: info.user,
            revision: info.revision,
        }));
    }
    let user = caller.cert_user.clone().unwrap_or_default();
    Ok(Some(Identity { user, revision }))
}

/// Checks that `id` may access `[key, range_end)`.
pub(crate) fn require(
    state: &State,
    id: &Option<Identity>,
    key: &[u8],
    range_end: &[u8],
    access: Access,
) -> Result<(), EtcdError> {
    let Some(id) = id else {
        return Ok(());
    };
    if id.user.is_empty() {
        return Err(EtcdError::UserEmpty);
    }
    if state.with(|sm| sm.auth.permitted(&id.user, key, range_end, access)) {
        Ok(())
    } else {
        Err(EtcdError::PermissionDenied)
    }
}

/// The auth revision a write was checked at (0: unchecked).
pub(crate) fn checked_at(id: &Option<Identity>) -> u64 {
    id.as_ref().map_or(0, |i| i.revision)
}

/// Every range a txn touches and how: compares read; ops as their kind
/// (with `prev_kv`, a put or delete also reads); both branches, nested too.
pub(crate) fn txn_access<'a>(t: &'a TxnRequest, out: &mut Vec<(&'a [u8], &'a [u8], Access)>) {
    for c in &t.compare {
        out.push((&c.key, &c.range_end, Access::Read));
    }
    for op in t.success.iter().chain(&t.failure) {
        match &op.request {
            Some(Op::RequestRange(r)) => out.push((&r.key, &r.range_end, Access::Read)),
            Some(Op::RequestPut(p)) => {
                out.push((&p.key, &[], Access::Write));
                if p.prev_kv {
                    out.push((&p.key, &[], Access::Read));
                }
            }
            Some(Op::RequestDeleteRange(d)) => {
                out.push((&d.key, &d.range_end, Access::Write));
                if d.prev_kv {
                    out.push((&d.key, &d.range_end, Access::Read));
                }
            }
            Some(Op::RequestTxn(n)) => txn_access(n, out),
            None => {}
        }
    }
}

/// Failed authentications allowed per user (from one source address) and
/// per source address: a
/// bucket of `burst` attempts that refills at `per_sec`. Only failures
/// take from it; while it is empty, attempts are refused before the
/// password is checked (so they cost no bcrypt time either).
#[derive(Clone, Copy, Debug)]
pub struct AuthLimit {
    /// Failures in a row before refusing.
    pub burst: f64,
    /// Failures forgiven per second.
    pub per_sec: f64,
}

/// The limits in force: 5 failures per user from one address, then one
/// every 2 s; 20 per source address, then 2 a second.
pub const USER_LIMIT: AuthLimit = AuthLimit {
    burst: 5.0,
    per_sec: 0.5,
};
/// See [`USER_LIMIT`].
pub const ADDR_LIMIT: AuthLimit = AuthLimit {
    burst: 20.0,
    per_sec: 2.0,
};

#[derive(Clone, Copy)]
struct Bucket {
    left: f64,
    at: Instant,
}

/// Per-key buckets of failed authentications.
pub(crate) struct Limiter<K> {
    limit: AuthLimit,
    buckets: Mutex<HashMap<K, Bucket>>,
}

impl<K: std::hash::Hash + Eq + Clone> Limiter<K> {
    pub(crate) fn new(limit: AuthLimit) -> Self {
        Limiter {
            limit,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn level(&self, b: &Bucket, now: Instant) -> f64 {
        (b.left + now.duration_since(b.at).as_secs_f64() * self.limit.per_sec).min(self.limit.burst)
    }

    /// Whether another attempt may be checked now.
    pub(crate) fn allows(&self, key: &K, now: Instant) -> bool {
        self.buckets.lock().get(key).is_none_or(|b| self.level(b, now) >= 1.0)
    }

    /// Records a failure.
    pub(crate) fn failed(&self, key: &K, now: Instant) {
        let mut map = self.buckets.lock();
        if map.len() > 10_000 {
            // Forget keys whose bucket has refilled: they are as new.
            map.retain(|_, b| self.level(b, now) < self.limit.burst);
        }
        let level = map.get(key).map_or(self.limit.burst, |b| self.level(b, now));
        map.insert(
            key.clone(),
            Bucket {
                left: (level - 1.0).max(0.0),
                at: now,
            },
        );
    }
}

/// A bcrypt hash of a random password, checked when the user does not
/// exist so that answers take as long either way.
fn no_user_hash(cost: u32) -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| {
        let mut pw = [0u8; 24];
        getrandom::fill(&mut pw).expect("the OS provides randomness");
        bcrypt::hash(pw, cost).expect("bcrypt hashes")
    })
}

impl EtcdService {
    pub(crate) fn identify(&self, caller: &Caller) -> Result<Option<Identity>, EtcdError> {
        identify(&self.tokens, &self.state, caller)
    }

    /// Checks `caller` may access `[key, range_end)`; the identity for the write.
    pub(crate) fn check(
        &self,
        caller: &Caller,
        key: &[u8],
        range_end: &[u8],
        access: Access,
    ) -> Result<Option<Identity>, EtcdError> {
        let id = self.identify(caller)?;
        require(&self.state, &id, key, range_end, access)?;
        Ok(id)
    }

    /// Checks `caller` holds the root role (when auth is on).
    pub fn check_admin(&self, caller: &Caller) -> Result<u64, EtcdError> {
        let id = self.identify(caller)?;
        if let Some(i) = &id {
            if i.user.is_empty() {
                return Err(EtcdError::UserEmpty);
            }
            if !self.state.with(|sm| sm.auth.is_admin(&i.user)) {
                return Err(EtcdError::PermissionDenied);
            }
        }
        Ok(checked_at(&id))
    }

    /// Proposes an auth change as `caller` (root only while auth is on).
    async fn auth_write<T>(
        &self,
        caller: &Caller,
        op: LogOp,
        make: impl FnOnce(Option<ResponseHeader>) -> T,
    ) -> Result<T, EtcdError> {
        let checked = self.check_admin(caller)?;
        match self.propose(op, checked).await? {
            WriteResponse::Auth(rev) => Ok(make(self.header(rev))),
            other => Err(super::unexpected(&other)),
        }
    }

    async fn hash_password(&self, password: String) -> Result<String, EtcdError> {
        let cost = self.cfg.bcrypt_cost;
        tokio::task::spawn_blocking(move || bcrypt::hash(password, cost))
            .await
            .map_err(|e| EtcdError::Internal(e.to_string()))?
            .map_err(|e| EtcdError::Internal(format!("bcrypt: {e}")))
    }

    /// `Auth.AuthEnable`.
    pub async fn auth_enable(&self, caller: &Caller) -> Result<AuthEnableResponse, EtcdError> {
        self.auth_write(caller, LogOp::AuthEnable(AuthEnableRequest {}), |header| {
            AuthEnableResponse { header }
        })
        .await
    }

    /// `Auth.AuthDisable`.
    pub async fn auth_disable(&self, caller: &Caller) -> Result<AuthDisableResponse, EtcdError> {
        self.auth_write(caller, LogOp::AuthDisable(AuthDisableRequest {}), |header| {
            AuthDisableResponse { header }
        })
        .await
    }

    /// `Auth.AuthStatus` (anyone may ask).
    pub fn auth_status(&self) -> AuthStatusResponse {
        let (enabled, auth_revision) = self.state.with(|sm| (sm.auth.enabled(), sm.auth.revision()));
        AuthStatusResponse {
            header: self.header(self.state.current_revision()),
            enabled,
            auth_revision,
        }
    }

    /// Checks `name`'s password, with the failure limits of
    /// [`EtcdService::authenticate`]; the auth revision it was checked at.
    pub(crate) async fn check_password(&self, caller: &Caller, name: &str, password: String) -> Result<u64, EtcdError> {
        let (enabled, revision, stored) = self.state.with(|sm| {
            let stored = sm.auth.user(name).map(|u| {
                let no_password = u.options.is_some_and(|o| o.no_password);
                (String::from_utf8_lossy(&u.password).into_owned(), no_password)
            });
            (sm.auth.enabled(), sm.auth.revision(), stored)
        });
        if !enabled {
            return Err(EtcdError::AuthNotEnabled);
        }
        let now = Instant::now();
        let user_key = (name.to_string(), caller.addr);
        let user_ok = self.auth_limits.0.allows(&user_key, now);
        let addr_ok = caller.addr.is_none_or(|a| self.auth_limits.1.allows(&a, now));
        if !user_ok || !addr_ok {
            tracing::warn!(user = %name, addr = ?caller.addr, "authentication refused: too many failures");
            return Err(EtcdError::TooManyRequests);
        }
        let cost = self.cfg.bcrypt_cost;
        let (hash, usable) = match stored {
            Some((hash, false)) if !hash.is_empty() => (hash, true),
            _ => (String::new(), false),
        };
        let matched = tokio::task::spawn_blocking(move || {
            let hash = if usable { hash.as_str() } else { no_user_hash(cost) };
            bcrypt::verify(password, hash).unwrap_or(false)
        })
        .await
        .map_err(|e| EtcdError::Internal(e.to_string()))?;
        if !(matched && usable) {
            self.auth_limits.0.failed(&user_key, now);
            if let Some(a) = caller.addr {
                self.auth_limits.1.failed(&a, now);
            }
            return Err(EtcdError::AuthFailed);
        }
        Ok(revision)
    }

    /// `Auth.Authenticate`: checks the password (bcrypt, off the async
    /// threads) and issues a token. Failures are limited per user and
    /// source address, and per source address ([`USER_LIMIT`],
    /// [`ADDR_LIMIT`]): someone guessing root's password from one place
    /// cannot lock root out everywhere.
    pub async fn authenticate(
        &self,
        caller: &Caller,
        req: AuthenticateRequest,
    ) -> Result<AuthenticateResponse, EtcdError> {
        let revision = self.check_password(caller, &req.name, req.password).await?;
        // Issued at the revision the password was checked at: if auth
        // changed meanwhile, the token is already stale.
        let token = self.tokens.assign(&req.name, revision);
        Ok(AuthenticateResponse {
            header: self.header(self.state.current_revision()),
            token,
        })
    }

    /// `Auth.UserAdd`: the password is hashed here; only the hash is logged.
    pub async fn user_add(
        &self,
        caller: &Caller,
        mut req: AuthUserAddRequest,
    ) -> Result<AuthUserAddResponse, EtcdError> {
        self.check_admin(caller)?;
        if req.name.is_empty() {
            return Err(EtcdError::UserEmpty);
        }
        let no_password = req.options.is_some_and(|o| o.no_password);
        req.hashed_password = if no_password || !req.hashed_password.is_empty() {
            req.hashed_password
        } else {
            self.hash_password(std::mem::take(&mut req.password)).await?
        };
        req.password.clear();
        self.auth_write(caller, LogOp::UserAdd(req), |header| AuthUserAddResponse { header })
            .await
    }

    /// `Auth.UserGet`.
    pub fn user_get(&self, caller: &Caller, req: &AuthUserGetRequest) -> Result<AuthUserGetResponse, EtcdError> {
        self.check_admin(caller)?;
        let roles = self.state.with(|sm| sm.auth.user_get(&req.name))?;
        Ok(AuthUserGetResponse {
            header: self.header(self.state.current_revision()),
            roles,
        })
    }

    /// `Auth.UserList`.
    pub fn user_list(&self, caller: &Caller) -> Result<AuthUserListResponse, EtcdError> {
        self.check_admin(caller)?;
        Ok(AuthUserListResponse {
            header: self.header(self.state.current_revision()),
            users: self.state.with(|sm| sm.auth.user_list()),
        })
    }

    /// `Auth.UserDelete`.
    pub async fn user_delete(
        &self,
        caller: &Caller,
        req: AuthUserDeleteRequest,
    ) -> Result<AuthUserDeleteResponse, EtcdError> {
        self.auth_write(caller, LogOp::UserDelete(req), |header| AuthUserDeleteResponse {
            header,
        })
        .await
    }

    /// `Auth.UserChangePassword`: hashed here; only the hash is logged.
    pub async fn user_change_password(
        &self,
        caller: &Caller,
        mut req: AuthUserChangePasswordRequest,
    ) -> Result<AuthUserChangePasswordResponse, EtcdError> {
        self.check_admin(caller)?;
        if self.state.with(|sm| sm.auth.user(&req.name).is_none()) {
            return Err(EtcdError::UserNotFound);
        }
        if req.hashed_password.is_empty() {
            req.hashed_password = self.hash_password(std::mem::take(&mut req.password)).await?;
        }
        req.password.clear();
        self.auth_write(caller, LogOp::UserChangePassword(req), |header| {
            AuthUserChangePasswordResponse { header }
        })
        .await
    }

    /// `Auth.UserGrantRole`.
    pub async fn user_grant_role(
        &self,
        caller: &Caller,
        req: AuthUserGrantRoleRequest,
    ) -> Result<AuthUserGrantRoleResponse, EtcdError> {
        self.auth_write(caller, LogOp::UserGrantRole(req), |header| AuthUserGrantRoleResponse {
            header,
        })
        .await
    }

    /// `Auth.UserRevokeRole`.
    pub async fn user_revoke_role(
        &self,
        caller: &Caller,
        req: AuthUserRevokeRoleRequest,
    ) -> Result<AuthUserRevokeRoleResponse, EtcdError> {
        self.auth_write(caller, LogOp::UserRevokeRole(req), |header| {
            AuthUserRevokeRoleResponse { header }
        })
        .await
    }

    /// `Auth.RoleAdd`.
    pub async fn role_add(&self, caller: &Caller, req: AuthRoleAddRequest) -> Result<AuthRoleAddResponse, EtcdError> {
        self.auth_write(caller, LogOp::RoleAdd(req), |header| AuthRoleAddResponse { header })
            .await
    }

    /// `Auth.RoleGet`.
    pub fn role_get(&self, caller: &Caller, req: &AuthRoleGetRequest) -> Result<AuthRoleGetResponse, EtcdError> {
        self.check_admin(caller)?;
        let perm = self.state.with(|sm| sm.auth.role_get(&req.role))?;
        Ok(AuthRoleGetResponse {
            header: self.header(self.state.current_revision()),
            perm,
        })
    }

    /// `Auth.RoleList`.
    pub fn role_list(&self, caller: &Caller) -> Result<AuthRoleListResponse, EtcdError> {
        self.check_admin(caller)?;
        Ok(AuthRoleListResponse {
            header: self.header(self.state.current_revision()),
            roles: self.state.with(|sm| sm.auth.role_list()),
        })
    }

    /// `Auth.RoleDelete`.
    pub async fn role_delete(
        &self,
        caller: &Caller,
        req: AuthRoleDeleteRequest,
    ) -> Result<AuthRoleDeleteResponse, EtcdError> {
        self.auth_write(caller, LogOp::RoleDelete(req), |header| AuthRoleDeleteResponse {
            header,
        })
        .await
    }

    /// `Auth.RoleGrantPermission`.
    pub async fn role_grant_permission(
        &self,
        caller: &Caller,
        req: AuthRoleGrantPermissionRequest,
    ) -> Result<AuthRoleGrantPermissionResponse, EtcdError> {
        if req.perm.is_none() {
            return Err(EtcdError::InvalidRequest("etcdserver: permission not given".into()));
        }
        self.auth_write(caller, LogOp::RoleGrantPermission(req), |header| {
            AuthRoleGrantPermissionResponse { header }
        })
        .await
    }

    /// `Auth.RoleRevokePermission`.
    pub async fn role_revoke_permission(
        &self,
        caller: &Caller,
        req: AuthRoleRevokePermissionRequest,
    ) -> Result<AuthRoleRevokePermissionResponse, EtcdError> {
        self.auth_write(caller, LogOp::RoleRevokePermission(req), |header| {
            AuthRoleRevokePermissionResponse { header }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn limiter_refuses_after_burst_and_refills() {
        let l = Limiter::new(AuthLimit {
            burst: 3.0,
            per_sec: 1.0,
        });
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(l.allows(&"u", t0));
            l.failed(&"u", t0);
        }
        assert!(!l.allows(&"u", t0));
        assert!(l.allows(&"other", t0));
        assert!(!l.allows(&"u", t0 + Duration::from_millis(900)));
        assert!(l.allows(&"u", t0 + Duration::from_millis(1100)));
    }

    #[test]
    fn no_user_hash_matches_nothing() {
        assert_eq!(bcrypt::verify("", no_user_hash(4)).ok(), Some(false));
    }

    #[test]
    fn txn_access_covers_both_branches_and_nesting() {
        let inner = TxnRequest {
            success: vec![RequestOp {
                request: Some(Op::RequestDeleteRange(DeleteRangeRequest {
                    key: b"d".to_vec(),
                    range_end: b"e".to_vec(),
                    prev_kv: true,
                })),
            }],
            ..Default::default()
        };
        let t = TxnRequest {
            compare: vec![Compare {
                key: b"c".to_vec(),
                ..Default::default()
            }],
            success: vec![RequestOp {
                request: Some(Op::RequestTxn(inner)),
            }],
            failure: vec![RequestOp {
                request: Some(Op::RequestPut(PutRequest {
                    key: b"p".to_vec(),
                    ..Default::default()
                })),
            }],
        };
        let mut out = Vec::new();
        txn_access(&t, &mut out);
        let got: Vec<(&[u8], Access)> = out.iter().map(|(k, _, a)| (*k, *a)).collect();
        assert_eq!(
            got,
            vec![
                (&b"c"[..], Access::Read),
                (&b"d"[..], Access::Write),
                (&b"d"[..], Access::Read),
                (&b"p"[..], Access::Write)
            ]
        );
    }
}
