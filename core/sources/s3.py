"""Log objects in an S3 bucket: a backfill chosen by the time in the key names, then polling.

Layouts (docs/sources.md): the simple prefix ``prefixYYYY-mm-DD-HH-MM-SS-Unique`` (listed with
``StartAfter``), the partitioned prefix ``prefix<acct>/<region>/<bucket>/YYYY/MM/DD/…`` and CloudTrail
``[prefix/]AWSLogs/[o-org/]<acct>/CloudTrail/<region>/YYYY/MM/DD/*.json.gz`` (date folders older than
the window are not listed; digest and insight folders are skipped). Objects are fetched in parallel and
handed out in listing order, each whole, each once per run. Read-only: only ListObjectsV2 and GetObject.
"""
from __future__ import annotations

import io
import os
import random
import re
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable, Iterable

from ..event import Malformed
from ..reader import GZIP_MAGIC, RawBlock, SourceError, iter_stream, sniff_format
from .base import Source, Stopped

WORKERS = 8
REWIND = timedelta(hours=1)       # polls list again keys timed up to this far back (late, out of order)
DAY_REWIND = timedelta(hours=26)  # and day partitions (event-time partitions fill up late)
RETRY_BASE = 0.5
RETRY_CAP = 30.0
MAX_ATTEMPTS = 8                  # one-shot reads give up after this many failures in a row
SKIP_FOLDERS = ("CloudTrail-Digest", "CloudTrail-Insight")

_ACCESS_TIME = re.compile(r"(\d{4})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-")
_TRAIL_TIME = re.compile(r"_(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})?Z")
_DATE_LEN = (4, 2, 2)
_CRED_CODES = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "ExpiredTokenException",
               "InvalidToken", "InvalidClientTokenId", "TokenRefreshRequired", "AccountProblem",
               "AllAccessDisabled"}
_RETRY_CODES = {"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "RequestTimeTooSkewed",
                "InternalError", "ServiceUnavailable", "503", "500", "502", "504", "TooManyRequests"}
_OBJECT_CODES = {"NoSuchKey", "AccessDenied", "InvalidObjectState", "NotFound", "404", "403", "Forbidden"}


def parse_uri(uri: str) -> tuple[str, str]:
    rest = uri[len("s3://"):]
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise SourceError(f"{uri}: no bucket name")
    return bucket, prefix


def key_time(key: str) -> datetime | None:
    """The time in a log object's name (delivery time, or 00:00:00 for event-time partitions)."""
    name = key.rsplit("/", 1)[-1]
    m = _TRAIL_TIME.search(name) if "CloudTrail" in name else None
    m = m or _ACCESS_TIME.search(name)
    if not m:
        return None
    try:
        y, mo, d, h, mi, s = (int(g or 0) for g in m.groups())
        return datetime(y, mo, d, h, mi, s, tzinfo=timezone.utc)
    except ValueError:
        return None


def in_window(key: str, since: datetime | None, day_since: date | None) -> bool:
    """Whether a listing from ``since`` takes this key: by its time, or by its day when the name says
    ``00-00-00`` (event-time partitions). Keys without a time in their name are always taken."""
    t = key_time(key)
    if since is None or t is None:
        return True
    if (t.hour, t.minute, t.second) == (0, 0, 0):
        return t.date() >= (day_since or since.date())
    return t >= since


_DATE_DIRS = re.compile(r"(?:\d{4}/\d{2}/\d{2}/)$")


def series_of(key: str) -> str:
    """The log stream a key belongs to: its folder without trailing ``YYYY/MM/DD/`` partitions."""
    folder = key.rsplit("/", 1)[0] + "/" if "/" in key else ""
    return _DATE_DIRS.sub("", folder)


class _TransferError(Exception):
    """A failure while streaming a body (not an OSError, so the reader does not call it corrupt gzip)."""

    def __init__(self, cause: BaseException):
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.cause = cause


class _ObjectError(Exception):
    """This one object cannot be read (AccessDenied, NoSuchKey…): report it and go on."""


class _BodyRaw(io.RawIOBase):
    """A botocore StreamingBody as a raw stream, so BufferedReader (peek) and GzipFile can sit on it."""

    def __init__(self, body: Any):
        self.body = body

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        try:
            data = self.body.read(len(b))
        except Exception as exc:
            raise _TransferError(exc) from exc
        n = len(data)
        b[:n] = data
        return n


_SESSIONS: dict[tuple, Any] = {}
_SESSION_LOCK = threading.Lock()


def make_client(args: Any) -> Any:
    import boto3
    import botocore.config
    import botocore.exceptions

    endpoint = getattr(args, "endpoint_url", None) or os.environ.get("AWS_ENDPOINT_URL_S3") \
        or os.environ.get("AWS_ENDPOINT_URL") or None
    try:
        with _SESSION_LOCK:  # a session loads the service models once (~0.4 s); reuse it
            ident = (getattr(args, "profile", None) or None, getattr(args, "region", None) or None)
            session = _SESSIONS.get(ident)
            if session is None:
                session = _SESSIONS[ident] = boto3.Session(profile_name=ident[0], region_name=ident[1])
            config = botocore.config.Config(
                retries={"total_max_attempts": 1, "mode": "standard"},  # s3tail owns the retry loop
                connect_timeout=5, read_timeout=30, max_pool_connections=WORKERS * 2,
                user_agent_extra="s3tail")
            return session.client("s3", endpoint_url=endpoint, config=config)
    except botocore.exceptions.BotoCoreError as exc:
        raise SourceError(f"AWS configuration: {exc}") from None


def classify(exc: BaseException, what: str) -> tuple[str, str]:
    """(kind, message): kind is ``fatal``, ``connect``, ``object`` or ``transient``."""
    import botocore.exceptions as be

    if isinstance(exc, _TransferError):
        return "transient", str(exc)
    if isinstance(exc, be.ClientError):
        err = exc.response.get("Error", {})
        code = str(err.get("Code", "?"))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        msg = f"{code}: {err.get('Message') or status}"
        if code == "NoSuchBucket":
            return "fatal", "no such bucket"
        if code in _CRED_CODES:
            return "fatal", f"credentials rejected ({msg})"
        if code in _RETRY_CODES or status >= 500 or status == 429:
            return "transient", msg
        if what == "get" and (code in _OBJECT_CODES or 400 <= status < 500):
            return "object", msg
        if code == "AccessDenied":
            return "fatal", f"access denied listing objects (needs s3:ListBucket): {msg}"
        return "fatal", msg
    if isinstance(exc, (be.EndpointConnectionError, be.ConnectTimeoutError)):
        return "connect", f"cannot reach the endpoint ({exc})"
    if isinstance(exc, (be.HTTPClientError, be.ResponseStreamingError, be.IncompleteReadError, ConnectionError)):
        return "transient", f"{type(exc).__name__}: {exc}"
    if isinstance(exc, (be.NoCredentialsError, be.PartialCredentialsError, be.CredentialRetrievalError)):
        return "fatal", f"no usable AWS credentials ({exc})"
    if isinstance(exc, be.BotoCoreError):
        return "fatal", str(exc)
    raise exc


class S3Source(Source):
    def __init__(self, uri: str, args: Any, *, redact: bool, snapshot: dict[str, Any] | None = None,
                 client_factory: Callable[[Any], Any] = make_client):
        super().__init__(uri)
        self.bucket, self.prefix = parse_uri(uri)
        self.args = args
        self.redact = redact
        self.follow = bool(getattr(args, "follow", False))
        self.interval = float(getattr(args, "interval", 30) or 30)
        self.client_factory = client_factory
        snap = snapshot or {}
        self.done: set[str] = set(snap.get("done", {}))
        self.orig = self._start(snap)
        self.day_since = date.fromisoformat(snap["day_since"]) if snap.get("day_since") else \
            (self.orig.date() if self.orig else None)
        self.base_status = "reading"
        self.reached = False   # a request succeeded once: connection errors are outages now, not config
        self.newest: datetime | None = None
        self.series: dict[str, datetime] = {}
        self.client: Any = None

    def _start(self, snap: dict[str, Any]) -> datetime | None:
        """Where the listing window starts: a checkpoint wins (nothing missed since then), else
        ``--since``, else everything under the prefix (``--follow`` alone reads the backlog first)."""
        if snap.get("since"):
            return datetime.fromisoformat(snap["since"])
        return getattr(self.args, "since", None)

    def refresh(self) -> None:
        if self.newest is not None:
            self.state.lag_seconds = max(0.0, (datetime.now(timezone.utc) - self.newest).total_seconds())

    # -- retries ----------------------------------------------------------------------------------
    def call(self, fn: Callable[[], Any], what: str, key: str | None = None) -> Any:
        attempt = 0
        while True:
            if self.halt.is_set():
                raise Stopped
            try:
                result = fn()
            except Stopped:
                raise
            except Exception as exc:
                kind, msg = classify(exc, what)
                where = f"{key}: {msg}" if key else msg
                if kind == "fatal" or (kind == "connect" and not self.reached):
                    raise SourceError(f"{self.name}: {where}") from None
                if kind == "object":
                    raise _ObjectError(msg) from None
                attempt += 1
                if not self.follow and attempt >= MAX_ATTEMPTS:
                    raise SourceError(f"{self.name}: giving up after {attempt} attempts: {where}") from None
                delay = min(RETRY_CAP, RETRY_BASE * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)
                self.update(status="retrying", retry_in=round(delay, 1), last_error=where)
                self.wait(delay)
                continue
            self.reached = True
            if self.state.status == "retrying":
                self.update(status=self.base_status, retry_in=None)
            return result

    # -- listing ----------------------------------------------------------------------------------
    def _list(self, prefix: str, start_after: str | None = None, one_page: bool = False):
        objs: list[tuple[str, int]] = []
        subs: list[str] = []
        token = None
        while True:
            kw: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix, "Delimiter": "/"}
            if token:
                kw["ContinuationToken"] = token
            elif start_after:
                kw["StartAfter"] = start_after
            resp = self.call(lambda: self.client.list_objects_v2(**kw), "list")
            objs.extend((o["Key"], int(o.get("Size") or 0)) for o in resp.get("Contents", ()))
            subs.extend(p["Prefix"] for p in resp.get("CommonPrefixes", ()))
            token = resp.get("NextContinuationToken")
            if one_page or not resp.get("IsTruncated") or not token:
                return objs, subs, bool(resp.get("IsTruncated"))

    def listing(self, since: datetime | None, day_since: date | None) -> list[tuple[str, int]]:
        """Keys to consider, in listing order: root level (StartAfter for the simple layout), then the
        folders, pruning date partitions before the window."""
        objs, subs, truncated = self._list(self.prefix, one_page=True)
        if truncated:
            start = self.prefix + since.strftime("%Y-%m-%d-%H-%M-%S") if since else None
            objs, more, _ = self._list(self.prefix, start_after=start)
            subs = list(dict.fromkeys(subs + more))
        low = None
        if since is not None:
            first = min(since.date(), day_since or since.date())
            low = (first.year, first.month, first.day)
        out = [o for o in objs if self._wanted(o[0], since, day_since)]
        for sub in subs:
            out.extend(self._walk(sub, (), low, since, day_since))
        return out

    def _walk(self, prefix: str, parts: tuple[int, ...], low, since, day_since) -> Iterable[tuple[str, int]]:
        if self.halt.is_set():
            raise Stopped
        seg = prefix.rstrip("/").rsplit("/", 1)[-1]
        if seg in SKIP_FOLDERS:
            return []
        if len(parts) < 3 and seg.isdigit() and len(seg) == _DATE_LEN[len(parts)] \
                and (parts or 1990 <= int(seg) <= 2200):
            parts = parts + (int(seg),)
            if low is not None and parts < low[:len(parts)]:
                return []  # a date folder before the window: not listed
        objs, subs, _ = self._list(prefix)
        out = [o for o in objs if self._wanted(o[0], since, day_since)]
        for sub in subs:
            out.extend(self._walk(sub, parts, low, since, day_since))
        return out

    @staticmethod
    def _wanted(key: str, since: datetime | None, day_since: date | None) -> bool:
        if key.endswith("/") or any(part in SKIP_FOLDERS for part in key.split("/")):
            return False
        return in_window(key, since, day_since)

    # -- reading ----------------------------------------------------------------------------------
    def fetch(self, key: str) -> tuple[list, int]:
        uri = f"s3://{self.bucket}/{key}"

        def once() -> tuple[list, int]:
            resp = self.client.get_object(Bucket=self.bucket, Key=key)
            body = resp["Body"]
            try:
                stream = io.BufferedReader(_BodyRaw(body), 1 << 18)
                head = stream.peek(64)[:64] if self.blocks and self.redact else b""
                if head and head[:2] != GZIP_MAGIC and sniff_format(head) == "s3access":
                    data = stream.read()  # block mode: a plain access-log object as one RawBlock
                    items = [RawBlock(data, uri)]
                else:
                    items = list(iter_stream(stream, uri, redact=self.redact))
            finally:
                body.close()
            return items, int(resp.get("ContentLength") or 0)

        try:
            return self.call(once, "get", key)
        except _ObjectError as exc:
            self.update(last_error=f"{key}: {exc}")
            return [Malformed(uri, 0, f"cannot read log object: {exc}", "")], 0

    def read_objects(self, pool: ThreadPoolExecutor, keys: list[tuple[str, int]]) -> None:
        """Fetch in parallel, hand out in order; each object then committed as done."""
        self.update(objects_pending=len(keys))
        todo = iter(keys)
        inflight: deque[tuple[str, Future]] = deque()
        while True:
            while len(inflight) < WORKERS * 2:
                nxt = next(todo, None)
                if nxt is None:
                    break
                inflight.append((nxt[0], pool.submit(self.fetch, nxt[0])))
            if not inflight:
                return
            key, fut = inflight.popleft()
            items, nbytes = fut.result()
            self.emit(items)
            self.done.add(key)
            t = key_time(key)
            if t is not None and (t.hour, t.minute, t.second) != (0, 0, 0) and (self.newest is None or t > self.newest):
                self.newest = t
            self.update(objects_done=self.state.objects_done + 1, objects_pending=self.state.objects_pending - 1,
                        bytes_done=self.state.bytes_done + nbytes)
            self.commit(lambda section, k=key: section.setdefault("done", {}).__setitem__(k, 1))

    def _note_series(self, key: str) -> None:
        """Track the newest key time per series (one log stream: a prefix, a partition root, a trail
        region): where the next poll's listing window may start."""
        t = key_time(key)
        if t is None:
            return
        if (t.hour, t.minute, t.second) == (0, 0, 0):
            # an event-time day partition keeps filling during the day and late after it
            t = min(datetime.now(timezone.utc), t + timedelta(days=1))
        series = series_of(key)
        if series not in self.series or t > self.series[series]:
            self.series[series] = t

    def next_window(self, since: datetime | None, day_since: date | None) -> tuple[datetime | None, date | None]:
        """The window of the next poll: REWIND before the oldest series' newest object (so late
        objects of every stream are still listed), never earlier than the last window (objects
        before it were handed out and are forgotten) and never before ``--since``."""
        if not self.series:
            return since, day_since
        anchor = min(min(self.series.values()), datetime.now(timezone.utc))
        cand, cand_day = anchor - REWIND, (anchor - DAY_REWIND).date()
        if since is not None:
            cand = max(cand, since)
            cand_day = max(cand_day, day_since or since.date())
        return cand, cand_day

    def run(self) -> None:
        self.client = self.client_factory(self.args)
        self.update(status="reading")
        since, day_since = self.orig, self.day_since
        pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="s3tail-get")
        try:
            while True:
                self._commit_window(since, day_since)
                listed = self.listing(since, day_since)
                for key, _size in listed:
                    self._note_series(key)
                self.read_objects(pool, [k for k in listed if k[0] not in self.done])
                if not self.follow:
                    self.update(status="done")
                    return
                self.base_status = "following"
                self.update(status="following", retry_in=None)
                self.wait(self.interval)
                since, day_since = self.next_window(since, day_since)
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    def _commit_window(self, since: datetime | None, day_since: date | None) -> None:
        """Record the listing window and forget done keys that no listing from it can return."""
        if since is None or not self.follow:
            return
        self.done = {k for k in self.done if in_window(k, since, day_since)}
        keep = set(self.done)
        iso, day = since.isoformat(), (day_since or since.date()).isoformat()

        def apply(section: dict[str, Any]) -> None:
            section["since"], section["day_since"] = iso, day
            section["done"] = {k: 1 for k in section.get("done", {}) if k in keep}

        self.commit(apply)
