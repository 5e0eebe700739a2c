//! `client.auth`: users, roles, permissions, enable/disable (etcd's Auth
//! service), blocking (`Auth`) and asyncio (`AsyncAuth`).

use concord_core::client::{self as core, permission_type, prefix_end, Error};
use pyo3::prelude::*;

use crate::dual::dual_methods;
use crate::runtime::Core;
use crate::runtime::Dual;
use crate::types::Bytes;

/// Users, roles and permissions (blocking).
#[pyclass(module = "concord", frozen)]
pub struct Auth {
    pub core: Core,
}

/// Users, roles and permissions (asyncio).
#[pyclass(module = "concord", frozen)]
pub struct AsyncAuth {
    pub core: Core,
}

impl Dual for Auth {
    type Ctx = core::Client;
    fn core(&self) -> &Core {
        &self.core
    }
    fn ctx(&self) -> core::Client {
        self.core.client.clone()
    }
}

impl Dual for AsyncAuth {
    type Ctx = core::Client;
    fn core(&self) -> &Core {
        &self.core
    }
    fn ctx(&self) -> core::Client {
        self.core.client.clone()
    }
}

/// The end of a permission's key range.
fn perm_end(key: &[u8], range_end: Option<Bytes>, prefix: bool) -> Result<Vec<u8>, Error> {
    match (range_end, prefix) {
        (Some(_), true) => Err(Error::InvalidArgument("give range_end or prefix, not both".into())),
        (Some(end), false) => Ok(end.0),
        (None, true) => Ok(prefix_end(key)),
        (None, false) => Ok(Vec::new()),
    }
}

dual_methods! { sync Auth, async AsyncAuth;
    /// Turns authentication on (needs a `root` user with the `root` role).
    #[pyo3(signature = ())]
    fn enable(c) -> () {
        c.auth_enable().await.map(|_| ())
    }
    /// Turns authentication off.
    #[pyo3(signature = ())]
    fn disable(c) -> () {
        c.auth_disable().await.map(|_| ())
    }
    /// Adds a user.
    #[pyo3(signature = (name, password))]
    fn user_add(c, name: String, password: String) -> () {
        c.user_add(&name, &password).await.map(|_| ())
    }
    /// Deletes a user.
    #[pyo3(signature = (name))]
    fn user_delete(c, name: String) -> () {
        c.user_delete(&name).await.map(|_| ())
    }
    /// Changes a user's password.
    #[pyo3(signature = (name, password))]
    fn user_change_password(c, name: String, password: String) -> () {
        c.user_change_password(&name, &password).await.map(|_| ())
    }
    /// Every user's name.
    #[pyo3(signature = ())]
    fn user_list(c) -> Vec<String> {
        Ok(c.user_list().await?.users)
    }
    /// A user's roles.
    #[pyo3(signature = (name))]
    fn user_get(c, name: String) -> Vec<String> {
        Ok(c.user_get(&name).await?.roles)
    }
    /// Gives a user a role.
    #[pyo3(signature = (user, role))]
    fn user_grant_role(c, user: String, role: String) -> () {
        c.user_grant_role(&user, &role).await.map(|_| ())
    }
    /// Takes a role from a user.
    #[pyo3(signature = (user, role))]
    fn user_revoke_role(c, user: String, role: String) -> () {
        c.user_revoke_role(&user, &role).await.map(|_| ())
    }
    /// Adds a role.
    #[pyo3(signature = (name))]
    fn role_add(c, name: String) -> () {
        c.role_add(&name).await.map(|_| ())
    }
    /// Deletes a role.
    #[pyo3(signature = (name))]
    fn role_delete(c, name: String) -> () {
        c.role_delete(&name).await.map(|_| ())
    }
    /// Every role's name.
    #[pyo3(signature = ())]
    fn role_list(c) -> Vec<String> {
        Ok(c.role_list().await?.roles)
    }
    /// A role's permissions as `(perm, key, range_end)` tuples, `perm`
    /// being `"read"`, `"write"` or `"readwrite"`.
    #[pyo3(signature = (name))]
    fn role_get(c, name: String) -> Vec<(String, Vec<u8>, Vec<u8>)> {
        let perms = c.role_get(&name).await?.perm;
        Ok(perms
            .into_iter()
            .map(|p| {
                let name = match p.perm_type {
                    0 => "read",
                    1 => "write",
                    _ => "readwrite",
                };
                (name.to_string(), p.key, p.range_end)
            })
            .collect())
    }
    /// Grants `role` the permission `perm` (`"read"`, `"write"` or
    /// `"readwrite"`) on `key`, a range (`range_end`) or a prefix.
    #[pyo3(signature = (role, perm, key, *, range_end=None, prefix=false))]
    fn role_grant_permission(c, role: String, perm: String, key: Bytes, range_end: Option<Bytes>, prefix: bool) -> () {
        let ty = permission_type(&perm)
            .ok_or_else(|| Error::InvalidArgument(format!("permission {perm:?}: use read, write or readwrite")))?;
        let end = perm_end(&key.0, range_end, prefix)?;
        c.role_grant_permission(&role, ty, key.0, end).await.map(|_| ())
    }
    /// Takes back the permission `role` has on `key` (a range, a prefix).
    #[pyo3(signature = (role, key, *, range_end=None, prefix=false))]
    fn role_revoke_permission(c, role: String, key: Bytes, range_end: Option<Bytes>, prefix: bool) -> () {
        let end = perm_end(&key.0, range_end, prefix)?;
        c.role_revoke_permission(&role, key.0, end).await.map(|_| ())
    }
}
