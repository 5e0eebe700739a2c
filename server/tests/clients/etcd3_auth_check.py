"""Drives a Concord server with auth enabled through the PyPI etcd3 client
(gRPC), unchanged: refused without credentials and with a wrong password,
allowed with the right one, within the user's permissions only.
Usage: python3 etcd3_auth_check.py HOST PORT CA_FILE (TLS; alice/alicepw
may read and write prefix app/). Exits non-zero on the first mismatch.
TLS because grpcio sends call credentials (the token) only on secure
channels."""

import sys

import etcd3
import grpc

host, port, ca = sys.argv[1], int(sys.argv[2]), sys.argv[3]


def code_of(f):
    try:
        f()
    except grpc.RpcError as e:
        return e.code(), e.details()
    except etcd3.exceptions.Etcd3Exception as e:
        return type(e).__name__, str(e)
    return None


anon = etcd3.client(host=host, port=port, ca_cert=ca)
got = code_of(lambda: anon.put("app/x", "1"))
assert got == (grpc.StatusCode.INVALID_ARGUMENT, "etcdserver: user name is empty"), got

got = code_of(lambda: etcd3.client(host=host, port=port, ca_cert=ca, user="alice", password="wrong"))
assert got is not None and "authentication failed" in str(got), got

alice = etcd3.client(host=host, port=port, ca_cert=ca, user="alice", password="alicepw")
alice.put("app/x", "1")
value, meta = alice.get("app/x")
assert value == b"1", value
got = code_of(lambda: alice.put("other", "1"))
assert got == (grpc.StatusCode.PERMISSION_DENIED, "etcdserver: permission denied"), got
got = code_of(lambda: alice.get("other"))
assert got == (grpc.StatusCode.PERMISSION_DENIED, "etcdserver: permission denied"), got
print("etcd3 auth: ok")
