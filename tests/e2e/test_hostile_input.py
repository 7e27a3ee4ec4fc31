"""Hostile clients against the real server (uvicorn + h11, SQLite): slow bodies, deep JSON,
oversized streamed bodies, token guessing.

What uvicorn 0.54 offers, and does not: ``--timeout-keep-alive`` (5 s) closes idle
connections *between* requests only; ``--limit-concurrency`` sheds load with 503;
``h11_max_incomplete_event_size`` caps the size of a request head. Nothing times out a
client that opened a connection and sends nothing, a request head sent byte by byte, or a
body that stalls: such a connection is held for as long as the client likes. The event
loop is not blocked by it (the body is read asynchronously, the handlers run in the
thread pool only once it has arrived), so other clients are served; the cost is one
socket and one file descriptor per stalled connection (the limit here is ``ulimit -n``).

Header injection in export filenames is covered with the exports; SQL injection,
oversized declared bodies and schema fuzzing in ``test_bad_input`` and
``test_schemathesis``.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.conftest import build_sqlite_url
from tests.e2e.server import running_service

TOKEN = "hostile-facilitator-token"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
STALL_LIMIT_S = 8


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = build_sqlite_url(tmp_path_factory.mktemp("hostile") / "ledger.sqlite3")
    with running_service(url, TOKEN) as served:
        yield served


def address(base: str) -> tuple[str, int]:
    host_port = base.split("//", 1)[1].split("/", 1)[0]
    host, port = host_port.rsplit(":", 1)
    return host, int(port)


def request_head(body_length: int) -> bytes:
    return (
        "POST /v1/people HTTP/1.1\r\nHost: test\r\n"
        f"Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {body_length}\r\n\r\n"
    ).encode()


def test_slow_request_bodies_do_not_hold_up_other_clients(base: str) -> None:
    body = b'{"name": "Langzaam"}'
    slow = [socket.create_connection(address(base)) for _ in range(20)]
    try:
        for sock in slow:
            sock.sendall(request_head(len(body)) + body[:3])
        started = time.monotonic()
        with httpx.Client(timeout=5) as http:
            answers = [http.get(f"{base}/people/me", headers=ADMIN) for _ in range(10)]
        assert all(a.status_code == 200 for a in answers)
        assert time.monotonic() - started < 5, "ten reads beside twenty stalled uploads"
        for n in range(3, len(body)):  # the slow clients do finish, a byte at a time
            for sock in slow:
                sock.sendall(body[n : n + 1])
            time.sleep(0.02)
        for sock in slow:
            sock.settimeout(10)
            assert sock.recv(200).startswith(b"HTTP/1.1 201")
    finally:
        for sock in slow:
            sock.close()


def test_a_stalled_request_body_is_cut_off(base: str) -> None:
    """A body that stops arriving must not hold its connection for ever (408 or closed).

    Fails today: neither uvicorn nor the app bounds the time a body may take.
    """
    with socket.create_connection(address(base)) as sock:
        sock.sendall(request_head(100) + b'{"name": ')
        sock.settimeout(STALL_LIMIT_S)
        started = time.monotonic()
        try:
            answer = sock.recv(200)
        except TimeoutError:
            pytest.fail(f"a stalled body still held its connection after {STALL_LIMIT_S} s")
    assert answer == b"" or answer.startswith(b"HTTP/1.1 408"), answer
    assert time.monotonic() - started < STALL_LIMIT_S


def test_deeply_nested_json_is_refused_and_the_server_keeps_serving(base: str) -> None:
    depth = 30_000  # 60 kB: under the body limit, far over any parser's recursion limit
    deep = b'{"name": "x", "contact": ' + b"[" * depth + b"]" * depth + b"}"
    with httpx.Client(timeout=10) as http:
        answer = http.post(
            f"{base}/people",
            content=deep,
            headers={**ADMIN, "Content-Type": "application/json"},
        )
        assert 400 <= answer.status_code < 500, answer.text
        assert answer.json()["error"] in ("malformed_json", "invalid_input")
        assert http.get(f"{base}/people/me", headers=ADMIN).status_code == 200


def test_an_oversized_body_streamed_without_a_length_is_cut_off_with_413(base: str) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"name": "'
        for _ in range(200):
            yield b"x" * 1024
        yield b'"}'

    with httpx.Client(timeout=10) as http:
        answer = http.post(
            f"{base}/people",
            content=chunks(),
            headers={**ADMIN, "Content-Type": "application/json"},
        )
    assert answer.status_code == 413, answer.text
    assert answer.json()["error"] == "body_too_large"


def test_token_guessing_is_cut_off_with_429_after_20_failures_a_minute(base: str) -> None:
    """The last test here: it locks 127.0.0.1 out for a minute.

    Constant time: a presented token is hashed (SHA-256) and looked up by its digest, then
    compared with ``hmac.compare_digest``. The lookup's timing could at most reveal a
    prefix of a stored *digest*, which does not help to find a token (256 random bits,
    preimage resistance). The guessing itself is what the limiter bounds: 20 failures per
    minute per client address, then 429 with Retry-After, for valid tokens too (the
    address is locked, not the token). Per worker process, though: with W workers an
    address gets up to 20 x W guesses a minute, and a restarted worker forgets.
    """
    with httpx.Client(timeout=5) as http:

        def guess(n: int) -> int:
            bad = {"Authorization": f"Bearer guess-{n:04d}-{'x' * 39}"}
            return http.get(f"{base}/people/me", headers=bad).status_code

        with ThreadPoolExecutor(4) as pool:
            codes = list(pool.map(guess, range(20)))
        assert codes == [401] * 20
        locked = http.get(f"{base}/people/me", headers={"Authorization": "Bearer guess-more"})
        assert locked.status_code == 429
        assert locked.json()["error"] == "too_many_failed_attempts"
        assert 0 < int(locked.headers["Retry-After"]) <= 61
        assert http.get(f"{base}/people/me", headers=ADMIN).status_code == 429
