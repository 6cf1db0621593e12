"""The front door of a real headless engine (a subprocess), through real sockets."""

from __future__ import annotations

import json
import os
import socket
import stat
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from slob_tui.node.attach_protocol import (
    MAX_CLIENT_FRAME,
    PROTOCOL_VERSION,
    Command,
    EventFrame,
    Hello,
    ProtocolError,
    Refused,
    Result,
    SnapshotFrame,
    Welcome,
    decode_client,
    decode_server,
    encode,
)
from tests.attach.helpers import (
    attach_sync,
    engine_log,
    next_snapshot,
    raw_client,
    spawn_engine,
    stop_engine,
    stored_candles,
    wait_for_socket,
)

API_KEY = "AKTESTKEY0123456789"
API_SECRET = "sEcReT-0123456789-abcdefghijklmnop"
ATTACH_TOKEN = "attach-token-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Engine:
    def __init__(self, workdir: Path, db: Path, socket_path: Path, tcp: int, metrics: int):
        self.workdir, self.db, self.socket, self.tcp, self.metrics = (
            workdir, db, socket_path, tcp, metrics)  # fmt: skip


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    workdir = tmp_path_factory.mktemp("engine")
    db = workdir / "slob.db"
    tcp, metrics = free_port(), free_port()
    env = {"ALPACA_API_KEY": API_KEY, "ALPACA_API_SECRET": API_SECRET,
           "SLOB_ATTACH_PORT": str(tcp), "SLOB_ATTACH_TOKEN": ATTACH_TOKEN}  # fmt: skip
    proc = spawn_engine(workdir, db, "--no-ui", "--speed", "600", "--metrics-port", str(metrics),
                        env=env)  # fmt: skip
    try:
        path = wait_for_socket(db, proc)
        yield Engine(workdir, db, path, tcp, metrics)
        assert proc.poll() is None, "the engine died during the tests"
    finally:
        stop_engine(proc)
    text = engine_log(workdir)
    assert "Traceback" not in text
    for secret in (API_KEY, API_SECRET, ATTACH_TOKEN):
        assert secret not in text


def command(ws, cid: int, name: str, **args: object) -> Result:  # noqa: ANN001
    ws.send(encode(Command(cid, name, dict(args))))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        frame = decode_server(ws.recv(timeout=10))
        if isinstance(frame, Result) and frame.id == cid:
            return frame
    raise AssertionError("no result")


def test_the_socket_is_private_to_the_engines_user(engine: Engine) -> None:
    st_ = engine.socket.stat()
    assert stat.S_ISSOCK(st_.st_mode)
    assert stat.S_IMODE(st_.st_mode) == 0o600
    assert st_.st_uid == os.getuid()
    if os.getuid() == 0:  # root may act as another user: prove that user is kept out
        pid = os.fork()
        if pid == 0:
            code = 3
            try:
                os.setgid(65534)
                os.setuid(65534)
                s = socket.socket(socket.AF_UNIX)
                try:
                    s.connect(str(engine.socket))
                    code = 1
                except PermissionError:
                    code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0


def test_snapshot_then_contiguous_events_then_results(engine: Engine) -> None:
    ws, welcome = attach_sync(engine.socket, client="t")
    with ws:
        assert welcome.v == PROTOCOL_VERSION and not welcome.control
        assert welcome.engine.db == str(engine.db) and welcome.engine.mode == "DEMO"
        first = next_snapshot(ws)
        assert first.snap.seq == first.seq and first.snap.candles
        eseq, events, later = first.eseq, 0, None
        while events < 20 or later is None:
            frame = decode_server(ws.recv(timeout=10))
            if isinstance(frame, EventFrame):
                assert frame.eseq == eseq + 1  # no gap on a client that reads
                eseq, events = frame.eseq, events + 1
            elif isinstance(frame, SnapshotFrame):
                assert frame.seq >= first.seq and frame.eseq == eseq
                later = frame
        assert later.seq > first.seq
        health = command(ws, 1, "health")
        assert health.ok and health.value["attach"]["clients"] >= 1
        deadline = time.monotonic() + 15  # the store writes its queue every half second
        older = command(ws, 2, "candles", symbol="NQ", start_ns=None, end_ns=None)
        while older.ok and not older.value and time.monotonic() < deadline:
            time.sleep(0.2)
            older = command(ws, 2, "candles", symbol="NQ", start_ns=None, end_ns=None)
        assert older.ok and older.value and older.value[0]["symbol"] == "NQ"
        bad = command(ws, 3, "candles", symbol=5)
        assert not bad.ok and "symbol" in bad.error
        unknown = command(ws, 4, "launch_missiles")
        assert not unknown.ok and "unknown command" in unknown.error


def test_read_only_unless_control_is_asked_for(engine: Engine) -> None:
    ws, _ = attach_sync(engine.socket, client="ro")
    with ws:
        refused = command(ws, 1, "pause")
        assert not refused.ok and "read-only" in refused.error
        assert command(ws, 2, "kill_reason").ok
    ws, welcome = attach_sync(engine.socket, client="rw", control=True, events=False)
    with ws:
        assert welcome.control
        assert command(ws, 1, "pause").ok
        deadline = time.monotonic() + 10
        while not next_snapshot(ws).snap.paused:
            assert time.monotonic() < deadline
        assert command(ws, 2, "resume").ok
        while next_snapshot(ws).snap.paused:
            assert time.monotonic() < deadline


def test_wrong_version_is_refused_with_a_reason(engine: Engine) -> None:
    with raw_client(engine.socket) as ws:
        ws.send(encode(Hello(PROTOCOL_VERSION + 1)))
        frame = decode_server(ws.recv(timeout=5))
        assert isinstance(frame, Refused) and "version" in frame.reason


def test_tcp_needs_the_token_and_no_secret_crosses_the_wire(engine: Engine) -> None:
    url = f"ws://127.0.0.1:{engine.tcp}/"
    with connect(url) as ws:
        ws.send(encode(Hello(PROTOCOL_VERSION, token="wrong-token-of-some-length")))
        assert isinstance(decode_server(ws.recv(timeout=5)), Refused)
    with connect(url) as ws:
        ws.send(encode(Hello(PROTOCOL_VERSION)))  # no token at all
        assert isinstance(decode_server(ws.recv(timeout=5)), Refused)
    with connect(url, max_size=None) as ws:
        ws.send(encode(Hello(PROTOCOL_VERSION, token=ATTACH_TOKEN, control=True)))
        raw: list[bytes | str] = [ws.recv(timeout=5)]
        assert isinstance(decode_server(raw[0]), Welcome)
        ws.send(encode(Command(1, "health")))
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            raw.append(ws.recv(timeout=5))
    wire = "".join(r if isinstance(r, str) else r.decode() for r in raw)
    assert '"t":"result"' in wire and '"t":"snapshot"' in wire
    for secret in (API_KEY, API_SECRET, ATTACH_TOKEN):
        assert secret not in wire


def _witness_alive(ws, seq: int) -> int:  # noqa: ANN001
    """The witness keeps getting snapshots, with seq moving: the engine was not disturbed."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        frame = decode_server(ws.recv(timeout=10))
        if isinstance(frame, SnapshotFrame) and frame.seq > seq:
            return frame.seq
    raise AssertionError("the witness stopped receiving")


def _valid(raw: bytes | str) -> bool:
    try:
        decode_client(raw)
    except ProtocolError:
        return False
    return True


garbage = st.one_of(
    st.binary(min_size=1, max_size=200),
    st.text(min_size=1, max_size=200),
    st.dictionaries(st.sampled_from(["t", "v", "id", "name", "args", "token"]),
                    st.one_of(st.none(), st.integers(), st.text(max_size=5),
                              st.sampled_from(["hello", "cmd", "resync", "welcome", "snapshot"])),
                    max_size=4).map(json.dumps),
)  # fmt: skip


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(raw=garbage, after_hello=st.booleans())
def test_garbage_closes_that_client_only(
    engine: Engine, raw: bytes | str, after_hello: bool
) -> None:
    assume(not _valid(raw))
    witness, _ = attach_sync(engine.socket, client="witness", events=False)
    with witness:
        seq = next_snapshot(witness).seq
        with raw_client(engine.socket) as ws:
            if after_hello:
                ws.send(encode(Hello(PROTOCOL_VERSION, events=False)))
            ws.send(raw)
            with pytest.raises(ConnectionClosed) as closed:
                for _ in range(1000):
                    ws.recv(timeout=10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code in (1002, 1003)
        _witness_alive(witness, seq)


def test_oversized_and_out_of_protocol_frames_close_that_client_only(engine: Engine) -> None:
    witness, _ = attach_sync(engine.socket, client="witness", events=False)
    with witness:
        seq = next_snapshot(witness).seq
        for extra in (b"x" * (MAX_CLIENT_FRAME + 1), encode(Hello(PROTOCOL_VERSION))):
            ws, _ = attach_sync(engine.socket, events=False)
            with ws:
                ws.send(extra)
                with pytest.raises(ConnectionClosed) as closed:
                    for _ in range(1000):
                        ws.recv(timeout=10)
                assert closed.value.rcvd is not None
                assert closed.value.rcvd.code == (1009 if len(extra) > MAX_CLIENT_FRAME else 1002)
            seq = _witness_alive(witness, seq)


def test_a_client_that_stops_reading_is_resynced_and_never_slows_the_engine(
    engine: Engine,
) -> None:
    stalled = socket.socket(socket.AF_UNIX)
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.connect(str(engine.socket))
    stalled.sendall(b"GET /attach HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
                    b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                    b"Sec-WebSocket-Version: 13\r\n\r\n")  # fmt: skip
    hello = encode(Hello(PROTOCOL_VERSION, client="stalled"))
    stalled.sendall(bytes([0x81, 0x80 | len(hello)]) + b"\0\0\0\0" + hello)  # masked text frame
    try:
        witness, _ = attach_sync(engine.socket, client="witness")
        with witness:
            candles0, seq = stored_candles(engine.db), next_snapshot(witness).seq
            deadline, cid = time.monotonic() + 60, 0
            while True:  # the stalled client's outbox overflows meanwhile
                cid += 1
                attach = command(witness, cid, "health").value["attach"]
                if attach["resyncs"] >= 1:
                    break
                assert time.monotonic() < deadline, "the stalled client was never resynced"
                time.sleep(0.5)
            assert attach["clients"] >= 2
            _witness_alive(witness, seq)
            assert stored_candles(engine.db) > candles0  # the engine kept storing
        stalled.setblocking(False)
        drained = b""
        try:
            while chunk := stalled.recv(1 << 20):
                drained += chunk
        except BlockingIOError:
            pass
        assert drained  # it got what fitted in its buffers, never a backlog beyond them
    finally:
        stalled.close()


def test_metrics_and_healthz_count_attached_clients(engine: Engine) -> None:
    clients = [attach_sync(engine.socket, client=f"m{i}", events=False)[0] for i in range(3)]
    try:
        time.sleep(0.3)
        base = f"http://127.0.0.1:{engine.metrics}"
        metrics = urllib.request.urlopen(f"{base}/metrics", timeout=10).read().decode()
        line = next(x for x in metrics.splitlines() if x.startswith("slob_attached_clients "))
        assert float(line.split()[1]) >= 3
        health = json.loads(urllib.request.urlopen(f"{base}/healthz", timeout=10).read())
        assert health["attached_clients"] >= 3
    finally:
        for ws in clients:
            ws.close()
