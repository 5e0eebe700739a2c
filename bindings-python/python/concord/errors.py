"""Concord's exceptions: one class per kind of failure.

Every exception keeps etcd's gRPC status code (``.code``, an ``int``) and
the server's message (``.message``), so code written against etcd's error
strings keeps working.
"""

from __future__ import annotations

import builtins
from typing import Optional

__all__ = [
    "Error",
    "CompactedError",
    "FutureRevisionError",
    "LeaseNotFoundError",
    "LeaseLostError",
    "PermissionDeniedError",
    "AuthenticationFailedError",
    "InvalidTokenError",
    "TooManyRequestsError",
    "UnavailableError",
    "IndeterminateWriteError",
    "TimeoutError",
    "InvalidArgumentError",
    "WatchCanceledError",
]


class Error(Exception):
    """Any error from Concord or etcd."""

    #: gRPC status code (e.g. 11 for OUT_OF_RANGE).
    code: int
    #: The message as the server (or the client) gave it.
    message: str

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class CompactedError(Error):
    """The revision asked for has been compacted away.

    ``compact_revision`` is the store's compaction revision when the server
    said it (a watch that cannot resume), else None.
    """

    compact_revision: Optional[int] = None


class FutureRevisionError(Error):
    """A read at a revision the store has not reached."""


class LeaseNotFoundError(Error):
    """The lease does not exist (expired or revoked)."""


class LeaseLostError(LeaseNotFoundError):
    """A kept-alive lease expired or was revoked: its keys are gone."""

    lease_id: Optional[int] = None


class PermissionDeniedError(Error):
    """The user lacks the permission."""


class AuthenticationFailedError(Error):
    """Wrong user name or password."""


class InvalidTokenError(Error):
    """The auth token is missing, invalid or stale."""


class TooManyRequestsError(Error):
    """The server sheds load, refuses the size, or is out of space."""


class UnavailableError(Error):
    """No member could serve the request."""


class IndeterminateWriteError(UnavailableError):
    """The connection broke after a write was sent: it may have been applied."""


class TimeoutError(Error, builtins.TimeoutError):
    """The call's deadline passed. Also a builtin ``TimeoutError``."""


class InvalidArgumentError(Error, ValueError):
    """The request was refused as invalid. Also a ``ValueError``."""


class WatchCanceledError(Error):
    """The server canceled a watch."""
