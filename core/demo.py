"""Demo traffic: S3 server access-log LINES with benign background plus attack episodes.

Every line goes through the real parser (:func:`s3tail.core.access_log.parse_line`) with the log
object ``demo://access.log``, so the demo exercises exactly the code real logs do. Offline, no AWS,
deterministic for a given seed. Nothing here imports Textual.

Episodes (one every ``episode_every`` background lines, in rotation): enumeration (a burst of
403/404 from one IP), mass download, mass delete, sensitive key access, a pentest user agent,
anonymous access, a bucket policy change, a security control disabled (public access block
deleted, logging turned off).
"""
from __future__ import annotations

import random
import threading
import time
from datetime import datetime, timezone
from typing import Iterator, Union

from .access_log import parse_line
from .event import Event, Malformed, MalformedError

LOG_OBJECT = "demo://access.log"
ACCOUNT = "111122223333"
OWNER = "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"
BUCKETS = ("acme-prod-data", "acme-web-assets", "acme-backups", "acme-logs")
EPISODES = ("enumeration", "mass_download", "mass_delete", "sensitive_key", "pentest_ua",
            "anonymous", "policy_change", "control_disabled")

_USERS = (
    f"arn:aws:sts::{ACCOUNT}:assumed-role/app-server/i-0a1b2c3d4e",
    f"arn:aws:sts::{ACCOUNT}:assumed-role/etl-job/batch-42",
    f"arn:aws:iam::{ACCOUNT}:user/alice",
    f"arn:aws:iam::{ACCOUNT}:user/bob",
    f"arn:aws:sts::{ACCOUNT}:assumed-role/ci-deploy/github-actions",
)
_IPS = ("10.0.1.17", "10.0.2.31", "10.0.3.44", "172.16.4.9", "192.0.2.10")
_AGENTS = ("aws-sdk-java/2.20.0 Linux/5.10", "Boto3/1.34.0 Python/3.11", "aws-cli/2.15.0 Python/3.11",
           "S3Console/0.4")
_KEYS = ("reports/2026/q3.pdf", "images/logo.png", "data/part-0001.parquet", "data/part-0002.parquet",
         "exports/users.csv", "index.html", "css/site.css", "backups/db-2026-11-01.sql.gz")
_SENSITIVE = (".env", "config/credentials", ".git/config", "id_rsa", "terraform.tfstate",
              "secrets/prod.json")

Item = Union[Event, Malformed]


def _stamp(epoch: float) -> str:
    return datetime.fromtimestamp(int(epoch), timezone.utc).strftime("%d/%b/%Y:%H:%M:%S +0000")


class DemoTraffic:
    """Builds log lines. ``lines(n, epoch)`` returns ``n`` lines stamped ``epoch``."""

    def __init__(self, seed: int = 7, episode_every: int = 400) -> None:
        self.rng = random.Random(seed)
        self.episode_every = episode_every
        self._count = 0
        self._episode = 0
        self._reqid = 0

    # --- one line -------------------------------------------------------------------------------
    def line(self, epoch: float, *, bucket: str, ip: str, requester: str | None, op: str,
             key: str | None, status: int, err: str | None = None, sent: int | None = None,
             ua: str = "aws-cli/2.15.0 Python/3.11", method: str = "GET", query: str = "",
             size: int | None = None) -> str:
        self._reqid += 1
        reqid = f"{self._reqid:012X}DEMO"
        path = f"/{bucket}/{key}" if key else f"/{bucket}"
        uri = f"{method} {path}{query} HTTP/1.1"
        auth = "AuthHeader" if requester else "-"
        sig = "SigV4" if requester else "-"
        fields = [
            OWNER, bucket, f"[{_stamp(epoch)}]", ip, requester or "-", reqid, op,
            (key or "-").replace(" ", "%20"), f'"{uri}"', str(status), err or "-",
            "-" if sent is None else str(sent), "-" if size is None else str(size),
            str(self.rng.randint(3, 90)), "-", '"-"', f'"{ua}"', "-",
            f"hOsTiD{self._reqid:06d}=", sig, "ECDHE-RSA-AES128-GCM-SHA256", auth,
            f"{bucket}.s3.us-east-1.amazonaws.com", "TLSv1.2", "-", "-",
        ]
        return " ".join(fields)

    def background(self, epoch: float) -> str:
        r = self.rng
        bucket = r.choice(BUCKETS[:3])
        key = r.choice(_KEYS)
        roll = r.random()
        if roll < 0.7:
            size = r.randint(500, 60_000)  # small: background users stay below s3.mass_download
            return self.line(epoch, bucket=bucket, ip=r.choice(_IPS), requester=r.choice(_USERS),
                             op="REST.GET.OBJECT", key=key, status=200, sent=size, size=size,
                             ua=r.choice(_AGENTS))
        if roll < 0.85:
            size = r.randint(500, 60_000)
            return self.line(epoch, bucket=bucket, ip=r.choice(_IPS), requester=r.choice(_USERS),
                             op="REST.PUT.OBJECT", key=key, status=200, method="PUT", size=size)
        if roll < 0.95:
            return self.line(epoch, bucket=bucket, ip=r.choice(_IPS), requester=r.choice(_USERS),
                             op="REST.GET.BUCKET", key=None, status=200, sent=r.randint(300, 9000),
                             query="?list-type=2&prefix=data%2F")
        if roll < 0.98:
            return self.line(epoch, bucket=bucket, ip=r.choice(_IPS), requester=r.choice(_USERS),
                             op="REST.HEAD.OBJECT", key=key, status=304)
        return self.line(epoch, bucket=bucket, ip=r.choice(_IPS), requester=r.choice(_USERS),
                         op="REST.GET.OBJECT", key=key, status=503, err="SlowDown", sent=300)

    # --- attack episodes -------------------------------------------------------------------------
    def episode(self, name: str, epoch: float) -> list[str]:
        r = self.rng
        attacker_ip = f"203.0.113.{r.randint(2, 250)}"
        stolen = f"arn:aws:iam::{ACCOUNT}:user/svc-legacy"
        bucket = BUCKETS[0]
        out: list[str] = []
        if name == "enumeration":
            for i in range(60):
                out.append(self.line(epoch, bucket=bucket, ip=attacker_ip, requester=None,
                                     op="REST.GET.OBJECT", key=f"backup{i}.zip",
                                     status=403 if i % 3 else 404,
                                     err="AccessDenied" if i % 3 else "NoSuchKey", sent=243,
                                     ua="python-requests/2.31.0"))
        elif name == "mass_download":
            for i in range(120):
                size = r.randint(20_000_000, 80_000_000)
                out.append(self.line(epoch, bucket=bucket, ip=attacker_ip, requester=stolen,
                                     op="REST.GET.OBJECT", key=f"customers/export-{i:04d}.csv",
                                     status=200, sent=size, size=size, ua="rclone/v1.65.0"))
        elif name == "mass_delete":
            for i in range(80):
                out.append(self.line(epoch, bucket=BUCKETS[2], ip=attacker_ip, requester=stolen,
                                     op="REST.DELETE.OBJECT", key=f"backups/db-{i:04d}.sql.gz",
                                     status=204, method="DELETE", ua="aws-cli/2.15.0 Python/3.11"))
        elif name == "sensitive_key":
            for key in _SENSITIVE:
                out.append(self.line(epoch, bucket=BUCKETS[1], ip=attacker_ip, requester=None,
                                     op="REST.GET.OBJECT", key=key, status=200, sent=812, size=812,
                                     ua="curl/8.4.0"))
        elif name == "pentest_ua":
            for key in ("admin/", "wp-config.php", "server-status", "phpinfo.php"):
                out.append(self.line(epoch, bucket=BUCKETS[1], ip=attacker_ip, requester=None,
                                     op="REST.GET.OBJECT", key=key, status=404, err="NoSuchKey",
                                     sent=220, ua="aws-cli/2.15.0 Python/3.11 Linux/6.1.0-kali9-amd64"))
                out.append(self.line(epoch, bucket=BUCKETS[1], ip=attacker_ip, requester=None,
                                     op="REST.GET.OBJECT", key=key, status=403, err="AccessDenied",
                                     sent=220, ua="sqlmap/1.7.2#stable (https://sqlmap.org)"))
        elif name == "anonymous":
            for i in range(15):
                size = r.randint(1000, 90000)
                out.append(self.line(epoch, bucket=BUCKETS[1], ip=attacker_ip, requester=None,
                                     op="REST.GET.OBJECT", key=f"private/invoice-{i}.pdf",
                                     status=200, sent=size, size=size, ua="Wget/1.21"))
        elif name == "policy_change":
            out.append(self.line(epoch, bucket=bucket, ip=attacker_ip, requester=stolen,
                                 op="REST.PUT.BUCKETPOLICY", key=None, status=204, method="PUT",
                                 query="?policy"))
            out.append(self.line(epoch, bucket=bucket, ip=attacker_ip, requester=stolen,
                                 op="REST.PUT.ACL", key=None, status=200, method="PUT", query="?acl"))
        elif name == "control_disabled":
            out.append(self.line(epoch, bucket=bucket, ip=attacker_ip, requester=stolen,
                                 op="REST.DELETE.PUBLIC_ACCESS_BLOCK", key=None, status=204,
                                 method="DELETE", query="?publicAccessBlock"))
            out.append(self.line(epoch, bucket=bucket, ip=attacker_ip, requester=stolen,
                                 op="REST.PUT.LOGGING_STATUS", key=None, status=200, method="PUT",
                                 query="?logging"))
            out.append(self.line(epoch, bucket=bucket, ip=attacker_ip, requester=stolen,
                                 op="REST.DELETE.BUCKETPOLICY", key=None, status=204,
                                 method="DELETE", query="?policy"))
        return out

    def lines(self, n: int, epoch: float) -> list[str]:
        """``n`` background lines, with the next episode's lines spliced in when one is due."""
        out: list[str] = []
        for _ in range(n):
            self._count += 1
            out.append(self.background(epoch))
            if self._count % self.episode_every == self.episode_every // 4:
                name = EPISODES[self._episode % len(EPISODES)]
                self._episode += 1
                out.extend(self.episode(name, epoch))
        return out


def parse_lines(lines: list[str], first_line: int, *, redact: bool = True) -> list[Item]:
    """Parse through the real parser; a line it rejects comes back as :class:`Malformed`."""
    out: list[Item] = []
    for i, text in enumerate(lines):
        n = first_line + i
        try:
            out.append(parse_line(text, LOG_OBJECT, n, -1, redact))
        except MalformedError as exc:
            out.append(Malformed(LOG_OBJECT, n, str(exc), text))
    return out


def iter_demo(rate: float = 60.0, *, seed: int = 7, stop: threading.Event | None = None,
              limit: int | None = None, start: float | None = None, realtime: bool = True,
              episode_every: int = 400) -> Iterator[Item]:
    """Yield demo events, about ``rate`` background lines per second of wall clock (``realtime``),
    stamped from ``start`` (default: now, minus a short backfill so the first screen is busy).
    Stops when ``stop`` is set or after ``limit`` items."""
    traffic = DemoTraffic(seed, episode_every)
    tick = 0.1
    per_tick = max(1, int(rate * tick))
    clock = time.time() if start is None else start
    # Backfill: ten minutes of history holding every episode once, so every tab (and each minute of
    # the sparklines) has something at once. One of those minutes is delivered two seconds into the
    # live traffic, as S3 delivers log objects late and out of order: the table keeps event-time order.
    backfill_minutes = 10
    per_minute = max(1, episode_every * len(EPISODES) // backfill_minutes)
    chunks = [traffic.lines(per_minute, clock - 60 * (backfill_minutes - m) + 5)
              for m in range(backfill_minutes)]
    late_chunk = chunks.pop(-2)

    def batches() -> Iterator[list[str]]:
        nonlocal clock
        yield from chunks
        late_at = 20  # ticks of live traffic before the late minute arrives
        while stop is None or not stop.is_set():
            started = time.monotonic()
            batch = traffic.lines(per_tick, time.time() if realtime else clock)
            late_at -= 1
            yield late_chunk + batch if late_at == 0 else batch
            clock += tick
            pause = tick - (time.monotonic() - started)
            if realtime and pause > 0:
                if stop is None:
                    time.sleep(pause)
                elif stop.wait(pause):
                    return

    produced = 0
    lineno = 1
    for batch in batches():
        for item in parse_lines(batch, lineno):
            yield item
            produced += 1
            if limit is not None and produced >= limit:
                return
        lineno += len(batch)
