//! Users, roles and key-range permissions: etcd's auth state, as part of
//! the state machine (every change goes through the log, so it is durable
//! and the same on every member). Deterministic and free of I/O: passwords
//! arrive here already hashed, and checking one is the caller's job.
//!
//! Every change that succeeds moves the auth revision on; a token issued
//! at an older revision is then refused with `revision of auth store is
//! old`, so permission changes take effect at once.

mod perm;
#[cfg(feature = "server")]
pub mod token;

use std::collections::BTreeMap;

pub use perm::{Access, RangeSet};

use crate::api::authpb::{permission::Type as PermType, Permission, Role, User, UserAddOptions};
use crate::api::concordpb::AuthState;
use crate::api::error::EtcdError;

/// The name of the user that must exist before auth can be enabled, and
/// of the role that may do everything.
pub const ROOT: &str = "root";

/// The auth state.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AuthStore {
    enabled: bool,
    revision: u64,
    users: BTreeMap<String, User>,
    roles: BTreeMap<String, Role>,
}

fn name_of(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl AuthStore {
    /// The state as stored.
    pub fn from_pb(s: AuthState) -> AuthStore {
        AuthStore {
            enabled: s.enabled,
            revision: s.revision,
            users: s.users.into_iter().map(|u| (name_of(&u.name), u)).collect(),
            roles: s.roles.into_iter().map(|r| (name_of(&r.name), r)).collect(),
        }
    }

    /// The state to store.
    pub fn to_pb(&self) -> AuthState {
        AuthState {
            enabled: self.enabled,
            revision: self.revision,
            users: self.users.values().cloned().collect(),
            roles: self.roles.values().cloned().collect(),
        }
    }

    /// Whether auth is on.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The auth revision: moves on with every change.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    fn bump(&mut self) {
        self.revision += 1;
    }

    fn user_mut(&mut self, name: &str) -> Result<&mut User, EtcdError> {
        self.users.get_mut(name).ok_or(EtcdError::UserNotFound)
    }

    /// The stored user (with its password hash).
    pub fn user(&self, name: &str) -> Option<&User> {
        self.users.get(name)
    }

    /// `AuthEnable`: needs a root user holding the root role.
    pub fn enable(&mut self) -> Result<(), EtcdError> {
        if self.enabled {
            return Ok(());
        }
        let root = self.users.get(ROOT).ok_or(EtcdError::RootUserNotExist)?;
        if !root.roles.iter().any(|r| r == ROOT) {
            return Err(EtcdError::RootRoleNotExist);
        }
        self.enabled = true;
        self.bump();
        Ok(())
    }

    /// `AuthDisable`.
    pub fn disable(&mut self) {
        if self.enabled {
            self.enabled = false;
            self.bump();
        }
    }

    /// `UserAdd`, with the password already hashed (empty with `no_password`).
    pub fn user_add(&mut self, name: &str, hash: &str, options: Option<UserAddOptions>) -> Result<(), EtcdError> {
        if name.is_empty() {
            return Err(EtcdError::UserEmpty);
        }
        if self.users.contains_key(name) {
            return Err(EtcdError::UserAlreadyExist);
        }
        self.users.insert(
            name.to_string(),
            User {
                name: name.as_bytes().to_vec(),
                password: hash.as_bytes().to_vec(),
                roles: Vec::new(),
                options,
            },
        );
        self.bump();
        Ok(())
    }

    /// `UserDelete`; the root user stays while auth is on.
    pub fn user_delete(&mut self, name: &str) -> Result<(), EtcdError> {
        if self.enabled && name == ROOT {
            return Err(EtcdError::InvalidAuthMgmt);
        }
        self.users.remove(name).ok_or(EtcdError::UserNotFound)?;
        self.bump();
        Ok(())
    }

    /// `UserChangePassword`, with the new password already hashed.
    pub fn user_change_password(&mut self, name: &str, hash: &str) -> Result<(), EtcdError> {
        self.user_mut(name)?.password = hash.as_bytes().to_vec();
        self.bump();
        Ok(())
    }

    /// `UserGrantRole`. The root role need not exist as a role to be granted.
    pub fn user_grant_role(&mut self, user: &str, role: &str) -> Result<(), EtcdError> {
        if role != ROOT && !self.roles.contains_key(role) {
            self.user_mut(user)?;
            return Err(EtcdError::RoleNotFound);
        }
        let u = self.user_mut(user)?;
        if let Err(i) = u.roles.binary_search_by(|r| r.as_str().cmp(role)) {
            u.roles.insert(i, role.to_string());
            self.bump();
        }
        Ok(())
    }

    /// `UserRevokeRole`; root keeps the root role while auth is on.
    pub fn user_revoke_role(&mut self, user: &str, role: &str) -> Result<(), EtcdError> {
        if self.enabled && user == ROOT && role == ROOT {
            return Err(EtcdError::InvalidAuthMgmt);
        }
        let u = self.user_mut(user)?;
        let i = u
            .roles
            .iter()
            .position(|r| r == role)
            .ok_or(EtcdError::RoleNotGranted)?;
        u.roles.remove(i);
        self.bump();
        Ok(())
    }

    /// `UserGet`: the user's roles.
    pub fn user_get(&self, name: &str) -> Result<Vec<String>, EtcdError> {
        Ok(self.users.get(name).ok_or(EtcdError::UserNotFound)?.roles.clone())
    }

    /// `UserList`, sorted.
    pub fn user_list(&self) -> Vec<String> {
        self.users.keys().cloned().collect()
    }

    /// `RoleAdd`.
    pub fn role_add(&mut self, name: &str) -> Result<(), EtcdError> {
        if name.is_empty() {
            return Err(EtcdError::RoleEmpty);
        }
        if self.roles.contains_key(name) {
            return Err(EtcdError::RoleAlreadyExist);
        }
        self.roles.insert(
            name.to_string(),
            Role {
                name: name.as_bytes().to_vec(),
                key_permission: Vec::new(),
            },
        );
        self.bump();
        Ok(())
    }

    /// `RoleDelete`, also taking the role from every user; the root role
    /// stays while auth is on.
    pub fn role_delete(&mut self, name: &str) -> Result<(), EtcdError> {
        if self.enabled && name == ROOT {
            return Err(EtcdError::InvalidAuthMgmt);
        }
        self.roles.remove(name).ok_or(EtcdError::RoleNotFound)?;
        for u in self.users.values_mut() {
            u.roles.retain(|r| r != name);
        }
        self.bump();
        Ok(())
    }

    /// `RoleGrantPermission`: a permission on the same key and range end
    /// is replaced; permissions stay sorted by key.
    pub fn role_grant_permission(&mut self, name: &str, perm: Permission) -> Result<(), EtcdError> {
        let role = self.roles.get_mut(name).ok_or(EtcdError::RoleNotFound)?;
        let perms = &mut role.key_permission;
        match perms
            .iter_mut()
            .find(|p| p.key == perm.key && p.range_end == perm.range_end)
        {
            Some(p) => p.perm_type = perm.perm_type,
            None => {
                let i = perms.partition_point(|p| (&p.key, &p.range_end) < (&perm.key, &perm.range_end));
                perms.insert(i, perm);
            }
        }
        self.bump();
        Ok(())
    }

    /// `RoleRevokePermission` of exactly this key and range end.
    pub fn role_revoke_permission(&mut self, name: &str, key: &[u8], range_end: &[u8]) -> Result<(), EtcdError> {
        let role = self.roles.get_mut(name).ok_or(EtcdError::RoleNotFound)?;
        let i = role
            .key_permission
            .iter()
            .position(|p| p.key == key && p.range_end == range_end)
            .ok_or(EtcdError::PermissionNotGranted)?;
        role.key_permission.remove(i);
        self.bump();
        Ok(())
    }

    /// `RoleGet`: the role's permissions. The root role exists implicitly.
    pub fn role_get(&self, name: &str) -> Result<Vec<Permission>, EtcdError> {
        match self.roles.get(name) {
            Some(r) => Ok(r.key_permission.clone()),
            None => Err(EtcdError::RoleNotFound),
        }
    }

    /// `RoleList`, sorted.
    pub fn role_list(&self) -> Vec<String> {
        self.roles.keys().cloned().collect()
    }

    /// Whether `user` holds the root role.
    pub fn is_admin(&self, user: &str) -> bool {
        self.users.get(user).is_some_and(|u| u.roles.iter().any(|r| r == ROOT))
    }

    /// Everything `user` may access the given way.
    pub fn ranges(&self, user: &str, access: Access) -> RangeSet {
        let mut set = RangeSet::default();
        let Some(u) = self.users.get(user) else {
            return set;
        };
        for role in u.roles.iter().filter_map(|r| self.roles.get(r)) {
            for p in &role.key_permission {
                let t = PermType::try_from(p.perm_type).unwrap_or(PermType::Read);
                let grants = match access {
                    Access::Read => matches!(t, PermType::Read | PermType::Readwrite),
                    Access::Write => matches!(t, PermType::Write | PermType::Readwrite),
                };
                if grants {
                    set.add(&p.key, &p.range_end);
                }
            }
        }
        set.normalize();
        set
    }

    /// Whether `user` may access `[key, range_end)` (etcd's range rules:
    /// empty end = the key alone, `"\0"` = every key from it on).
    pub fn permitted(&self, user: &str, key: &[u8], range_end: &[u8], access: Access) -> bool {
        self.is_admin(user) || self.ranges(user, access).covers(key, range_end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn perm(t: PermType, key: &str, end: &str) -> Permission {
        Permission {
            perm_type: t as i32,
            key: key.into(),
            range_end: end.into(),
        }
    }

    fn store() -> AuthStore {
        let mut s = AuthStore::default();
        s.user_add("root", "h", None).unwrap();
        s.user_add("alice", "h", None).unwrap();
        s.role_add("app").unwrap();
        s.role_grant_permission("app", perm(PermType::Readwrite, "app/", "app0"))
            .unwrap();
        s.role_grant_permission("app", perm(PermType::Read, "cfg", "")).unwrap();
        s.user_grant_role("alice", "app").unwrap();
        s
    }

    #[test]
    fn enable_needs_root_with_root_role() {
        let mut s = AuthStore::default();
        assert_eq!(s.enable(), Err(EtcdError::RootUserNotExist));
        s.user_add("root", "h", None).unwrap();
        assert_eq!(s.enable(), Err(EtcdError::RootRoleNotExist));
        s.user_grant_role("root", ROOT).unwrap();
        let before = s.revision();
        s.enable().unwrap();
        assert!(s.enabled() && s.revision() == before + 1);
        assert_eq!(s.user_delete("root"), Err(EtcdError::InvalidAuthMgmt));
        assert_eq!(s.user_revoke_role("root", "root"), Err(EtcdError::InvalidAuthMgmt));
        s.disable();
        s.user_revoke_role("root", "root").unwrap();
    }

    #[test]
    fn management_errors() {
        let mut s = store();
        assert_eq!(s.user_add("alice", "h", None), Err(EtcdError::UserAlreadyExist));
        assert_eq!(s.user_add("", "h", None), Err(EtcdError::UserEmpty));
        assert_eq!(s.role_add("app"), Err(EtcdError::RoleAlreadyExist));
        assert_eq!(s.user_grant_role("alice", "nope"), Err(EtcdError::RoleNotFound));
        assert_eq!(s.user_grant_role("bob", "app"), Err(EtcdError::UserNotFound));
        assert_eq!(s.user_revoke_role("alice", "other"), Err(EtcdError::RoleNotGranted));
        assert_eq!(
            s.role_revoke_permission("app", b"app/", b""),
            Err(EtcdError::PermissionNotGranted)
        );
        let r = s.revision();
        s.user_grant_role("alice", "app").unwrap();
        assert_eq!(s.revision(), r, "granting a held role changes nothing");
        s.role_delete("app").unwrap();
        assert!(s.user_get("alice").unwrap().is_empty());
    }

    #[test]
    fn permissions() {
        let mut s = store();
        assert!(s.permitted("alice", b"app/x", b"", Access::Write));
        assert!(s.permitted("alice", b"app/", b"app0", Access::Read));
        assert!(
            !s.permitted("alice", b"app/", b"app1", Access::Read),
            "wider than granted"
        );
        assert!(!s.permitted("alice", b"app", b"", Access::Read));
        assert!(s.permitted("alice", b"cfg", b"", Access::Read));
        assert!(!s.permitted("alice", b"cfg", b"", Access::Write));
        assert!(
            !s.permitted("alice", b"cfg", b"cfh", Access::Read),
            "a range beyond the single key"
        );
        assert!(!s.permitted("alice", b"app/", b"\0", Access::Read), "to the end");
        assert!(!s.permitted("bob", b"app/x", b"", Access::Read));
        s.role_grant_permission("app", perm(PermType::Write, "cfg", ""))
            .unwrap();
        assert!(s.permitted("alice", b"cfg", b"", Access::Write));
        s.user_grant_role("root", ROOT).unwrap();
        assert!(s.permitted("root", b"anything", b"\0", Access::Write));
    }

    #[test]
    fn round_trips_through_its_record() {
        let s = store();
        assert_eq!(AuthStore::from_pb(s.to_pb()), s);
    }
}
