//! The state machine the log is applied to: the key space and the lessor.
//! Deterministic: the same entries give the same revisions, leases and
//! events on every member.

use crate::api::concordpb::log_request::Request as LogOp;
use crate::api::concordpb::{AuthState, Member};
use crate::api::error::EtcdError;
use crate::api::etcdserverpb::alarm_request::AlarmAction;
use crate::api::etcdserverpb::request_op::Request as Op;
use crate::api::etcdserverpb::{
    AlarmMember, AlarmRequest, AlarmType, CompactionResponse, DeleteRangeResponse, LeaseGrantResponse,
    LeaseRevokeResponse, PutResponse, ResponseHeader, TxnRequest, TxnResponse,
};
use crate::api::mvccpb::Event;
use crate::auth::AuthStore;
use crate::lease::Lessor;
use crate::mvcc::{self, BackendError, KvWrite, Mvcc};
use crate::v2::{Outcome as V2Outcome, V2Persist, V2Store};
use std::collections::BTreeSet;

/// Durable lease records, written in the same transaction as the changes.
pub trait LeaseStore {
    /// Records a granted lease.
    fn put_lease(&mut self, id: i64, ttl: i64) -> Result<(), BackendError>;
    /// Forgets a revoked lease.
    fn delete_lease(&mut self, id: i64) -> Result<(), BackendError>;
}

/// Durable auth state and member list, written in the same transaction as
/// the change.
pub trait AuthPersist {
    /// Stores the whole auth state (it is small).
    fn put_auth(&mut self, state: &AuthState) -> Result<(), BackendError>;
    /// Stores the member list.
    fn put_members(&mut self, members: &[Member]) -> Result<(), BackendError>;
    /// Stores the raised alarms.
    fn put_alarms(&mut self, alarms: &[AlarmMember]) -> Result<(), BackendError>;
}

/// The answer to one applied write (header revision set; the cluster
/// fields are the server's to fill).
#[derive(Clone, Debug, PartialEq)]
pub enum WriteResponse {
    Put(PutResponse),
    DeleteRange(DeleteRangeResponse),
    Txn(TxnResponse),
    Compaction(CompactionResponse),
    LeaseGrant(LeaseGrantResponse),
    LeaseRevoke(LeaseRevokeResponse),
    /// An auth change; the key space's revision for the header.
    Auth(i64),
    /// A member's attributes recorded.
    Member,
    /// The alarms an alarm request raised or cleared.
    Alarm(Vec<AlarmMember>),
    /// A v2 write's outcome (a refused v2 write is an answer, not an error).
    V2(V2Outcome),
}

/// Why an entry was not applied. [`ApplyError::Fatal`] means the storage
/// failed and the member must stop; the others are answers to the client
/// (and changed nothing).
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// Refused by the rules (compacted revision, unknown lease, …).
    #[error(transparent)]
    Refused(EtcdError),
    /// The storage failed or is inconsistent.
    #[error("state machine: {0}")]
    Fatal(String),
}

impl From<mvcc::Error> for ApplyError {
    fn from(e: mvcc::Error) -> Self {
        match e {
            mvcc::Error::Backend(_) | mvcc::Error::Missing(_) => ApplyError::Fatal(e.to_string()),
            other => ApplyError::Refused(other.into()),
        }
    }
}

impl From<BackendError> for ApplyError {
    fn from(e: BackendError) -> Self {
        ApplyError::Fatal(e.to_string())
    }
}

/// The key space, the leases and the auth state.
#[derive(Debug, Default)]
pub struct StateMachine {
    /// The revisioned key space.
    pub mvcc: Mvcc,
    /// Leases and their attached keys.
    pub lessor: Lessor,
    /// Users, roles, permissions.
    pub auth: AuthStore,
    /// The members' published attributes, by ID.
    pub members: std::collections::BTreeMap<u64, Member>,
    /// The raised alarms: (member ID, `AlarmType`).
    pub alarms: BTreeSet<(u64, i32)>,
    /// Members removed from the cluster: their messages are refused, and
    /// told so, so that one that missed its own removal stops.
    pub removed: BTreeSet<u64>,
    /// The v2 key space (separate from the v3 one, as in etcd).
    pub v2: V2Store,
}

/// Whether a txn (or one nested in it) may put a key.
pub fn txn_has_puts(t: &TxnRequest) -> bool {
    t.success.iter().chain(&t.failure).any(|op| match &op.request {
        Some(Op::RequestPut(_)) => true,
        Some(Op::RequestTxn(n)) => txn_has_puts(n),
        _ => false,
    })
}

fn header(revision: i64) -> Option<ResponseHeader> {
    Some(ResponseHeader {
        revision,
        ..Default::default()
    })
}

/// A logged write's kind, as logs name it.
pub fn op_name(op: &LogOp) -> &'static str {
    match op {
        LogOp::Put(_) => "put",
        LogOp::DeleteRange(_) => "delete_range",
        LogOp::Txn(_) => "txn",
        LogOp::Compaction(_) => "compaction",
        LogOp::LeaseGrant(_) => "lease_grant",
        LogOp::LeaseRevoke(_) => "lease_revoke",
        LogOp::AuthEnable(_) => "auth_enable",
        LogOp::AuthDisable(_) => "auth_disable",
        LogOp::UserAdd(_) => "user_add",
        LogOp::UserDelete(_) => "user_delete",
        LogOp::UserChangePassword(_) => "user_change_password",
        LogOp::UserGrantRole(_) => "user_grant_role",
        LogOp::UserRevokeRole(_) => "user_revoke_role",
        LogOp::RoleAdd(_) => "role_add",
        LogOp::RoleDelete(_) => "role_delete",
        LogOp::RoleGrantPermission(_) => "role_grant_permission",
        LogOp::RoleRevokePermission(_) => "role_revoke_permission",
        LogOp::MemberAttrs(_) => "member_attrs",
        LogOp::MemberUpdate(_) => "member_update",
        LogOp::Alarm(_) => "alarm",
        LogOp::V2(_) => "v2",
    }
}

impl StateMachine {
    /// Applies one logged write whose permissions were checked at auth
    /// revision `auth_revision` (0: not checked). If auth changed since,
    /// it is refused: the client must authenticate again.
    pub fn apply<W: KvWrite + LeaseStore + AuthPersist + V2Persist>(
        &mut self,
        w: &mut W,
        op: &LogOp,
        auth_revision: u64,
    ) -> Result<WriteResponse, ApplyError> {
        let sm = self;
        if auth_revision != 0 && auth_revision < sm.auth.revision() {
            return Err(ApplyError::Refused(EtcdError::AuthOldRevision));
        }
        if let LogOp::MemberAttrs(m) | LogOp::MemberUpdate(m) = op {
            let update = matches!(op, LogOp::MemberUpdate(_));
            let merged = match sm.members.get(&m.id) {
                // An update moves the peer URLs, nothing else.
                Some(old) if update => Member {
                    peer_urls: m.peer_urls.clone(),
                    ..old.clone()
                },
                // A publication names the member and its client URLs; the
                // peer URLs and whether it is a learner are the cluster's.
                Some(old) => Member {
                    id: m.id,
                    name: m.name.clone(),
                    peer_urls: if old.peer_urls.is_empty() {
                        m.peer_urls.clone()
                    } else {
                        old.peer_urls.clone()
                    },
                    client_urls: m.client_urls.clone(),
                    is_learner: old.is_learner,
                },
                None if update => return Err(ApplyError::Refused(EtcdError::MemberNotFound)),
                None => m.clone(),
            };
            sm.members.insert(m.id, merged);
            w.put_members(&sm.members.values().cloned().collect::<Vec<_>>())?;
            return Ok(WriteResponse::Member);
        }
        if let LogOp::V2(r) = op {
            sm.check_v2_alarms(r).map_err(ApplyError::Refused)?;
            return Ok(WriteResponse::V2(sm.v2.apply(w, r)?));
        }
        if let LogOp::Alarm(a) = op {
            let changed = sm.apply_alarm(a);
            w.put_alarms(&sm.alarm_list())?;
            return Ok(WriteResponse::Alarm(changed));
        }
        sm.check_alarms(op).map_err(ApplyError::Refused)?;
        if let Some(r) = sm.apply_auth(op) {
            r.map_err(ApplyError::Refused)?;
            w.put_auth(&sm.auth.to_pb())?;
            return Ok(WriteResponse::Auth(sm.mvcc.current_revision()));
        }
        Ok(match op {
            LogOp::Put(p) => WriteResponse::Put(sm.mvcc.put(w, &mut sm.lessor, p)?),
            LogOp::DeleteRange(d) => WriteResponse::DeleteRange(sm.mvcc.delete_range(w, &mut sm.lessor, d)?),
            LogOp::Txn(t) => WriteResponse::Txn(sm.mvcc.txn(w, &mut sm.lessor, t)?),
            LogOp::Compaction(c) => WriteResponse::Compaction(sm.mvcc.compact(w, c)?),
            LogOp::LeaseGrant(g) => {
                if !sm.lessor.grant(g.id, g.ttl) {
                    return Err(ApplyError::Refused(EtcdError::LeaseExist));
                }
                w.put_lease(g.id, g.ttl)?;
                crate::metrics::LEASES_GRANTED.inc();
                WriteResponse::LeaseGrant(LeaseGrantResponse {
                    header: header(sm.mvcc.current_revision()),
                    id: g.id,
                    ttl: g.ttl,
                    error: String::new(),
                })
            }
            LogOp::LeaseRevoke(r) => {
                let keys = sm
                    .lessor
                    .revoke(r.id)
                    .ok_or(ApplyError::Refused(EtcdError::LeaseNotFound))?;
                let rev = sm.mvcc.delete_keys(w, &mut sm.lessor, keys.iter().map(Vec::as_slice))?;
                w.delete_lease(r.id)?;
                crate::metrics::LEASES_REVOKED.inc();
                WriteResponse::LeaseRevoke(LeaseRevokeResponse { header: header(rev) })
            }
            _ => unreachable!("auth and member changes are applied above"),
        })
    }

    /// Raises or clears an alarm; the alarms it changed (raising one
    /// already raised answers it too, as etcd does).
    fn apply_alarm(&mut self, a: &AlarmRequest) -> Vec<AlarmMember> {
        let key = (a.member_id, a.alarm);
        let changed = match a.action() {
            AlarmAction::Activate if a.alarm != AlarmType::None as i32 => {
                self.alarms.insert(key);
                true
            }
            AlarmAction::Deactivate => self.alarms.remove(&key),
            _ => false,
        };
        if changed || (a.action() == AlarmAction::Activate && self.alarms.contains(&key)) {
            vec![AlarmMember {
                member_id: a.member_id,
                alarm: a.alarm,
            }]
        } else {
            Vec::new()
        }
    }

    /// The raised alarms, by member then type.
    pub fn alarm_list(&self) -> Vec<AlarmMember> {
        self.alarms
            .iter()
            .map(|&(member_id, alarm)| AlarmMember { member_id, alarm })
            .collect()
    }

    /// Whether an alarm of `kind` is raised on any member.
    pub fn alarm_raised(&self, kind: AlarmType) -> bool {
        self.alarms.iter().any(|&(_, a)| a == kind as i32)
    }

    /// What raised alarms forbid, as etcd's appliers do: while CORRUPT is
    /// raised no key-space or lease change is applied; while NOSPACE is,
    /// nothing that can grow the store (puts, txns with puts, grants);
    /// deletes, compaction and revokes still free space.
    fn check_alarms(&self, op: &LogOp) -> Result<(), EtcdError> {
        if self.alarms.is_empty() {
            return Ok(());
        }
        let kv_or_lease = matches!(
            op,
            LogOp::Put(_)
                | LogOp::DeleteRange(_)
                | LogOp::Txn(_)
                | LogOp::Compaction(_)
                | LogOp::LeaseGrant(_)
                | LogOp::LeaseRevoke(_)
        );
        if kv_or_lease && self.alarm_raised(AlarmType::Corrupt) {
            return Err(EtcdError::Corrupt);
        }
        let grows = match op {
            LogOp::Put(_) | LogOp::LeaseGrant(_) => true,
            LogOp::Txn(t) => txn_has_puts(t),
            _ => false,
        };
        if grows && self.alarm_raised(AlarmType::Nospace) {
            return Err(EtcdError::NoSpace);
        }
        Ok(())
    }

    /// What raised alarms forbid of v2 writes: any but expiry while
    /// CORRUPT is raised; any that can grow the store while NOSPACE is.
    fn check_v2_alarms(&self, r: &crate::api::concordpb::V2Request) -> Result<(), EtcdError> {
        use crate::api::concordpb::v2_request::Method;
        if self.alarms.is_empty() || r.method() == Method::Expire {
            return Ok(());
        }
        if self.alarm_raised(AlarmType::Corrupt) {
            return Err(EtcdError::Corrupt);
        }
        let frees = matches!(r.method(), Method::Delete | Method::CompareAndDelete);
        if !frees && self.alarm_raised(AlarmType::Nospace) {
            return Err(EtcdError::NoSpace);
        }
        Ok(())
    }

    /// Applies an auth change; `None` if `op` is not one.
    fn apply_auth(&mut self, op: &LogOp) -> Option<Result<(), EtcdError>> {
        let a = &mut self.auth;
        Some(match op {
            LogOp::AuthEnable(_) => a.enable(),
            LogOp::AuthDisable(_) => {
                a.disable();
                Ok(())
            }
            LogOp::UserAdd(r) => a.user_add(&r.name, &r.hashed_password, r.options),
            LogOp::UserDelete(r) => a.user_delete(&r.name),
            LogOp::UserChangePassword(r) => a.user_change_password(&r.name, &r.hashed_password),
            LogOp::UserGrantRole(r) => a.user_grant_role(&r.user, &r.role),
            LogOp::UserRevokeRole(r) => a.user_revoke_role(&r.name, &r.role),
            LogOp::RoleAdd(r) => a.role_add(&r.name),
            LogOp::RoleDelete(r) => a.role_delete(&r.role),
            LogOp::RoleGrantPermission(r) => match &r.perm {
                Some(p) => a.role_grant_permission(&r.name, p.clone()),
                None => Err(EtcdError::InvalidRequest("permission not given".into())),
            },
            LogOp::RoleRevokePermission(r) => a.role_revoke_permission(&r.role, &r.key, &r.range_end),
            _ => return None,
        })
    }

    /// The changes made since the last call, in revision order.
    pub fn take_events(&mut self) -> Vec<Event> {
        self.mvcc.take_events()
    }
}
