//! `Cluster`: the member list and membership changes (add, also as a
//! learner; remove; promote; update). Changes go through raft as
//! configuration changes; a member started without `--initial-cluster`
//! (the local single-member path) cannot change its membership.

use super::{Caller, EtcdService};
use crate::api::concordpb::log_request::Request as LogOp;
use crate::api::concordpb::Member as StoredMember;
use crate::api::error::EtcdError;
use crate::api::etcdserverpb::{
    MemberAddRequest, MemberAddResponse, MemberPromoteRequest, MemberPromoteResponse, MemberRemoveRequest,
    MemberRemoveResponse, MemberUpdateRequest, MemberUpdateResponse, MoveLeaderRequest, MoveLeaderResponse,
};
use crate::raft::MemberChange;
use crate::state_machine::WriteResponse;

fn new_member_id() -> u64 {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).expect("the OS provides randomness");
    (u64::from_le_bytes(b) >> 1).max(1)
}

impl EtcdService {
    /// `Cluster.MemberAdd` (root only while auth is on).
    pub async fn member_add(&self, caller: &Caller, req: MemberAddRequest) -> Result<MemberAddResponse, EtcdError> {
        self.check_admin(caller)?;
        if req.peer_ur_ls.is_empty() {
            return Err(EtcdError::InvalidRequest(
                "etcdserver: member peer URLs are not provided".into(),
            ));
        }
        let member = StoredMember {
            id: new_member_id(),
            name: String::new(),
            peer_urls: req.peer_ur_ls.clone(),
            client_urls: Vec::new(),
            is_learner: req.is_learner,
        };
        self.node.change_members(MemberChange::Add(member.clone())).await?;
        let list = self.member_list();
        Ok(MemberAddResponse {
            header: list.header,
            member: list.members.iter().find(|m| m.id == member.id).cloned(),
            members: list.members,
        })
    }

    /// `Cluster.MemberRemove` (root only while auth is on).
    pub async fn member_remove(
        &self,
        caller: &Caller,
        req: MemberRemoveRequest,
    ) -> Result<MemberRemoveResponse, EtcdError> {
        self.check_admin(caller)?;
        self.node.change_members(MemberChange::Remove(req.id)).await?;
        let list = self.member_list();
        Ok(MemberRemoveResponse {
            header: list.header,
            members: list.members,
        })
    }

    /// `Cluster.MemberPromote` (root only while auth is on): a learner
    /// that has caught up with the leader becomes a voter.
    pub async fn member_promote(
        &self,
        caller: &Caller,
        req: MemberPromoteRequest,
    ) -> Result<MemberPromoteResponse, EtcdError> {
        self.check_admin(caller)?;
        self.node.change_members(MemberChange::Promote(req.id)).await?;
        let list = self.member_list();
        Ok(MemberPromoteResponse {
            header: list.header,
            members: list.members,
        })
    }

    /// `Cluster.MemberUpdate` (root only while auth is on): new peer URLs,
    /// recorded through the log; every member sends to them from then on.
    pub async fn member_update(
        &self,
        caller: &Caller,
        req: MemberUpdateRequest,
    ) -> Result<MemberUpdateResponse, EtcdError> {
        let checked = self.check_admin(caller)?;
        let mut m = self
            .state
            .with(|sm| sm.members.get(&req.id).cloned())
            .ok_or(EtcdError::MemberNotFound)?;
        m.peer_urls = req.peer_ur_ls;
        match self.propose(LogOp::MemberUpdate(m), checked).await? {
            WriteResponse::Member => {}
            other => return Err(super::unexpected(&other)),
        }
        let list = self.member_list();
        Ok(MemberUpdateResponse {
            header: list.header,
            members: list.members,
        })
    }

    /// `Maintenance.MoveLeader` (root only while auth is on): must be sent
    /// to the leader; answers once `target` leads.
    pub async fn move_leader(&self, caller: &Caller, req: MoveLeaderRequest) -> Result<MoveLeaderResponse, EtcdError> {
        self.check_admin(caller)?;
        let me = self.state.member_id;
        if !self.node.is_replicated() {
            return if req.target_id == me {
                Ok(MoveLeaderResponse {
                    header: self.header(self.state.current_revision()),
                })
            } else {
                Err(EtcdError::BadLeaderTransferee)
            };
        }
        if !self.node.is_leader() {
            return Err(EtcdError::NotLeader);
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        if req.target_id != me {
            if !self.node.transfer_leader(req.target_id).await {
                return Err(EtcdError::BadLeaderTransferee);
            }
            while self.state.leader() != req.target_id {
                if std::time::Instant::now() > deadline {
                    return Err(EtcdError::LeaderTransferTimeout);
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
        Ok(MoveLeaderResponse {
            header: self.header(self.state.current_revision()),
        })
    }
}
