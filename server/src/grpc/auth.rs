//! `etcdserverpb.Auth`.

use std::sync::Arc;

use concord_core::api::etcdserverpb::*;
use concord_core::service::EtcdService;
use tonic::{Request, Response, Status};

use super::{caller, status};

pub struct Auth(pub Arc<EtcdService>);

/// One Auth method: the caller from the request, then core.
macro_rules! call {
    ($self:ident, $r:ident, |$svc:ident, $c:ident, $req:ident| $body:expr) => {{
        let $c = caller(&$r);
        let $req = $r.into_inner();
        let $svc = &$self.0;
        $body.map(Response::new).map_err(status)
    }};
}

#[tonic::async_trait]
impl crate::pb::etcdserverpb::auth_server::Auth for Auth {
    async fn auth_enable(&self, r: Request<AuthEnableRequest>) -> Result<Response<AuthEnableResponse>, Status> {
        call!(self, r, |s, c, _req| s.auth_enable(&c).await)
    }

    async fn auth_disable(&self, r: Request<AuthDisableRequest>) -> Result<Response<AuthDisableResponse>, Status> {
        call!(self, r, |s, c, _req| s.auth_disable(&c).await)
    }

    async fn auth_status(&self, _r: Request<AuthStatusRequest>) -> Result<Response<AuthStatusResponse>, Status> {
        Ok(Response::new(self.0.auth_status()))
    }

    async fn authenticate(&self, r: Request<AuthenticateRequest>) -> Result<Response<AuthenticateResponse>, Status> {
        call!(self, r, |s, c, req| s.authenticate(&c, req).await)
    }

    async fn user_add(&self, r: Request<AuthUserAddRequest>) -> Result<Response<AuthUserAddResponse>, Status> {
        call!(self, r, |s, c, req| s.user_add(&c, req).await)
    }

    async fn user_get(&self, r: Request<AuthUserGetRequest>) -> Result<Response<AuthUserGetResponse>, Status> {
        call!(self, r, |s, c, req| s.user_get(&c, &req))
    }

    async fn user_list(&self, r: Request<AuthUserListRequest>) -> Result<Response<AuthUserListResponse>, Status> {
        call!(self, r, |s, c, _req| s.user_list(&c))
    }

    async fn user_delete(&self, r: Request<AuthUserDeleteRequest>) -> Result<Response<AuthUserDeleteResponse>, Status> {
        call!(self, r, |s, c, req| s.user_delete(&c, req).await)
    }

    async fn user_change_password(
        &self,
        r: Request<AuthUserChangePasswordRequest>,
    ) -> Result<Response<AuthUserChangePasswordResponse>, Status> {
        call!(self, r, |s, c, req| s.user_change_password(&c, req).await)
    }

    async fn user_grant_role(
        &self,
        r: Request<AuthUserGrantRoleRequest>,
    ) -> Result<Response<AuthUserGrantRoleResponse>, Status> {
        call!(self, r, |s, c, req| s.user_grant_role(&c, req).await)
    }

    async fn user_revoke_role(
        &self,
        r: Request<AuthUserRevokeRoleRequest>,
    ) -> Result<Response<AuthUserRevokeRoleResponse>, Status> {
        call!(self, r, |s, c, req| s.user_revoke_role(&c, req).await)
    }

    async fn role_add(&self, r: Request<AuthRoleAddRequest>) -> Result<Response<AuthRoleAddResponse>, Status> {
        call!(self, r, |s, c, req| s.role_add(&c, req).await)
    }

    async fn role_get(&self, r: Request<AuthRoleGetRequest>) -> Result<Response<AuthRoleGetResponse>, Status> {
        call!(self, r, |s, c, req| s.role_get(&c, &req))
    }

    async fn role_list(&self, r: Request<AuthRoleListRequest>) -> Result<Response<AuthRoleListResponse>, Status> {
        call!(self, r, |s, c, _req| s.role_list(&c))
    }

    async fn role_delete(&self, r: Request<AuthRoleDeleteRequest>) -> Result<Response<AuthRoleDeleteResponse>, Status> {
        call!(self, r, |s, c, req| s.role_delete(&c, req).await)
    }

    async fn role_grant_permission(
        &self,
        r: Request<AuthRoleGrantPermissionRequest>,
    ) -> Result<Response<AuthRoleGrantPermissionResponse>, Status> {
        call!(self, r, |s, c, req| s.role_grant_permission(&c, req).await)
    }

    async fn role_revoke_permission(
        &self,
        r: Request<AuthRoleRevokePermissionRequest>,
    ) -> Result<Response<AuthRoleRevokePermissionResponse>, Status> {
        call!(self, r, |s, c, req| s.role_revoke_permission(&c, req).await)
    }
}
