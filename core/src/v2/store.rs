//! The v2 key space: a tree of directories and values, each with the
//! index that created and last modified it and an optional expiry time.
//! Applied from the log like everything else, so deterministic: times come
//! from the logged request (the proposer's clock), never from this member.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::oneshot;

use super::error::{Code, V2Error};
use super::history::{History, Waiters, WatchSpec};
use crate::api::concordpb::v2_request::Method;
use crate::api::concordpb::{V2Event, V2Node, V2NodeView, V2Request};
use crate::mvcc::BackendError;

/// Durable v2 nodes, written in the same transaction as the change.
pub trait V2Persist {
    /// Stores (or replaces) one node.
    fn put_v2_node(&mut self, node: &V2Node) -> Result<(), BackendError>;
    /// Forgets the node at `key`.
    fn delete_v2_node(&mut self, key: &str) -> Result<(), BackendError>;
    /// Stores the v2 index.
    fn put_v2_index(&mut self, index: u64) -> Result<(), BackendError>;
    /// Remembers an event (for `waitIndex` after a restart).
    fn put_v2_event(&mut self, event: &V2Event) -> Result<(), BackendError>;
    /// Forgets the event at `index` (it left the history).
    fn delete_v2_event(&mut self, index: u64) -> Result<(), BackendError>;
}

/// What happened to a node, as v2 responses name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Get,
    Set,
    Create,
    Update,
    CompareAndSwap,
    Delete,
    CompareAndDelete,
    Expire,
}

impl Action {
    const ALL: [Action; 8] = [
        Action::Get,
        Action::Set,
        Action::Create,
        Action::Update,
        Action::CompareAndSwap,
        Action::Delete,
        Action::CompareAndDelete,
        Action::Expire,
    ];

    /// The action named `s`.
    pub fn parse(s: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// The `action` field.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Get => "get",
            Action::Set => "set",
            Action::Create => "create",
            Action::Update => "update",
            Action::CompareAndSwap => "compareAndSwap",
            Action::Delete => "delete",
            Action::CompareAndDelete => "compareAndDelete",
            Action::Expire => "expire",
        }
    }
}

/// A node as answered to clients.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeView {
    /// The node's path; empty for the root.
    pub key: String,
    /// A value's content; `None` for directories (and deleted nodes).
    pub value: Option<String>,
    /// Whether it is a directory.
    pub dir: bool,
    /// When it expires (Unix nanoseconds); 0: never.
    pub expiration: i64,
    /// Seconds left, rounded up, when the view was made; 0: permanent.
    pub ttl: i64,
    /// A directory's listing, when asked for.
    pub nodes: Option<Vec<NodeView>>,
    pub modified_index: u64,
    pub created_index: u64,
}

/// One change (or read) of the v2 key space.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub action: Action,
    pub node: NodeView,
    /// The node before the change.
    pub prev_node: Option<NodeView>,
    /// The store's index at the answer (`X-Etcd-Index`).
    pub etcd_index: u64,
}

impl Event {
    /// The index the event happened at.
    pub fn index(&self) -> u64 {
        self.node.modified_index
    }

    /// Whether the change created the node (answered `201 Created`).
    pub fn is_created(&self) -> bool {
        self.action == Action::Create || (self.action == Action::Set && self.prev_node.is_none())
    }
}

impl NodeView {
    fn to_record(&self) -> V2NodeView {
        V2NodeView {
            key: self.key.clone(),
            value: self.value.clone(),
            dir: self.dir,
            expiration: self.expiration,
            ttl: self.ttl,
            modified_index: self.modified_index,
            created_index: self.created_index,
        }
    }

    fn from_record(r: V2NodeView) -> NodeView {
        NodeView {
            key: r.key,
            value: r.value,
            dir: r.dir,
            expiration: r.expiration,
            ttl: r.ttl,
            nodes: None,
            modified_index: r.modified_index,
            created_index: r.created_index,
        }
    }
}

impl Event {
    /// The event as stored.
    pub fn to_record(&self) -> V2Event {
        V2Event {
            action: self.action.as_str().to_string(),
            node: Some(self.node.to_record()),
            prev_node: self.prev_node.as_ref().map(NodeView::to_record),
            etcd_index: self.etcd_index,
        }
    }

    /// A stored event; `None` if it is not one.
    pub fn from_record(r: V2Event) -> Option<Event> {
        Some(Event {
            action: Action::parse(&r.action)?,
            node: NodeView::from_record(r.node?),
            prev_node: r.prev_node.map(NodeView::from_record),
            etcd_index: r.etcd_index,
        })
    }
}

/// Seconds from `now` to `expiration`, rounded up (etcd's rule); 0 if
/// the node is permanent.
pub fn ttl_at(expiration: i64, now: i64) -> i64 {
    if expiration == 0 {
        return 0;
    }
    let left = i128::from(expiration) - i128::from(now);
    let secs = left / 1_000_000_000 + i128::from(left % 1_000_000_000 > 0);
    secs.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// The segments of `path` cleaned as etcd cleans it (`.` dropped, `..`
/// climbing, empty segments ignored).
pub fn segments(path: &str) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for s in path.split('/') {
        match s {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    out
}

fn join(segs: &[&str]) -> String {
    let mut s = String::new();
    for seg in segs {
        s.push('/');
        s.push_str(seg);
    }
    if s.is_empty() {
        s.push('/');
    }
    s
}

/// A node of the tree.
#[derive(Clone, Debug, Default)]
struct Node {
    /// `None` for a directory.
    value: Option<String>,
    children: BTreeMap<String, Node>,
    created: u64,
    modified: u64,
    expiration: i64,
}

impl Node {
    fn dir(index: u64, expiration: i64) -> Node {
        Node {
            value: None,
            children: BTreeMap::new(),
            created: index,
            modified: index,
            expiration,
        }
    }

    fn is_dir(&self) -> bool {
        self.value.is_none()
    }

    /// The node alone (a directory without its listing).
    fn view(&self, key: &str, now: i64) -> NodeView {
        NodeView {
            key: key.to_string(),
            value: self.value.clone(),
            dir: self.is_dir(),
            expiration: self.expiration,
            ttl: ttl_at(self.expiration, now),
            nodes: None,
            modified_index: self.modified,
            created_index: self.created,
        }
    }

    /// The node with its visible children; their children too if
    /// `recursive`.
    fn listing(&self, key: &str, recursive: bool, now: i64) -> NodeView {
        let mut v = self.view(key, now);
        if self.is_dir() {
            let base = key.trim_end_matches('/');
            let nodes: Vec<NodeView> = self
                .children
                .iter()
                .filter(|(name, _)| !name.starts_with('_'))
                .map(|(name, child)| {
                    let k = format!("{base}/{name}");
                    if recursive {
                        child.listing(&k, true, now)
                    } else {
                        child.view(&k, now)
                    }
                })
                .collect();
            v.nodes = (!nodes.is_empty()).then_some(nodes);
        }
        v
    }

    fn record(&self, key: &str) -> V2Node {
        V2Node {
            key: key.to_string(),
            value: self.value.clone(),
            created_index: self.created,
            modified_index: self.modified,
            expiration: self.expiration,
        }
    }

    /// Every node of the subtree (this one included), parents first.
    fn walk<'a>(&'a self, key: String, out: &mut Vec<(String, &'a Node)>) {
        let base = if key == "/" { String::new() } else { key.clone() };
        out.push((key, self));
        for (name, child) in &self.children {
            child.walk(format!("{base}/{name}"), out);
        }
    }
}

/// Why a write did not happen: an answer for the client, or the storage
/// failing (the member must stop).
#[derive(Debug)]
pub enum Failure {
    Refused(V2Error),
    Backend(BackendError),
}

impl From<V2Error> for Failure {
    fn from(e: V2Error) -> Self {
        Failure::Refused(e)
    }
}

impl From<BackendError> for Failure {
    fn from(e: BackendError) -> Self {
        Failure::Backend(e)
    }
}

/// Counters of `/v2/stats/store`.
#[derive(Debug, Default)]
pub struct Stats {
    pub gets_success: AtomicU64,
    pub gets_fail: AtomicU64,
    pub sets_success: AtomicU64,
    pub sets_fail: AtomicU64,
    pub delete_success: AtomicU64,
    pub delete_fail: AtomicU64,
    pub update_success: AtomicU64,
    pub update_fail: AtomicU64,
    pub create_success: AtomicU64,
    pub create_fail: AtomicU64,
    pub compare_and_swap_success: AtomicU64,
    pub compare_and_swap_fail: AtomicU64,
    pub compare_and_delete_success: AtomicU64,
    pub compare_and_delete_fail: AtomicU64,
    pub expire_count: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// What applying a v2 write came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Done: its event.
    Done(Arc<Event>),
    /// Refused (nothing changed): the error for the client.
    Refused(V2Error),
    /// Expired nodes removed, each with its own event.
    Expired(usize),
}

/// What a watch gets: an event already in the history, or a wait.
#[derive(Debug)]
pub enum Watch {
    Ready(Arc<Event>),
    Waiting(oneshot::Receiver<Arc<Event>>),
}

/// The v2 key space of one member.
#[derive(Debug, Default)]
pub struct V2Store {
    root: Node,
    index: u64,
    /// (expiration, key) of every node that expires.
    ttls: BTreeSet<(i64, String)>,
    history: History,
    /// Taken under the state machine's read lock too: a watch registers
    /// while no write can apply.
    waiters: Mutex<Waiters>,
    /// Successes and failures, per kind.
    pub stats: Stats,
}

impl V2Store {
    /// The store's index: one more for every change.
    pub fn index(&self) -> u64 {
        self.index
    }

    /// The earliest expiry of any node, if any expires.
    pub fn next_expiration(&self) -> Option<i64> {
        self.ttls.first().map(|(t, _)| *t)
    }

    /// Long polls waiting now.
    pub fn waiting(&self) -> usize {
        self.waiters.lock().len()
    }

    /// Rebuilds the store from its stored nodes (any order) at `index`,
    /// with the remembered events (oldest first).
    pub fn restore(
        index: u64,
        nodes: impl IntoIterator<Item = V2Node>,
        events: impl IntoIterator<Item = V2Event>,
    ) -> V2Store {
        let mut s = V2Store {
            index,
            ..Default::default()
        };
        for e in events.into_iter().filter_map(Event::from_record) {
            s.history.push(Arc::new(e));
        }
        let mut nodes: Vec<V2Node> = nodes.into_iter().collect();
        nodes.sort_by(|a, b| a.key.cmp(&b.key));
        for n in nodes {
            let segs = segments(&n.key);
            let Some((last, parents)) = segs.split_last() else {
                continue;
            };
            let mut cur = &mut s.root;
            for p in parents {
                cur = cur
                    .children
                    .entry((*p).to_string())
                    .or_insert_with(|| Node::dir(n.created_index, 0));
            }
            let node = cur.children.entry((*last).to_string()).or_default();
            node.value = n.value;
            node.created = n.created_index;
            node.modified = n.modified_index;
            node.expiration = n.expiration;
            if n.expiration != 0 {
                s.ttls.insert((n.expiration, join(&segs)));
            }
        }
        s
    }

    /// Every node, parents first (for snapshots).
    pub fn dump(&self) -> Vec<V2Node> {
        let mut all = Vec::new();
        self.root.walk("/".into(), &mut all);
        all.into_iter().skip(1).map(|(k, n)| n.record(&k)).collect()
    }

    fn find(&self, segs: &[&str]) -> Result<&Node, V2Error> {
        let mut cur = &self.root;
        for (i, s) in segs.iter().enumerate() {
            if !cur.is_dir() {
                return Err(V2Error::new(Code::NotDir, join(&segs[..i]), self.index));
            }
            cur = cur
                .children
                .get(*s)
                .ok_or_else(|| V2Error::new(Code::KeyNotFound, join(&segs[..=i]), self.index))?;
        }
        Ok(cur)
    }

    fn find_mut(&mut self, segs: &[&str]) -> Option<&mut Node> {
        let mut cur = &mut self.root;
        for s in segs {
            cur = cur.children.get_mut(*s)?;
        }
        Some(cur)
    }

    /// `GET`: the node at `path`, a directory with its listing.
    pub fn get(&self, path: &str, recursive: bool, now: i64) -> Result<Event, V2Error> {
        let segs = segments(path);
        let key = if segs.is_empty() { String::new() } else { join(&segs) };
        let r = self.find(&segs).map(|n| Event {
            action: Action::Get,
            node: n.listing(&key, recursive, now),
            prev_node: None,
            etcd_index: self.index,
        });
        bump(if r.is_ok() {
            &self.stats.gets_success
        } else {
            &self.stats.gets_fail
        });
        r
    }

    /// `wait=true`: the first remembered event at or after `spec.since`,
    /// or a wait for the next one.
    pub fn watch(&self, mut spec: WatchSpec) -> Result<Watch, V2Error> {
        spec.key = join(&segments(&spec.key));
        if spec.since == 0 {
            spec.since = self.index + 1;
        }
        if spec.since <= self.index {
            if let Some(e) = self.history.scan(&spec, self.index)? {
                return Ok(Watch::Ready(e));
            }
        }
        let since = spec.since.max(self.index + 1);
        spec.since = since;
        Ok(Watch::Waiting(self.waiters.lock().add(spec, self.index)?))
    }

    /// Applies one logged v2 write.
    pub fn apply(&mut self, w: &mut impl V2Persist, req: &V2Request) -> Result<Outcome, BackendError> {
        let method = req.method();
        let r = match method {
            Method::Set => self.set(w, req),
            Method::Create | Method::CreateInOrder => self.create(w, req),
            Method::Update => self.update(w, req),
            Method::CompareAndSwap => self.compare_and_swap(w, req),
            Method::Delete => self.delete(w, req),
            Method::CompareAndDelete => self.compare_and_delete(w, req),
            Method::Expire => return self.expire(w, req.now).map(Outcome::Expired),
        };
        let s = &self.stats;
        let (ok, fail) = match method {
            Method::Set => (&s.sets_success, &s.sets_fail),
            Method::Update => (&s.update_success, &s.update_fail),
            Method::CompareAndSwap => (&s.compare_and_swap_success, &s.compare_and_swap_fail),
            Method::Delete => (&s.delete_success, &s.delete_fail),
            Method::CompareAndDelete => (&s.compare_and_delete_success, &s.compare_and_delete_fail),
            _ => (&s.create_success, &s.create_fail),
        };
        match r {
            Ok(e) => {
                bump(ok);
                w.put_v2_index(self.index)?;
                Ok(Outcome::Done(self.publish(w, e, req.refresh)?))
            }
            Err(Failure::Refused(e)) => {
                bump(fail);
                Ok(Outcome::Refused(e))
            }
            Err(Failure::Backend(e)) => Err(e),
        }
    }

    /// Remembers `e` and answers the polls waiting for it (a refresh is
    /// neither remembered nor announced, as in etcd).
    fn publish(&mut self, w: &mut impl V2Persist, e: Event, quiet: bool) -> Result<Arc<Event>, BackendError> {
        let e = Arc::new(e);
        if !quiet {
            w.put_v2_event(&e.to_record())?;
            if let Some(gone) = self.history.push(Arc::clone(&e)) {
                w.delete_v2_event(gone.index())?;
            }
            self.waiters.get_mut().notify(&e);
        }
        Ok(e)
    }

    fn root_read_only(&self, segs: &[&str]) -> Result<(), V2Error> {
        if segs.is_empty() {
            return Err(V2Error::new(Code::RootReadOnly, "/", self.index));
        }
        Ok(())
    }

    /// The directories `segs` needs (all but the last), checked: none may
    /// be a value.
    fn check_parents(&self, segs: &[&str]) -> Result<(), V2Error> {
        let mut cur = &self.root;
        for (i, s) in segs[..segs.len() - 1].iter().enumerate() {
            match cur.children.get(*s) {
                None => return Ok(()),
                Some(n) if !n.is_dir() => return Err(V2Error::new(Code::NotDir, join(&segs[..=i]), self.index)),
                Some(n) => cur = n,
            }
        }
        Ok(())
    }

    /// Creates the missing directories above `segs` at `index`.
    fn make_parents(&mut self, w: &mut impl V2Persist, segs: &[&str], index: u64) -> Result<(), BackendError> {
        let mut cur = &mut self.root;
        for (i, s) in segs[..segs.len() - 1].iter().enumerate() {
            if !cur.children.contains_key(*s) {
                let d = Node::dir(index, 0);
                w.put_v2_node(&d.record(&join(&segs[..=i])))?;
                cur.children.insert((*s).to_string(), d);
            }
            cur = cur.children.get_mut(*s).expect("present or just inserted");
        }
        Ok(())
    }

    /// Writes `node` at `segs` (whose parents exist) and its stored copy,
    /// and indexes its TTL; the caller has unindexed what was there.
    fn put_node(&mut self, w: &mut impl V2Persist, segs: &[&str], node: Node) -> Result<(), BackendError> {
        let key = join(segs);
        w.put_v2_node(&node.record(&key))?;
        if node.expiration != 0 {
            self.ttls.insert((node.expiration, key.clone()));
        }
        let (last, parents) = segs.split_last().expect("never the root");
        let parent = self.find_mut(parents).expect("parents exist");
        parent.children.insert((*last).to_string(), node);
        Ok(())
    }

    /// Removes the subtree at `segs`, with its stored nodes and TTLs.
    fn remove(&mut self, w: &mut impl V2Persist, segs: &[&str]) -> Result<Node, BackendError> {
        let (last, parents) = segs.split_last().expect("never the root");
        let parent = self.find_mut(parents).expect("parents exist");
        let node = parent.children.remove(*last).expect("checked present");
        let mut all = Vec::new();
        node.walk(join(segs), &mut all);
        for (k, n) in all {
            w.delete_v2_node(&k)?;
            if n.expiration != 0 {
                self.ttls.remove(&(n.expiration, k));
            }
        }
        Ok(node)
    }

    fn set(&mut self, w: &mut impl V2Persist, req: &V2Request) -> Result<Event, Failure> {
        let segs = segments(&req.path);
        self.root_read_only(&segs)?;
        self.check_parents(&segs)?;
        let existing = match self.find(&segs) {
            Ok(n) => Some(n),
            Err(e) if e.code == Code::KeyNotFound => None,
            Err(e) => return Err(e.into()),
        };
        let mut value = req.value.clone();
        if req.refresh {
            match existing {
                Some(n) => value = n.value.clone().unwrap_or_default(),
                None => return Err(V2Error::new(Code::KeyNotFound, join(&segs), self.index).into()),
            }
        }
        if existing.is_some_and(Node::is_dir) {
            return Err(V2Error::new(Code::NotFile, join(&segs), self.index).into());
        }
        self.write_new(w, &segs, req.dir, value, req, true)
    }

    fn create(&mut self, w: &mut impl V2Persist, req: &V2Request) -> Result<Event, Failure> {
        let mut segs = segments(&req.path);
        let name;
        if req.method() == Method::CreateInOrder {
            if let Ok(n) = self.find(&segs) {
                if !n.is_dir() {
                    return Err(V2Error::new(Code::NotDir, join(&segs), self.index).into());
                }
            }
            name = format!("{:020}", self.index + 1);
            segs.push(&name);
        }
        self.root_read_only(&segs)?;
        self.check_parents(&segs)?;
        match self.find(&segs) {
            Ok(_) => return Err(V2Error::new(Code::NodeExist, join(&segs), self.index).into()),
            Err(e) if e.code == Code::KeyNotFound => {}
            Err(e) => return Err(e.into()),
        }
        self.write_new(w, &segs, req.dir, req.value.clone(), req, false)
    }

    /// Writes a new node (a value, or a directory if `dir`) at `segs`,
    /// replacing a value there if `replace`.
    fn write_new(
        &mut self,
        w: &mut impl V2Persist,
        segs: &[&str],
        dir: bool,
        value: String,
        req: &V2Request,
        replace: bool,
    ) -> Result<Event, Failure> {
        let key = join(segs);
        let prev_node = match self.find(segs) {
            Ok(n) if replace => Some(n.view(&key, req.now)),
            _ => None,
        };
        if prev_node.is_some() {
            self.remove(w, segs)?;
        }
        self.index += 1;
        let index = self.index;
        self.make_parents(w, segs, index)?;
        let node = if dir {
            Node::dir(index, req.expiration)
        } else {
            Node {
                value: Some(value),
                ..Node::dir(index, req.expiration)
            }
        };
        let view = node.view(&key, req.now);
        self.put_node(w, segs, node)?;
        Ok(Event {
            action: if replace { Action::Set } else { Action::Create },
            node: view,
            prev_node,
            etcd_index: index,
        })
    }

    /// Finds the existing node a conditional write or update applies to.
    fn existing(&self, segs: &[&str]) -> Result<&Node, V2Error> {
        self.root_read_only(segs)?;
        self.find(segs)
    }

    fn update(&mut self, w: &mut impl V2Persist, req: &V2Request) -> Result<Event, Failure> {
        let segs = segments(&req.path);
        let n = self.existing(&segs)?;
        if n.is_dir() && !req.value.is_empty() {
            return Err(V2Error::new(Code::NotFile, join(&segs), self.index).into());
        }
        self.modify(w, &segs, req, Action::Update)
    }

    /// Why a compare failed, as etcd words it; `None` if it holds.
    fn compare(&self, n: &Node, req: &V2Request) -> Option<String> {
        let value = n.value.as_deref().unwrap_or_default();
        let value_ok = req.prev_value.as_deref().is_none_or(|p| p.is_empty() || p == value);
        let index_ok = req.prev_index == 0 || req.prev_index == n.modified;
        let pv = req.prev_value.as_deref().unwrap_or_default();
        match (value_ok, index_ok) {
            (true, true) => None,
            (true, false) => Some(format!("[{} != {}]", req.prev_index, n.modified)),
            (false, true) => Some(format!("[{pv} != {value}]")),
            (false, false) => Some(format!("[{pv} != {value}] [{} != {}]", req.prev_index, n.modified)),
        }
    }

    /// Checks a conditional write's target: an existing value whose value
    /// and index match what `req` expects.
    fn check_compare(&self, segs: &[&str], req: &V2Request) -> Result<(), V2Error> {
        let n = self.existing(segs)?;
        if n.is_dir() {
            return Err(V2Error::new(Code::NotFile, join(segs), self.index));
        }
        match self.compare(n, req) {
            Some(cause) => Err(V2Error::new(Code::TestFailed, cause, self.index)),
            None => Ok(()),
        }
    }

    fn compare_and_swap(&mut self, w: &mut impl V2Persist, req: &V2Request) -> Result<Event, Failure> {
        let segs = segments(&req.path);
        self.check_compare(&segs, req)?;
        self.modify(w, &segs, req, Action::CompareAndSwap)
    }

    /// Changes an existing node in place: its value (unless a directory or
    /// a refresh) and its expiry.
    fn modify(
        &mut self,
        w: &mut impl V2Persist,
        segs: &[&str],
        req: &V2Request,
        action: Action,
    ) -> Result<Event, Failure> {
        let key = join(segs);
        let old = self.find(segs)?;
        let prev_node = old.view(&key, req.now);
        let mut node = Node {
            children: BTreeMap::new(),
            ..old.clone()
        };
        self.index += 1;
        node.expiration = req.expiration;
        if !node.is_dir() {
            node.modified = self.index;
            if !req.refresh {
                node.value = Some(req.value.clone());
            }
        }
        let mut view = node.view(&key, req.now);
        // etcd answers a directory's update at the new index but leaves the
        // directory's own modifiedIndex as it was.
        view.modified_index = self.index;
        let target = self.find_mut(segs).expect("found above");
        node.children = std::mem::take(&mut target.children);
        if prev_node.expiration != 0 {
            self.ttls.remove(&(prev_node.expiration, key.clone()));
        }
        self.put_node(w, segs, node)?;
        Ok(Event {
            action,
            node: view,
            prev_node: Some(prev_node),
            etcd_index: self.index,
        })
    }

    fn delete(&mut self, w: &mut impl V2Persist, req: &V2Request) -> Result<Event, Failure> {
        let segs = segments(&req.path);
        let n = self.existing(&segs)?;
        if n.is_dir() {
            if !req.dir && !req.recursive {
                return Err(V2Error::new(Code::NotFile, join(&segs), self.index).into());
            }
            if !req.recursive && !n.children.is_empty() {
                return Err(V2Error::new(Code::DirNotEmpty, join(&segs), self.index).into());
            }
        }
        self.delete_node(w, &segs, Action::Delete, req.now)
    }

    fn compare_and_delete(&mut self, w: &mut impl V2Persist, req: &V2Request) -> Result<Event, Failure> {
        let segs = segments(&req.path);
        self.check_compare(&segs, req)?;
        self.delete_node(w, &segs, Action::CompareAndDelete, req.now)
    }

    fn delete_node(
        &mut self,
        w: &mut impl V2Persist,
        segs: &[&str],
        action: Action,
        now: i64,
    ) -> Result<Event, Failure> {
        let key = join(segs);
        let old = self.remove(w, segs)?;
        self.index += 1;
        Ok(Event {
            action,
            node: NodeView {
                key: key.clone(),
                dir: old.is_dir(),
                modified_index: self.index,
                created_index: old.created,
                ..Default::default()
            },
            prev_node: Some(old.view(&key, now)),
            etcd_index: self.index,
        })
    }

    /// Removes every node expired at `now`, oldest expiry first, each its
    /// own `expire` event. Returns how many went.
    pub fn expire(&mut self, w: &mut impl V2Persist, now: i64) -> Result<usize, BackendError> {
        let mut n = 0;
        while let Some((at, key)) = self.ttls.first().cloned() {
            if at > now {
                break;
            }
            self.ttls.pop_first();
            let segs = segments(&key);
            let holds = self.find(&segs).is_ok_and(|node| node.expiration == at);
            if !holds {
                continue;
            }
            let e = match self.delete_node(w, &segs, Action::Expire, now) {
                Ok(e) => e,
                Err(Failure::Backend(e)) => return Err(e),
                Err(Failure::Refused(_)) => continue,
            };
            bump(&self.stats.expire_count);
            self.publish(w, e, false)?;
            n += 1;
        }
        if n > 0 {
            w.put_v2_index(self.index)?;
        }
        Ok(n)
    }
}
