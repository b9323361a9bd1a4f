"""Files, folders and stdin, read once or followed (``tail -F`` behaviour, polling, no extra dependency).

Rules while following (documented in docs/sources.md):

* Plain access-log files are read by byte offset; only whole lines (ending in ``\\n``) are parsed, a
  partial last line waits for its newline. A one-shot read parses a final line without newline too.
* Truncated in place (size < offset, same inode): read again from byte 0 and line 1.
* Replaced (same path, new inode): the new file is read from byte 0. When the old inode shows up
  under another name in a followed folder (``app.log`` renamed to ``app.log.1``), it continues from
  where it was, under its new name, so nothing is read twice and its last lines are not lost. A
  replaced file that had an unfinished last line and is not found again is reported as malformed.
* Gzip and CloudTrail JSON files are read whole, once their size and mtime did not change between
  two polls and they do not end mid-stream (a file that does is given WRITE_GRACE seconds after
  its last change, then read and reported as truncated); if such a file changes after it was
  read, it is read again.
* Files that cannot be opened inside a folder are reported once (a :class:`Malformed` with line 0)
  and skipped; a named path that does not exist or cannot be opened is a :class:`SourceError`.
"""
from __future__ import annotations

import io
import os
import stat
import sys
import time
from typing import Any

from ..event import Malformed
from ..reader import (GZIP_MAGIC, RawBlock, SourceError, iter_access_lines, iter_path, iter_stream, sniff_format,
                      split_lines)
from .base import Source

POLL = 0.25        # seconds between stats of known files while following
RESCAN_EVERY = 2   # folders are walked again every RESCAN_EVERY polls (new files within ~1 s)
CHUNK = 1 << 16    # at most this many bytes of one file per message (small batches: less GC work)
BLOCK_CHUNK = 1 << 20  # the same in block mode (RawBlock: one C call per block, no object per line)
WRITE_GRACE = 30.0  # a followed .gz / JSON file that ends mid-stream waits this long for the rest


class LocalSource(Source):
    def __init__(self, spec: str, *, follow: bool, redact: bool, snapshot: dict[str, Any] | None = None,
                 since: float | None = None):
        super().__init__(spec)
        self.spec = spec
        self.follow = follow
        self.since = since  # epoch: files last modified before it are not read
        self.redact = redact
        self.files: dict[str, dict[str, Any]] = dict((snapshot or {}).get("files", {}))
        self.detached: dict[tuple[int, int], tuple[str, dict[str, Any]]] = {}
        self.reported: set[tuple[str, str]] = set()
        self.is_dir = False
        if spec != "-":
            if os.path.isdir(spec):
                self.is_dir = True
            elif not os.path.exists(spec):
                raise SourceError(f"{spec}: no such file or directory")
            elif not os.access(spec, os.R_OK):
                raise SourceError(f"{spec}: permission denied")

    # -- driver -----------------------------------------------------------------------------------
    def run(self) -> None:
        self.update(status="reading")
        st = None if self.spec == "-" or self.is_dir else os.stat(self.spec)
        if self.spec == "-" or (st is not None and (not stat.S_ISREG(st.st_mode)
                                                    or (st.st_size == 0 and not self.follow))):
            # stdin, a FIFO, a device, or a file that reports no size (/proc): read as a stream
            self._read_stream()
            self.update(status="done")
            return
        paths = self._discover()
        self._poll(paths, final=not self.follow)
        if not self.follow:
            self.update(status="done")
            return
        self.update(status="following")
        n = 0
        while True:
            self.wait(POLL)
            n += 1
            if self.is_dir and n % RESCAN_EVERY == 0:
                paths = self._discover()
                self._poll(paths, final=False)
                self._drop_detached()
            else:
                self._poll(paths, final=False)

    def _read_stream(self) -> None:
        """stdin, a FIFO or a character device: read to its end, streaming (no checkpoint)."""
        if self.spec == "-":
            stream = sys.stdin.buffer
            if not hasattr(stream, "peek"):
                stream = io.BufferedReader(stream)  # type: ignore[arg-type]
            items = iter_stream(stream, "-", redact=self.redact)
        else:
            items = iter_path(self.spec, redact=self.redact)
        batch: list = []
        size = 1 if self.follow else 500
        for item in items:
            batch.append(item)
            if len(batch) >= size:
                self.emit(batch)
                batch = []
            if self.halt.is_set():
                return
        self.emit(batch)

    def _discover(self) -> list[str]:
        if not self.is_dir:
            return [self.spec]
        found = []
        for root, dirs, files in os.walk(self.spec):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            found.extend(os.path.join(root, f) for f in files if not f.startswith("."))
        return sorted(found)

    def _poll(self, paths: list[str], *, final: bool) -> None:
        for path in paths:
            if self.halt.is_set():
                return
            self._poll_file(path, final)

    # -- one file ---------------------------------------------------------------------------------
    def _report(self, path: str, line: int, reason: str) -> None:
        if (path, reason) in self.reported:
            return
        self.reported.add((path, reason))
        self.update(last_error=f"{path}: {reason}")
        self.emit([Malformed(path, line, reason, "")])

    def _poll_file(self, path: str, final: bool) -> None:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            if os.path.islink(path):
                self._report(path, 0, "cannot read: broken symbolic link")
            return  # deleted or moved away: its track waits in case it comes back
        except OSError as exc:
            self._report(path, 0, f"cannot read: {exc.strerror or exc}")
            return
        if not stat.S_ISREG(st.st_mode):
            if path != self.spec:
                self._report(path, 0, "skipped: not a regular file")
            return
        ident = (st.st_dev, st.st_ino)
        track = self.files.get(path)
        if track is not None and (track["dev"], track["ino"]) != ident:
            # Replaced: keep the old track in case its inode appears under another name.
            if not self.is_dir and track.get("kind") == "text":
                self._drain_rotated(path, track)
            self.detached[(track["dev"], track["ino"])] = (path, track)
            track = None
        if track is None and self.since is not None and st.st_mtime < self.since:
            return  # not modified since --since: nothing new in it
        if track is None:
            claimed = self.detached.pop(ident, None) or self._moved_from(path, ident)
            track = claimed[1] if claimed else {"dev": ident[0], "ino": ident[1], "offset": 0, "lines": 0,
                                                "kind": None, "seen": None, "read": None}
            self.files[path] = track
        if st.st_size < track["offset"]:  # truncated in place
            track.update(offset=0, lines=0, read=None)
        if track["kind"] is None:
            if st.st_size == 0:
                return
            head = self._head(path)
            if head is None:
                return
            track["kind"] = "whole" if head[:2] == GZIP_MAGIC or sniff_format(head) == "cloudtrail" else "text"
        if track["kind"] == "whole":
            self._read_whole(path, track, st, final)
        elif st.st_size > track["offset"]:
            self._read_text(path, track, st.st_size, final)

    def _moved_from(self, path: str, ident: tuple[int, int]) -> tuple[str, dict[str, Any]] | None:
        """A followed file renamed to ``path`` (same inode, its old name now gone or another file)."""
        for old, track in list(self.files.items()):
            if old != path and (track["dev"], track["ino"]) == ident:
                try:
                    now = os.stat(old)
                    if (now.st_dev, now.st_ino) == ident:
                        continue  # a hard link: both names exist, treat as a new file
                except OSError:
                    pass
                del self.files[old]
                return old, track
        return None

    def _drain_rotated(self, path: str, track: dict[str, Any]) -> None:
        """A followed file (not a folder) was replaced: finish its old inode if it was renamed
        beside it (``app.log`` -> ``app.log.1``), so lines written just before the rotation are read."""
        folder = os.path.dirname(path) or "."
        try:
            names = sorted(os.listdir(folder))
        except OSError:
            return
        for name in names:
            old = os.path.join(folder, name)
            try:
                st = os.stat(old)
            except OSError:
                continue
            if (st.st_dev, st.st_ino) == (track["dev"], track["ino"]) and stat.S_ISREG(st.st_mode):
                if st.st_size > track["offset"]:
                    self._read_text(old, track, st.st_size, final=False)
                return

    def _drop_detached(self) -> None:
        for (dev, ino), (path, track) in list(self.detached.items()):
            del self.detached[(dev, ino)]
            if track.get("kind") == "text" and track.get("pending"):
                self._report(path, track["lines"] + 1,
                             f"file replaced; {track['pending']} bytes of an unfinished last line were not read")

    def _head(self, path: str) -> bytes | None:
        try:
            with open(path, "rb") as fh:
                return fh.read(64)
        except OSError as exc:
            self._report(path, 0, f"cannot read: {exc.strerror or exc}")
            return None

    def _read_whole(self, path: str, track: dict[str, Any], st: os.stat_result, final: bool) -> None:
        sig = [st.st_size, st.st_mtime_ns]
        if track["read"] == sig:
            return
        if not final and track["seen"] != sig:
            track["seen"] = sig  # read once the size is stable across two polls
            return
        young = not final and time.time() - st.st_mtime < WRITE_GRACE
        if young and track.get("unfinished") == sig:
            return
        try:
            items = list(iter_path(path, redact=self.redact))
        except SourceError as exc:
            self._report(path, 0, f"cannot read: {exc}")
            return
        if young and items and isinstance(items[-1], Malformed):
            track["unfinished"] = sig  # ends mid-stream: most likely still being written
            return
        track.update(read=sig, seen=sig, offset=st.st_size)
        self.emit(items)
        self._done_file(path, track, st.st_size)

    def _read_text(self, path: str, track: dict[str, Any], size: int, final: bool) -> None:
        try:
            fh = open(path, "rb")
        except OSError as exc:
            self._report(path, 0, f"cannot read: {exc.strerror or exc}")
            return
        with fh:
            fh.seek(track["offset"])
            while track["offset"] < size and not self.halt.is_set():
                chunk = (self.block_bytes or BLOCK_CHUNK) if self.blocks else CHUNK
                data = fh.read(min(chunk, size - track["offset"]))
                if not data:
                    break
                at_end = track["offset"] + len(data) >= size
                cut = data.rfind(b"\n") + 1
                if final and at_end:
                    cut = len(data)
                elif cut == 0 and len(data) == chunk:
                    cut = len(data)  # a line longer than CHUNK: parse what we have
                if cut == 0:
                    track["pending"] = len(data)
                    break
                if self.blocks and self.redact:
                    block = RawBlock(data[:cut], path, track["lines"] + 1, track["offset"])
                    items, nlines = [block], block.lines
                else:
                    lines = split_lines(data[:cut])
                    items = list(iter_access_lines(lines, path, redact=self.redact,
                                                   first_line=track["lines"] + 1, first_offset=track["offset"]))
                    nlines = len(lines)
                track["offset"] += cut
                track["lines"] += nlines
                track["pending"] = len(data) - cut if at_end else 0
                self.emit(items)
                self._done_file(path, track, cut)
                if cut < len(data):
                    fh.seek(track["offset"])

    def _done_file(self, path: str, track: dict[str, Any], nbytes: int) -> None:
        copy = {k: v for k, v in track.items() if k not in ("seen", "unfinished")}
        self.update(objects_done=len(self.files), bytes_done=self.state.bytes_done + nbytes)
        self.commit(lambda section: section.setdefault("files", {}).__setitem__(path, copy))
