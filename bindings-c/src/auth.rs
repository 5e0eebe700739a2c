//! Auth administration: enable/disable, users, roles and their
//! permissions (each call needs the root role while auth is on).

use std::ffi::{c_char, CString};

use concord_core::client::PermissionType;

use crate::client::ConcordClient;
use crate::error::{ConcordError, ConcordStatus};
use crate::guard::{bytes, free, guard, handle, opt_str, out, Failure};

/// A permission's kind, as etcd numbers them.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConcordPermission {
    Read = 0,
    Write = 1,
    Readwrite = 2,
}

impl From<ConcordPermission> for PermissionType {
    fn from(p: ConcordPermission) -> PermissionType {
        match p {
            ConcordPermission::Read => PermissionType::Read,
            ConcordPermission::Write => PermissionType::Write,
            ConcordPermission::Readwrite => PermissionType::Readwrite,
        }
    }
}

/// A list of NUL-terminated strings (names). Free with `concord_strings_free`.
#[repr(C)]
pub struct ConcordStrings {
    pub items: *const *const c_char,
    pub len: usize,
    storage: *mut ConcordStringsStorage,
}

/// The strings behind a `ConcordStrings` (not for the caller).
pub struct ConcordStringsStorage {
    _strings: Vec<CString>,
    pointers: Vec<*const c_char>,
}

/// One permission of a role: `[key, range_end)` (`range_end_len` 0: the key alone).
#[repr(C)]
pub struct ConcordPermissionEntry {
    pub permission: ConcordPermission,
    pub key: *const u8,
    pub key_len: usize,
    pub range_end: *const u8,
    pub range_end_len: usize,
}

/// A role's permissions. Free with `concord_permissions_free`.
#[repr(C)]
pub struct ConcordPermissions {
    pub items: *const ConcordPermissionEntry,
    pub len: usize,
    storage: *mut ConcordPermissionsStorage,
}

/// The bytes behind a `ConcordPermissions` (not for the caller).
pub struct ConcordPermissionsStorage {
    _bytes: Vec<Vec<u8>>,
    entries: Vec<ConcordPermissionEntry>,
}

fn required(ptr: *const c_char, what: &'static str) -> Result<String, Failure> {
    opt_str(ptr, what)?.ok_or(Failure::Null(what))
}

fn strings(list: Vec<String>) -> *mut ConcordStrings {
    let owned: Vec<CString> = list
        .into_iter()
        .map(|s| CString::new(s.replace('\0', "")).unwrap_or_default())
        .collect();
    // A CString's buffer stays put when the CString moves.
    let pointers = owned.iter().map(|s| s.as_ptr()).collect();
    let storage = Box::into_raw(Box::new(ConcordStringsStorage {
        _strings: owned,
        pointers,
    }));
    // SAFETY: just made from a Box, freed only by concord_strings_free.
    let pointers = unsafe { &(*storage).pointers };
    Box::into_raw(Box::new(ConcordStrings {
        items: pointers.as_ptr(),
        len: pointers.len(),
        storage,
    }))
}

/// Runs one admin call that takes only names.
fn admin<F>(client: *const ConcordClient, err: *mut *mut ConcordError, call: F) -> ConcordStatus
where
    F: FnOnce(&concord_core::client::BlockingClient) -> Result<(), Failure>,
{
    guard(err, || call(&handle(client, "client")?.inner))
}

/// Turns authentication on (a `root` user with the `root` role must exist).
#[no_mangle]
pub extern "C" fn concord_auth_enable(client: *const ConcordClient, err: *mut *mut ConcordError) -> ConcordStatus {
    guard(err, || {
        let c = &handle(client, "client")?.inner;
        c.block_on(c.client().auth_enable())?;
        Ok(())
    })
}

/// Turns authentication off.
#[no_mangle]
pub extern "C" fn concord_auth_disable(client: *const ConcordClient, err: *mut *mut ConcordError) -> ConcordStatus {
    guard(err, || {
        let c = &handle(client, "client")?.inner;
        c.block_on(c.client().auth_disable())?;
        Ok(())
    })
}

/// Adds user `name` with `password`.
#[no_mangle]
pub extern "C" fn concord_user_add(
    client: *const ConcordClient,
    name: *const c_char,
    password: *const c_char,
    err: *mut *mut ConcordError,
) -> ConcordStatus {
    admin(client, err, |c| {
        let name = required(name, "name")?;
        let password = required(password, "password")?;
        c.block_on(c.client().user_add(&name, &password))?;
        Ok(())
    })
}

/// Deletes user `name`.
#[no_mangle]
pub extern "C" fn concord_user_delete(
    client: *const ConcordClient,
    name: *const c_char,
    err: *mut *mut ConcordError,
) -> ConcordStatus {
    admin(client, err, |c| {
        let name = required(name, "name")?;
        c.block_on(c.client().user_delete(&name))?;
        Ok(())
    })
}

/// Sets user `name`'s password.
#[no_mangle]
pub extern "C" fn concord_user_change_password(
    client: *const ConcordClient,
    name: *const c_char,
    password: *const c_char,
    err: *mut *mut ConcordError,
) -> ConcordStatus {
    admin(client, err, |c| {
        let name = required(name, "name")?;
        let password = required(password, "password")?;
        c.block_on(c.client().user_change_password(&name, &password))?;
        Ok(())
    })
}

/// Grants `role` to `user`.
#[no_mangle]
pub extern "C" fn concord_user_grant_role(
    client: *const ConcordClient,
    user: *const c_char,
    role: *const c_char,
    err: *mut *mut ConcordError,
) -> ConcordStatus {
    admin(client, err, |c| {
        let user = required(user, "user")?;
        let role = required(role, "role")?;
        c.block_on(c.client().user_grant_role(&user, &role))?;
        Ok(())
    })
}

/// Takes `role` from `user`.
#[no_mangle]
pub extern "C" fn concord_user_revoke_role(
    client: *const ConcordClient,
    user: *const c_char,
    role: *const c_char,
    err: *mut *mut ConcordError,
) -> ConcordStatus {
    admin(client, err, |c| {
        let user = required(user, "user")?;
        let role = required(role, "role")?;
        c.block_on(c.client().user_revoke_role(&user, &role))?;
        Ok(())
    })
}

/// Adds role `name`.
#[no_mangle]
pub extern "C" fn concord_role_add(
    client: *const ConcordClient,
    name: *const c_char,
    err: *mut *mut ConcordError,
) -> ConcordStatus {
    admin(client, err, |c| {
        let name = required(name, "name")?;
        c.block_on(c.client().role_add(&name))?;
        Ok(())
    })
}

/// Deletes role `name`.
#[no_mangle]
pub extern "C" fn concord_role_delete(
    client: *const ConcordClient,
    name: *const c_char,
    err: *mut *mut ConcordError,
) -> ConcordStatus {
    admin(client, err, |c| {
        let name = required(name, "name")?;
        c.block_on(c.client().role_delete(&name))?;
        Ok(())
    })
}

/// Grants `role` `permission` on `key` (with a `range_end`, on `[key,
/// range_end)`; `range_end_len` 0: the key alone).
#[no_mangle]
pub extern "C" fn concord_role_grant_permission(
    client: *const ConcordClient,
    role: *const c_char,
    permission: ConcordPermission,
    key: *const u8,
    key_len: usize,
    range_end: *const u8,
    range_end_len: usize,
    err: *mut *mut ConcordError,
) -> ConcordStatus {
    guard(err, || {
        let c = &handle(client, "client")?.inner;
        let role = required(role, "role")?;
        let key = bytes(key, key_len, "key")?;
        let end = bytes(range_end, range_end_len, "range_end")?;
        c.block_on(c.client().role_grant_permission(&role, permission.into(), key, end))?;
        Ok(())
    })
}

/// Takes back the permission `role` has on `key` / `[key, range_end)`.
#[no_mangle]
pub extern "C" fn concord_role_revoke_permission(
    client: *const ConcordClient,
    role: *const c_char,
    key: *const u8,
    key_len: usize,
    range_end: *const u8,
    range_end_len: usize,
    err: *mut *mut ConcordError,
) -> ConcordStatus {
    guard(err, || {
        let c = &handle(client, "client")?.inner;
        let role = required(role, "role")?;
        let key = bytes(key, key_len, "key")?;
        let end = bytes(range_end, range_end_len, "range_end")?;
        c.block_on(c.client().role_revoke_permission(&role, key, end))?;
        Ok(())
    })
}

/// The users' names.
#[no_mangle]
pub extern "C" fn concord_user_list(
    client: *const ConcordClient,
    users: *mut *mut ConcordStrings,
    err: *mut *mut ConcordError,
) -> ConcordStatus {
    guard(err, || {
        let c = &handle(client, "client")?.inner;
        let r = c.block_on(c.client().user_list())?;
        out(users, strings(r.users), "users")
    })
}

/// The roles user `name` has.
#[no_mangle]
pub extern "C" fn concord_user_get(
    client: *const ConcordClient,
    name: *const c_char,
    roles: *mut *mut ConcordStrings,
    err: *mut *mut ConcordError,
) -> ConcordStatus {
    guard(err, || {
        let c = &handle(client, "client")?.inner;
        let name = required(name, "name")?;
        let r = c.block_on(c.client().user_get(&name))?;
        out(roles, strings(r.roles), "roles")
    })
}

/// The roles' names.
#[no_mangle]
pub extern "C" fn concord_role_list(
    client: *const ConcordClient,
    roles: *mut *mut ConcordStrings,
    err: *mut *mut ConcordError,
) -> ConcordStatus {
    guard(err, || {
        let c = &handle(client, "client")?.inner;
        let r = c.block_on(c.client().role_list())?;
        out(roles, strings(r.roles), "roles")
    })
}

/// The permissions of role `name`.
#[no_mangle]
pub extern "C" fn concord_role_get(
    client: *const ConcordClient,
    name: *const c_char,
    permissions: *mut *mut ConcordPermissions,
    err: *mut *mut ConcordError,
) -> ConcordStatus {
    guard(err, || {
        let c = &handle(client, "client")?.inner;
        let name = required(name, "name")?;
        let r = c.block_on(c.client().role_get(&name))?;
        let mut owned = Vec::new();
        let mut entries = Vec::new();
        for p in r.perm {
            let permission = match p.perm_type {
                0 => ConcordPermission::Read,
                1 => ConcordPermission::Write,
                _ => ConcordPermission::Readwrite,
            };
            // A Vec's buffer stays put when the Vec moves.
            entries.push(ConcordPermissionEntry {
                permission,
                key: p.key.as_ptr(),
                key_len: p.key.len(),
                range_end: p.range_end.as_ptr(),
                range_end_len: p.range_end.len(),
            });
            owned.push(p.key);
            owned.push(p.range_end);
        }
        let storage = Box::into_raw(Box::new(ConcordPermissionsStorage { _bytes: owned, entries }));
        // SAFETY: just made from a Box, freed only by concord_permissions_free.
        let entries = unsafe { &(*storage).entries };
        let list = ConcordPermissions {
            items: entries.as_ptr(),
            len: entries.len(),
            storage,
        };
        out(permissions, Box::into_raw(Box::new(list)), "permissions")
    })
}

/// Frees a list of strings (NULL is fine).
#[no_mangle]
pub extern "C" fn concord_strings_free(list: *mut ConcordStrings) {
    let _ = guard(std::ptr::null_mut(), || {
        if !list.is_null() {
            // SAFETY: made by this module with Box::into_raw, freed once.
            let l = unsafe { Box::from_raw(list) };
            free(l.storage);
        }
        Ok(())
    });
}

/// Frees a list of permissions (NULL is fine).
#[no_mangle]
pub extern "C" fn concord_permissions_free(list: *mut ConcordPermissions) {
    let _ = guard(std::ptr::null_mut(), || {
        if !list.is_null() {
            // SAFETY: made by concord_role_get with Box::into_raw, freed once.
            let l = unsafe { Box::from_raw(list) };
            free(l.storage);
        }
        Ok(())
    });
}
