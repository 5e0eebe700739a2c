//! The Auth service: users, roles, permissions, enable/disable. Each call
//! is etcd's request over `POST /v3/auth/*`; changes are writes (repeated
//! on another member only if certainly unsent), lists and gets are reads.

use super::transport::Retry;
use super::{Client, Error};
use crate::api::authpb::permission::Type as PermType;
use crate::api::authpb::Permission;
use crate::api::etcdserverpb::{
    AuthDisableRequest, AuthDisableResponse, AuthEnableRequest, AuthEnableResponse, AuthRoleAddRequest,
    AuthRoleAddResponse, AuthRoleDeleteRequest, AuthRoleDeleteResponse, AuthRoleGetRequest, AuthRoleGetResponse,
    AuthRoleGrantPermissionRequest, AuthRoleGrantPermissionResponse, AuthRoleListRequest, AuthRoleListResponse,
    AuthRoleRevokePermissionRequest, AuthRoleRevokePermissionResponse, AuthUserAddRequest, AuthUserAddResponse,
    AuthUserChangePasswordRequest, AuthUserChangePasswordResponse, AuthUserDeleteRequest, AuthUserDeleteResponse,
    AuthUserGetRequest, AuthUserGetResponse, AuthUserGrantRoleRequest, AuthUserGrantRoleResponse, AuthUserListRequest,
    AuthUserListResponse, AuthUserRevokeRoleRequest, AuthUserRevokeRoleResponse,
};

pub use crate::api::authpb::permission::Type as PermissionType;

impl Client {
    /// Turns authentication on (a `root` user with the `root` role must exist).
    pub async fn auth_enable(&self) -> Result<AuthEnableResponse, Error> {
        self.unary("/v3/auth/enable", &AuthEnableRequest {}, Retry::IfUnsent)
            .await
    }
    /// Turns authentication off.
    pub async fn auth_disable(&self) -> Result<AuthDisableResponse, Error> {
        self.unary("/v3/auth/disable", &AuthDisableRequest {}, Retry::IfUnsent)
            .await
    }
    /// Adds a user with a password.
    pub async fn user_add(&self, name: &str, password: &str) -> Result<AuthUserAddResponse, Error> {
        let req = AuthUserAddRequest {
            name: name.into(),
            password: password.into(),
            ..Default::default()
        };
        self.unary("/v3/auth/user/add", &req, Retry::IfUnsent).await
    }
    /// A user and its roles.
    pub async fn user_get(&self, name: &str) -> Result<AuthUserGetResponse, Error> {
        let req = AuthUserGetRequest { name: name.into() };
        self.unary("/v3/auth/user/get", &req, Retry::Always).await
    }
    /// Every user's name.
    pub async fn user_list(&self) -> Result<AuthUserListResponse, Error> {
        self.unary("/v3/auth/user/list", &AuthUserListRequest {}, Retry::Always)
            .await
    }
    /// Deletes a user.
    pub async fn user_delete(&self, name: &str) -> Result<AuthUserDeleteResponse, Error> {
        let req = AuthUserDeleteRequest { name: name.into() };
        self.unary("/v3/auth/user/delete", &req, Retry::IfUnsent).await
    }
    /// Changes a user's password.
    pub async fn user_change_password(
        &self,
        name: &str,
        password: &str,
    ) -> Result<AuthUserChangePasswordResponse, Error> {
        let req = AuthUserChangePasswordRequest {
            name: name.into(),
            password: password.into(),
            ..Default::default()
        };
        self.unary("/v3/auth/user/changepw", &req, Retry::IfUnsent).await
    }
    /// Gives a user a role.
    pub async fn user_grant_role(&self, user: &str, role: &str) -> Result<AuthUserGrantRoleResponse, Error> {
        let req = AuthUserGrantRoleRequest {
            user: user.into(),
            role: role.into(),
        };
        self.unary("/v3/auth/user/grant", &req, Retry::IfUnsent).await
    }
    /// Takes a role from a user.
    pub async fn user_revoke_role(&self, user: &str, role: &str) -> Result<AuthUserRevokeRoleResponse, Error> {
        let req = AuthUserRevokeRoleRequest {
            name: user.into(),
            role: role.into(),
        };
        self.unary("/v3/auth/user/revoke", &req, Retry::IfUnsent).await
    }
    /// Adds a role.
    pub async fn role_add(&self, name: &str) -> Result<AuthRoleAddResponse, Error> {
        let req = AuthRoleAddRequest { name: name.into() };
        self.unary("/v3/auth/role/add", &req, Retry::IfUnsent).await
    }
    /// A role's permissions.
    pub async fn role_get(&self, name: &str) -> Result<AuthRoleGetResponse, Error> {
        let req = AuthRoleGetRequest { role: name.into() };
        self.unary("/v3/auth/role/get", &req, Retry::Always).await
    }
    /// Every role's name.
    pub async fn role_list(&self) -> Result<AuthRoleListResponse, Error> {
        self.unary("/v3/auth/role/list", &AuthRoleListRequest {}, Retry::Always)
            .await
    }
    /// Deletes a role.
    pub async fn role_delete(&self, name: &str) -> Result<AuthRoleDeleteResponse, Error> {
        let req = AuthRoleDeleteRequest { role: name.into() };
        self.unary("/v3/auth/role/delete", &req, Retry::IfUnsent).await
    }
    /// Grants a role `perm` on `key` (with `range_end`, on `[key, range_end)`;
    /// see [`prefix_end`](super::prefix_end) for a prefix).
    pub async fn role_grant_permission(
        &self,
        role: &str,
        perm: PermissionType,
        key: Vec<u8>,
        range_end: Vec<u8>,
    ) -> Result<AuthRoleGrantPermissionResponse, Error> {
        let req = AuthRoleGrantPermissionRequest {
            name: role.into(),
            perm: Some(Permission {
                perm_type: perm as i32,
                key,
                range_end,
            }),
        };
        self.unary("/v3/auth/role/grant", &req, Retry::IfUnsent).await
    }
    /// Takes back the permission a role has on `key` / `[key, range_end)`.
    pub async fn role_revoke_permission(
        &self,
        role: &str,
        key: Vec<u8>,
        range_end: Vec<u8>,
    ) -> Result<AuthRoleRevokePermissionResponse, Error> {
        let req = AuthRoleRevokePermissionRequest {
            role: role.into(),
            key,
            range_end,
        };
        self.unary("/v3/auth/role/revoke", &req, Retry::IfUnsent).await
    }
}

/// The permission named `read`, `write` or `readwrite` (any case).
pub fn permission_type(name: &str) -> Option<PermType> {
    match name.to_ascii_lowercase().as_str() {
        "read" => Some(PermType::Read),
        "write" => Some(PermType::Write),
        "readwrite" | "read_write" => Some(PermType::Readwrite),
        _ => None,
    }
}
