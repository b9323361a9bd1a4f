"""Read log files, folders and stdin into events; the format is sniffed per file, gzip by its magic bytes.

Every line or record comes out as an :class:`Event`, a :class:`Malformed` (with file and line), or a
:class:`Skipped` (a CloudTrail record of another service). Nothing vanishes.
"""
from __future__ import annotations

import gzip
import io
import os
import sys
import zlib
from typing import BinaryIO, Iterable, Iterator, Union

from . import access_log, cloudtrail
from .event import Event, Malformed, MalformedError, Skipped

Item = Union[Event, Malformed, Skipped]
GZIP_MAGIC = b"\x1f\x8b"
_GZIP_ERRORS = (EOFError, zlib.error, gzip.BadGzipFile, OSError)


class RawBlock:
    """Complete access-log lines, not parsed yet: what sources in *block mode* hand out, for the
    columnar scanner (``s3tail.core.colblock.from_block``) to read in one call. ``lines`` is the number
    of lines (each one becomes an Event or a Malformed, as :func:`iter_access_lines` reads them)."""

    __slots__ = ("data", "log_object", "first_line", "first_offset", "lines")

    def __init__(self, data: bytes, log_object: str, first_line: int = 1, first_offset: int = 0):
        self.data, self.log_object = data, log_object
        self.first_line, self.first_offset = first_line, first_offset
        self.lines = data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)

    def items(self, redact: bool = True) -> list[Item]:
        """The block parsed as the reader parses it."""
        return list(iter_access_lines(split_lines(self.data), self.log_object, redact=redact,
                                      first_line=self.first_line, first_offset=self.first_offset))

    def __repr__(self) -> str:
        return f"RawBlock({self.log_object}:{self.first_line}+{self.lines})"


def split_lines(data: bytes) -> list[bytes]:
    """Lines of ``data`` split at ``\\n`` only, each keeping its newline (the last may have none)."""
    parts = data.split(b"\n")
    lines = [p + b"\n" for p in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def count_items(items: list) -> int:
    """Items in a list, a RawBlock counting its lines."""
    n = len(items)
    for item in items:
        if type(item) is RawBlock:
            n += item.lines - 1
    return n


class SourceError(Exception):
    """A source that cannot be read at all (missing path, permission denied): a usage/IO error."""


def sniff_format(head: bytes) -> str:
    """``cloudtrail`` when the data starts with a JSON object or list, else ``s3access``."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    return "cloudtrail" if text[:1] in (b"{", b"[") else "s3access"


def decode(raw: bytes) -> str:
    return raw.decode("utf-8", "backslashreplace")


def iter_access_lines(lines: Iterable[bytes], log_object: str, *, redact: bool = True,
                      first_line: int = 1, first_offset: int = 0) -> Iterator[Item]:
    """Parse access-log lines (bytes, each with its newline or not)."""
    parse = access_log.parse_line
    offset = first_offset
    lineno = first_line - 1
    for raw in lines:
        lineno += 1
        text = raw.decode("utf-8", "backslashreplace")
        try:
            yield parse(text, log_object, lineno, offset, redact)
        except MalformedError as exc:
            yield Malformed(log_object, lineno, str(exc) if text.strip() else "empty line", text.rstrip("\r\n"))
        except Exception as exc:  # never crash on input: report it with its origin
            yield Malformed(log_object, lineno, f"parser error: {type(exc).__name__}: {exc}", text.rstrip("\r\n"))
        offset += len(raw)


def iter_cloudtrail_text(text: str, log_object: str) -> Iterator[Item]:
    for index, rec in cloudtrail.iter_json_records(text):
        if isinstance(rec, MalformedError):
            yield Malformed(log_object, index, str(rec), "")
            continue
        try:
            event = cloudtrail.parse_record(rec, log_object, index)
        except MalformedError as exc:
            yield Malformed(log_object, index, str(exc), _short_json(rec))
            continue
        except Exception as exc:  # never crash on input
            yield Malformed(log_object, index, f"parser error: {type(exc).__name__}: {exc}", _short_json(rec))
            continue
        if event is None:
            source = rec.get("eventSource") if isinstance(rec, dict) else None
            yield Skipped(log_object, index, f"not an S3 event ({source})")
        else:
            yield event


def _short_json(rec: object) -> str:
    import json

    try:
        text = json.dumps(rec, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(rec)
    return text[:2000]


def iter_stream(stream: BinaryIO, log_object: str, *, redact: bool = True) -> Iterator[Item]:
    """Read one whole log object (plain or gzip, either format) from a binary stream.

    A corrupt or truncated gzip member is reported as malformed at the line where it broke, keeping
    what was readable; any other read error is a :class:`SourceError`.
    """
    lineno = 0
    gz = False
    try:
        if _peek(stream, 2) == GZIP_MAGIC:
            stream = gzip.GzipFile(fileobj=stream, mode="rb")  # type: ignore[assignment]
            gz = True
        if sniff_format(_peek(stream, 64)) == "cloudtrail":
            yield from iter_cloudtrail_text(decode(stream.read()), log_object)
            return
        for item in iter_access_lines(stream, log_object, redact=redact):
            lineno = item.log_line
            yield item
    except _GZIP_ERRORS as exc:
        if not gz or (isinstance(exc, OSError) and not isinstance(exc, gzip.BadGzipFile)
                      and exc.errno is not None):
            raise SourceError(f"{log_object}: read error: {exc}") from None
        yield Malformed(log_object, lineno + 1, f"corrupt or truncated gzip data: {exc}", "")


def _peek(stream: BinaryIO, n: int) -> bytes:
    peek = getattr(stream, "peek", None)
    if peek is not None:
        try:
            return peek(n)[:n]
        except (OSError, ValueError):
            pass
    if stream.seekable():
        pos = stream.tell()
        data = stream.read(n)
        stream.seek(pos)
        return data
    raise SourceError("cannot sniff a non-seekable stream")


def expand_sources(sources: Iterable[str]) -> list[str]:
    """Files named, folders expanded recursively in name order, ``-`` kept; missing paths raise."""
    out: list[str] = []
    for src in sources:
        if src == "-":
            out.append(src)
        elif os.path.isdir(src):
            found = []
            for root, dirs, files in os.walk(src):
                dirs.sort()
                found.extend(os.path.join(root, f) for f in files if not f.startswith("."))
            out.extend(sorted(found))
        elif os.path.exists(src):
            out.append(src)
        else:
            raise SourceError(f"{src}: no such file or directory")
    return out


def iter_path(path: str, *, redact: bool = True) -> Iterator[Item]:
    """One file (``-`` is stdin)."""
    if path == "-":
        stdin = sys.stdin.buffer
        if not hasattr(stdin, "peek"):
            stdin = io.BufferedReader(stdin)  # type: ignore[arg-type]
        yield from iter_stream(stdin, "-", redact=redact)
        return
    try:
        fh = open(path, "rb")
    except OSError as exc:
        raise SourceError(f"{path}: {exc.strerror or exc}") from None
    with fh:
        yield from iter_stream(fh, path, redact=redact)


def iter_sources(sources: Iterable[str], *, redact: bool = True) -> Iterator[Item]:
    """Every item of every source, files in the order :func:`expand_sources` gives."""
    for path in expand_sources(sources):
        yield from iter_path(path, redact=redact)
