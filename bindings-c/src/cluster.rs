//! Status and members of the cluster.

use std::ffi::{c_char, CString};

use crate::client::ConcordClient;
use crate::error::{ConcordError, ConcordStatus};
use crate::guard::{guard, handle, out};

/// What `Maintenance.Status` says of the member that answered.
#[repr(C)]
pub struct ConcordStatusInfo {
    /// The server's version, NUL-terminated.
    pub version: [c_char; 32],
    pub db_size: i64,
    pub db_size_in_use: i64,
    /// The leader's member ID (0: none).
    pub leader: u64,
    pub member_id: u64,
    pub cluster_id: u64,
    pub raft_index: u64,
    pub raft_term: u64,
    /// The store's current revision.
    pub revision: i64,
    pub is_learner: bool,
}

/// Fills `info` with the status of the member that answers.
#[no_mangle]
pub extern "C" fn concord_server_status(
    client: *const ConcordClient,
    info: *mut ConcordStatusInfo,
    err: *mut *mut ConcordError,
) -> ConcordStatus {
    guard(err, || {
        let c = &handle(client, "client")?.inner;
        let r = c.block_on(c.client().status())?;
        let h = r.header.unwrap_or_default();
        let mut version = [0 as c_char; 32];
        for (dst, src) in version.iter_mut().zip(r.version.bytes().take(31)) {
            *dst = src as c_char;
        }
        let s = ConcordStatusInfo {
            version,
            db_size: r.db_size,
            db_size_in_use: r.db_size_in_use,
            leader: r.leader,
            member_id: h.member_id,
            cluster_id: h.cluster_id,
            raft_index: r.raft_index,
            raft_term: r.raft_term,
            revision: h.revision,
            is_learner: r.is_learner,
        };
        out(info, s, "info")
    })
}

/// A member. Strings are NUL-terminated and live as long as the list.
#[repr(C)]
pub struct ConcordMember {
    pub id: u64,
    /// Empty until the member has started.
    pub name: *const c_char,
    pub client_urls: *const *const c_char,
    pub client_urls_len: usize,
    pub peer_urls: *const *const c_char,
    pub peer_urls_len: usize,
    pub is_learner: bool,
}

/// The members of the cluster. Free with `concord_members_free`.
#[repr(C)]
pub struct ConcordMembers {
    pub members: *const ConcordMember,
    pub len: usize,
    storage: *mut ConcordMembersStorage,
}

/// The strings behind a `ConcordMembers` (not for the caller).
pub struct ConcordMembersStorage {
    _strings: Vec<CString>,
    _pointers: Vec<Vec<*const c_char>>,
    views: Vec<ConcordMember>,
}

fn cstring(s: String) -> CString {
    CString::new(s.replace('\0', "")).unwrap_or_default()
}

/// Lists the cluster's members.
#[no_mangle]
pub extern "C" fn concord_member_list(
    client: *const ConcordClient,
    members: *mut *mut ConcordMembers,
    err: *mut *mut ConcordError,
) -> ConcordStatus {
    guard(err, || {
        let c = &handle(client, "client")?.inner;
        let list = c.block_on(c.client().member_list())?.members;
        let mut strings = Vec::new();
        let mut pointers: Vec<Vec<*const c_char>> = Vec::new();
        let mut views = Vec::new();
        for m in list {
            // CString and Vec buffers stay put when their owners move.
            let name = cstring(m.name);
            let clients: Vec<CString> = m.client_ur_ls.into_iter().map(cstring).collect();
            let peers: Vec<CString> = m.peer_ur_ls.into_iter().map(cstring).collect();
            let cp: Vec<*const c_char> = clients.iter().map(|s| s.as_ptr()).collect();
            let pp: Vec<*const c_char> = peers.iter().map(|s| s.as_ptr()).collect();
            views.push(ConcordMember {
                id: m.id,
                name: name.as_ptr(),
                client_urls: cp.as_ptr(),
                client_urls_len: cp.len(),
                peer_urls: pp.as_ptr(),
                peer_urls_len: pp.len(),
                is_learner: m.is_learner,
            });
            strings.push(name);
            strings.extend(clients);
            strings.extend(peers);
            pointers.push(cp);
            pointers.push(pp);
        }
        let storage = Box::into_raw(Box::new(ConcordMembersStorage {
            _strings: strings,
            _pointers: pointers,
            views,
        }));
        // SAFETY: just made from a Box, freed only by concord_members_free.
        let views = unsafe { &(*storage).views };
        let result = ConcordMembers {
            members: views.as_ptr(),
            len: views.len(),
            storage,
        };
        out(members, Box::into_raw(Box::new(result)), "members")
    })
}

/// Frees a member list (NULL is fine).
#[no_mangle]
pub extern "C" fn concord_members_free(members: *mut ConcordMembers) {
    let _ = guard(std::ptr::null_mut(), || {
        if !members.is_null() {
            // SAFETY: made by concord_member_list with Box::into_raw, freed once.
            let m = unsafe { Box::from_raw(members) };
            crate::guard::free(m.storage);
        }
        Ok(())
    });
}
