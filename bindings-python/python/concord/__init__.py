"""Concord: a native client of Concord and etcd (sync and asyncio), and the
Concord server itself, embedded.

    import concord
    c = concord.Client(["127.0.0.1:2379"])
    c.put("app/mode", "on")
    for event in c.watch("app/", prefix=True):
        print(event.type, event.kv.key, event.kv.value)

Works against Concord and etcd 3.4+ (over etcd's JSON gateway): watches
resume after a broken connection without losing or repeating an event,
leases are kept alive across member restarts, tokens are renewed.
"""

from ._native import (
    Observation,
    Lock,
    Election,
    AsyncLock,
    AsyncElection,
    AsyncAuth,
    AsyncClient,
    AsyncLease,
    Auth,
    Client,
    Compare,
    CompareTarget,
    DeleteResult,
    Event,
    KeyValue,
    Lease,
    Member,
    Op,
    PendingLease,
    PutResult,
    RangeResult,
    Server,
    Status,
    TxnResult,
    Watch,
)
from .cluster import Cluster
from .errors import (
    AuthenticationFailedError,
    CompactedError,
    Error,
    FutureRevisionError,
    IndeterminateWriteError,
    InvalidArgumentError,
    InvalidTokenError,
    LeaseLostError,
    LeaseNotFoundError,
    PermissionDeniedError,
    TimeoutError,
    TooManyRequestsError,
    UnavailableError,
    WatchCanceledError,
)

__all__ = [
    "Observation",
    "Lock",
    "Election",
    "AsyncLock",
    "AsyncElection",
    "AsyncAuth",
    "AsyncClient",
    "AsyncLease",
    "Auth",
    "Client",
    "Cluster",
    "Compare",
    "CompareTarget",
    "DeleteResult",
    "Event",
    "KeyValue",
    "Lease",
    "Member",
    "Op",
    "PendingLease",
    "PutResult",
    "RangeResult",
    "Server",
    "Status",
    "TxnResult",
    "Watch",
    "AuthenticationFailedError",
    "CompactedError",
    "Error",
    "FutureRevisionError",
    "IndeterminateWriteError",
    "InvalidArgumentError",
    "InvalidTokenError",
    "LeaseLostError",
    "LeaseNotFoundError",
    "PermissionDeniedError",
    "TimeoutError",
    "TooManyRequestsError",
    "UnavailableError",
    "WatchCanceledError",
]
