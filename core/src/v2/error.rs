//! etcd's v2 errors: a numeric code, its fixed message, a cause, and the
//! store index at the time. Clients (python-etcd, etcdctl's v2 mode) match
//! on the code, so the codes, messages and HTTP statuses are etcd's.

/// An etcd v2 error code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Code {
    /// 100
    KeyNotFound,
    /// 101
    TestFailed,
    /// 102
    NotFile,
    /// 104
    NotDir,
    /// 105
    NodeExist,
    /// 107
    RootReadOnly,
    /// 108
    DirNotEmpty,
    /// 110
    Unauthorized,
    /// 201
    PrevValueRequired,
    /// 202
    TtlNaN,
    /// 203
    IndexNaN,
    /// 209
    InvalidField,
    /// 210
    InvalidForm,
    /// 211
    RefreshValue,
    /// 212
    RefreshTtlRequired,
    /// 300
    RaftInternal,
    /// 301
    LeaderElect,
    /// 400
    WatcherCleared,
    /// 401
    EventIndexCleared,
}

impl Code {
    /// The number clients see as `errorCode`.
    pub fn number(self) -> u32 {
        match self {
            Code::KeyNotFound => 100,
            Code::TestFailed => 101,
            Code::NotFile => 102,
            Code::NotDir => 104,
            Code::NodeExist => 105,
            Code::RootReadOnly => 107,
            Code::DirNotEmpty => 108,
            Code::Unauthorized => 110,
            Code::PrevValueRequired => 201,
            Code::TtlNaN => 202,
            Code::IndexNaN => 203,
            Code::InvalidField => 209,
            Code::InvalidForm => 210,
            Code::RefreshValue => 211,
            Code::RefreshTtlRequired => 212,
            Code::RaftInternal => 300,
            Code::LeaderElect => 301,
            Code::WatcherCleared => 400,
            Code::EventIndexCleared => 401,
        }
    }

    /// etcd's fixed message for the code.
    pub fn message(self) -> &'static str {
        match self {
            Code::KeyNotFound => "Key not found",
            Code::TestFailed => "Compare failed",
            Code::NotFile => "Not a file",
            Code::NotDir => "Not a directory",
            Code::NodeExist => "Key already exists",
            Code::RootReadOnly => "Root is read only",
            Code::DirNotEmpty => "Directory not empty",
            Code::Unauthorized => "The request requires user authentication",
            Code::PrevValueRequired => "PrevValue is Required in POST form",
            Code::TtlNaN => "The given TTL in POST form is not a number",
            Code::IndexNaN => "The given index in POST form is not a number",
            Code::InvalidField => "Invalid field",
            Code::InvalidForm => "Invalid POST form",
            Code::RefreshValue => "Value provided on refresh",
            Code::RefreshTtlRequired => "A TTL must be provided on refresh",
            Code::RaftInternal => "Raft Internal Error",
            Code::LeaderElect => "During Leader Election",
            Code::WatcherCleared => "watcher is cleared due to etcd recovery",
            Code::EventIndexCleared => "The event in requested index is outdated and cleared",
        }
    }

    /// The HTTP status etcd answers the code with.
    pub fn http_status(self) -> u16 {
        match self {
            Code::KeyNotFound => 404,
            Code::NotFile | Code::DirNotEmpty => 403,
            Code::Unauthorized => 401,
            Code::TestFailed | Code::NodeExist => 412,
            Code::RaftInternal | Code::LeaderElect => 500,
            _ => 400,
        }
    }
}

/// A v2 error as answered to the client.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{} ({cause}) [{index}]", code.message())]
pub struct V2Error {
    /// What went wrong.
    pub code: Code,
    /// The key, the comparison or the field concerned.
    pub cause: String,
    /// The store's index when it happened (0 for a malformed request).
    pub index: u64,
}

impl V2Error {
    /// An error about the store at `index`.
    pub fn new(code: Code, cause: impl Into<String>, index: u64) -> Self {
        V2Error {
            code,
            cause: cause.into(),
            index,
        }
    }

    /// An error about the request itself (etcd reports index 0).
    pub fn request(code: Code, cause: impl Into<String>) -> Self {
        V2Error::new(code, cause, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_statuses_and_messages_are_etcds() {
        assert_eq!(Code::KeyNotFound.number(), 100);
        assert_eq!(Code::KeyNotFound.http_status(), 404);
        assert_eq!(Code::NodeExist.http_status(), 412);
        assert_eq!(Code::NotDir.http_status(), 400);
        assert_eq!(Code::DirNotEmpty.http_status(), 403);
        assert_eq!(Code::EventIndexCleared.number(), 401);
        assert_eq!(Code::EventIndexCleared.http_status(), 400);
        assert_eq!(Code::TestFailed.message(), "Compare failed");
    }
}
