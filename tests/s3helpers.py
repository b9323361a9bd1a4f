"""Test helpers for live sources: a moto S3 server on loopback, a fault-injecting HTTP proxy in front
of it, log objects in the three key layouts, and polling with a deadline."""
from __future__ import annotations

import gzip
import http.client
import json
import os
import socket
import struct
import threading
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

ACCOUNT = "111122223333"
LINE = ('79a5 {bucket} [{when}] 192.0.2.3 - REQ{tag} REST.GET.OBJECT {tag} '
        '"GET /{tag} HTTP/1.1" 200 - 10 10 7 1 "-" "curl/8" - hid SigV4 ECDHE AuthHeader h TLSv1.2')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def set_fake_credentials(env: dict[str, str] | Any) -> None:
    """Static test credentials, no shared config files (nothing from the machine's ~/.aws)."""
    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                 "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": os.devnull,
                 "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "AWS_EC2_METADATA_DISABLED": "true"}.items():
        env[k] = v
    for k in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        env.pop(k, None)


class MotoServer:
    """moto's ThreadedMotoServer on a fixed loopback port, so it can be stopped and started again
    (moto keeps its buckets in the process between starts)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.server: Any = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        from moto.server import ThreadedMotoServer

        deadline = time.monotonic() + 10
        while True:
            self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
            try:
                self.server.start()
                return
            except OSError:  # the port is still held by the last run: wait
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1")


class FaultProxy:
    """A loopback HTTP proxy in front of the S3 server. ``plan(n, method, path)`` chooses, for the
    n-th request (1-based), ``None`` (forward), ``"503"`` (SlowDown), ``"500"`` (InternalError),
    ``"reset"`` (TCP reset before answering), ``"cut"`` (headers and half the body, then a reset),
    ``"403"`` (AccessDenied) or ``"404"`` (NoSuchKey)."""

    ERRORS = {"503": ("SlowDown", "Please reduce your request rate."),
              "500": ("InternalError", "We encountered an internal error. Please try again."),
              "403": ("AccessDenied", "Access Denied"),
              "404": ("NoSuchKey", "The specified key does not exist.")}

    def __init__(self, upstream_port: int):
        self.upstream_port = upstream_port
        self.plan: Callable[[int, str, str], str | None] = lambda n, method, path: None
        self.count = 0
        self.faults: Counter = Counter()
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def handle_any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                with proxy._lock:
                    proxy.count += 1
                    n = proxy.count
                    proxy.requests.append((self.command, self.path))
                action = proxy.plan(n, self.command, self.path)
                if action:
                    with proxy._lock:
                        proxy.faults[action] += 1
                if action == "reset":
                    return self.reset()
                if action in proxy.ERRORS:
                    code, message = proxy.ERRORS[action]
                    payload = (f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
                               f"<Message>{message}</Message><RequestId>PROXY</RequestId></Error>").encode()
                    self.send_response(int(action))
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return None
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=30)
                    conn.request(self.command, self.path, body=body, headers=dict(self.headers.items()))
                    resp = conn.getresponse()
                    data = resp.read()
                    conn.close()
                except OSError:
                    return self.reset()  # the server is down: the client sees a lost connection
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("content-length", "transfer-encoding", "connection", "server", "date"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command == "HEAD":
                    return None
                if action == "cut" and len(data) > 1:
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    return self.reset()
                self.wfile.write(data)
                return None

            def reset(self) -> None:
                try:
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()
                except OSError:
                    pass
                self.close_connection = True

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = handle_any

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # resets on purpose make the handler's last flush fail

        self.server = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def gets(self) -> list[str]:
        with self._lock:
            return [p for m, p in self.requests if m == "GET" and "list-type" not in p]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- log objects ---------------------------------------------------------------------------------

def access_lines(bucket: str, tags: list[str], when: datetime | None = None) -> bytes:
    stamp = (when or datetime(2024, 5, 1, tzinfo=timezone.utc)).strftime("%d/%b/%Y:%H:%M:%S +0000")
    return "".join(LINE.format(bucket=bucket, when=stamp, tag=t) + "\n" for t in tags).encode()


def trail_record(tag: str) -> dict[str, Any]:
    return {
        "eventVersion": "1.09",
        "userIdentity": {"type": "IAMUser", "principalId": "AIDAEXAMPLE", "accountId": ACCOUNT,
                         "arn": f"arn:aws:iam::{ACCOUNT}:user/alice", "userName": "alice"},
        "eventTime": "2024-05-01T10:00:00Z", "eventSource": "s3.amazonaws.com", "eventName": "GetObject",
        "awsRegion": "us-east-1", "sourceIPAddress": "203.0.113.9", "userAgent": "[aws-cli/2]",
        "requestParameters": {"bucketName": "data", "key": tag}, "requestID": f"R{tag}",
        "eventID": f"E{tag}", "recipientAccountId": ACCOUNT,
    }


def trail_object(tags: list[str]) -> bytes:
    return gzip.compress(json.dumps({"Records": [trail_record(t) for t in tags]}).encode())


def simple_key(prefix: str, when: datetime, unique: str) -> str:
    return f"{prefix}{when:%Y-%m-%d-%H-%M-%S}-{unique}"


def partitioned_key(prefix: str, when: datetime, unique: str, source_bucket: str = "src-bucket",
                    event_time: bool = False) -> str:
    name_time = when.replace(hour=0, minute=0, second=0) if event_time else when
    return (f"{prefix}{ACCOUNT}/us-east-1/{source_bucket}/{when:%Y/%m/%d}/"
            f"{name_time:%Y-%m-%d-%H-%M-%S}-{unique}")


def trail_key(prefix: str, when: datetime, unique: str, org: str | None = None) -> str:
    org_part = f"{org}/" if org else ""
    return (f"{prefix}AWSLogs/{org_part}{ACCOUNT}/CloudTrail/us-east-1/{when:%Y/%m/%d}/"
            f"{ACCOUNT}_CloudTrail_us-east-1_{when:%Y%m%dT%H%M}Z_{unique}.json.gz")


class Writer:
    """Puts log objects in the three layouts and remembers every line it wrote (its tag)."""

    def __init__(self, client: Any, bucket: str, start: datetime):
        self.client, self.bucket = client, bucket
        self.when = start
        self.tags: list[str] = []
        self.n = 0

    def _tags(self, k: int) -> list[str]:
        out = [f"t{self.n + i:05d}" for i in range(k)]
        self.n += k
        self.tags.extend(out)
        return out

    def put(self, key: str, body: bytes) -> str:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=body)
        return key

    def round(self, lines: int = 3, step: timedelta = timedelta(minutes=5)) -> list[str]:
        """One object of each layout (simple, partitioned by delivery and by event time, CloudTrail
        and an organization trail), ``step`` later than the last round."""
        self.when += step
        u = f"{self.n:06d}ABCDEF"
        keys = [
            self.put(simple_key("simple/", self.when, u), access_lines(self.bucket, self._tags(lines))),
            self.put(partitioned_key("part/", self.when, u), access_lines(self.bucket, self._tags(lines))),
            self.put(partitioned_key("event/", self.when, u, event_time=True),
                     access_lines(self.bucket, self._tags(lines))),
            self.put(trail_key("trail/", self.when, u), trail_object(self._tags(lines))),
            self.put(trail_key("", self.when, u, org="o-abc123def4"), trail_object(self._tags(lines))),
        ]
        return keys


def tags_of(items: list) -> Counter:
    """Event keys (the tags written) with how many times each arrived."""
    return Counter(getattr(i, "key", None) for i in items if type(i).__name__ == "Event")


def wait_for(cond: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


class Collector:
    """Runs ``iter_items`` in a thread and keeps what arrives, for follow tests."""

    def __init__(self, args: Any):
        from s3tail.core.sources import iter_items

        self.items: list = []
        self.states: list = []
        self.error: BaseException | None = None
        self.stop = threading.Event()
        self._lock = threading.Lock()

        def on_state(name: str, state: Any) -> None:
            with self._lock:
                self.states.append(state)

        def run() -> None:
            try:
                for item in iter_items(args, on_state=on_state, stop=self.stop):
                    with self._lock:
                        self.items.append(item)
            except BaseException as exc:  # reported by the test
                self.error = exc

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def snapshot(self) -> list:
        with self._lock:
            return list(self.items)

    def statuses(self) -> list[str]:
        with self._lock:
            return [s.status for s in self.states]

    def wait_tags(self, tags: list[str], timeout: float = 20.0) -> None:
        want = set(tags)
        wait_for(lambda: self.error is not None or want <= set(tags_of(self.snapshot())), timeout,
                 f"{len(want - set(tags_of(self.snapshot())))} of {len(want)} lines")
        if self.error is not None:
            raise self.error

    def finish(self, timeout: float = 2.0) -> float:
        t0 = time.monotonic()
        self.stop.set()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "iter_items did not end after stop"
        return time.monotonic() - t0


def follow_cli(argv: list[str], env: dict[str, str], until: Callable[[list[str]], bool],
               timeout: float = 30.0) -> tuple[list[str], str, int]:
    """Run ``s3tail ARGV`` (a ``--follow``), wait until ``until(stdout lines)`` holds and stderr says
    it is following, end it with SIGTERM; return (stdout lines, stderr, exit code)."""
    import signal
    import subprocess
    import sys

    p = subprocess.Popen([sys.executable, "-m", "s3tail.core.cli", *argv], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out: list[str] = []
    errs: list[str] = []
    readers = [threading.Thread(target=lambda: out.extend(iter(p.stdout.readline, "")), daemon=True),
               threading.Thread(target=lambda: errs.extend(iter(p.stderr.readline, "")), daemon=True)]
    for r in readers:
        r.start()
    try:
        wait_for(lambda: until(list(out)), timeout, "the lines on stdout")
        wait_for(lambda: "following" in "".join(errs), timeout, "the following state on stderr")
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=20)
        for r in readers:
            r.join(5)
    finally:
        p.kill()
    return [x for x in out if x.strip()], "".join(errs), p.returncode


def keys_in(lines: list[str]) -> Counter:
    return Counter(json.loads(x)["key"] for x in lines)
