"""A small driver for running a terminal program in a real terminal: a detached tmux pane.

Each :class:`TmuxPane` starts its own tmux server on a private socket (``tmux -L <unique>``) with
its own config (no status line, so the pane is exactly ``width`` x ``height``; ``remain-on-exit`` so
the exit status and the terminal state left behind can be read; ``set-clipboard on`` so OSC 52
copies land in tmux's paste buffers where a test can see them). :meth:`TmuxPane.close` kills the
server; use the pane as a context manager.

Everything that waits polls with a deadline and fails with the last screen in the message:
``wait_for(lambda s: "x" in s)``, ``wait_exit()``.
"""
from __future__ import annotations

import os
import shlex
import signal as signal_module
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Callable, Mapping, Sequence

TMUX = shutil.which("tmux") or "/usr/bin/tmux"
CONFIG = """\
set -g status off
set -g remain-on-exit on
set -g set-clipboard on
set -g default-terminal xterm-256color
set -g history-limit 2000
set -sg escape-time 0
"""
# terminal modes an app must leave off when it exits (tmux format variables)
MODES = ("alternate_on", "mouse_any_flag", "mouse_button_flag", "mouse_standard_flag",
         "mouse_sgr_flag", "mouse_all_flag")


def s3tail_command(*args: str) -> list[str]:
    """The installed ``s3tail`` console script next to this Python, else ``python -m s3tail.core.cli``."""
    script = Path(sys.executable).with_name("s3tail")
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-m", "s3tail.core.cli", *args]


class TmuxPane:
    """One program in one detached tmux pane of ``width`` x ``height`` cells."""

    def __init__(self, argv: Sequence[str], *, width: int = 80, height: int = 24,
                 cwd: str | os.PathLike | None = None, env: Mapping[str, str | None] | None = None) -> None:
        if not os.path.exists(TMUX):
            raise RuntimeError("tmux is required for the end-to-end tests (apt-get install tmux)")
        self.socket = f"s3tail-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.width, self.height = width, height
        self._dir = tempfile.mkdtemp(prefix="tmuxdriver-")
        conf = Path(self._dir) / "tmux.conf"
        conf.write_text(CONFIG)
        server_env = dict(os.environ)
        for name in ("TMUX", "TMUX_PANE", "COLORTERM", "TEXTUAL", "TEXTUAL_DRIVER"):
            server_env.pop(name, None)
        for name, value in (env or {}).items():
            if value is None:
                server_env.pop(name, None)
            else:
                server_env[name] = value
        self._env = server_env
        self.last = ""
        self._socket_path = ""
        try:
            self._run("-f", str(conf), "new-session", "-d", "-s", "t", "-x", str(width), "-y", str(height),
                      "-c", str(cwd or os.getcwd()), shlex.join(argv))
            self._socket_path = self.fmt("#{socket_path}")
        except BaseException:
            self.close()
            raise

    # --- tmux ----------------------------------------------------------------------------------
    def _run(self, *args: str, check: bool = True) -> str:
        proc = subprocess.run([TMUX, "-L", self.socket, *args], capture_output=True, text=True,
                              env=self._env, timeout=10)
        if check and proc.returncode != 0:
            raise RuntimeError(f"tmux {' '.join(args)}: {proc.stderr.strip()}")
        return proc.stdout

    def fmt(self, fmt: str) -> str:
        """A tmux format for the pane, e.g. ``#{pane_dead_status}``."""
        return self._run("display-message", "-p", "-t", "t", fmt).rstrip("\n")

    def close(self) -> None:
        try:
            self._run("kill-server", check=False)
        except subprocess.TimeoutExpired:
            pass
        if self._socket_path:
            Path(self._socket_path).unlink(missing_ok=True)  # tmux leaves it behind
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> "TmuxPane":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- screen --------------------------------------------------------------------------------
    def capture(self, escapes: bool = False) -> str:
        """The visible screen, one line per row; ``escapes=True`` keeps the SGR attributes (``-e``)."""
        args = ["capture-pane", "-p", "-t", "t"] + (["-e"] if escapes else [])
        text = self._run(*args)
        if not escapes:
            self.last = text
        return text

    def lines(self) -> list[str]:
        return self.capture().splitlines()

    # --- input ---------------------------------------------------------------------------------
    def press(self, *keys: str) -> None:
        """tmux key names: ``Enter``, ``Escape``, ``Down``, ``PageDown``, ``2``, ``C-p``..."""
        for key in keys:
            self._run("send-keys", "-t", "t", key)

    def type(self, text: str) -> None:
        """Literal text (``send-keys -l``)."""
        self._run("send-keys", "-t", "t", "-l", text)

    # --- waiting -------------------------------------------------------------------------------
    def dead(self) -> bool:
        return self.fmt("#{pane_dead}") == "1"

    def wait_for(self, cond: Callable[[str], object], timeout: float = 10.0, what: str = "") -> str:
        """Poll the screen until ``cond(screen)`` holds; returns that screen. Fails with the screen."""
        deadline = time.monotonic() + timeout
        while True:
            screen = self.capture()
            if cond(screen):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what or cond}; "
                                     f"screen:\n{screen}")
            if self.dead():
                screen = self.capture()
                if cond(screen):
                    return screen
                raise AssertionError(f"the program exited (status {self.fmt('#{pane_dead_status}')}) "
                                     f"while waiting for {what or cond}; screen:\n{screen}")
            time.sleep(0.1)

    def wait_text(self, text: str, timeout: float = 10.0) -> str:
        return self.wait_for(lambda s: text in s, timeout, repr(text))

    def wait_exit(self, timeout: float = 10.0) -> int:
        """Wait until the program has exited; its exit status."""
        deadline = time.monotonic() + timeout
        while True:
            dead, status, signal = self.fmt("#{pane_dead} #{pane_dead_status} #{pane_dead_signal}.").split(" ")
            if dead == "1" and status:
                return int(status)
            if dead == "1" and signal != ".":
                raise AssertionError(f"the program was killed by signal {signal.rstrip('.')}")
            if time.monotonic() > deadline:
                state = "its pane is closed but it was not reaped" if dead == "1" else "still running"
                raise AssertionError(f"{state} after {timeout}s; screen:\n{self.capture()}")
            if dead == "1":
                # the pty is closed; tmux 3.3 sometimes misses the SIGCHLD of an exited child
                # (left a zombie): a nudge makes our own server reap it and record the status
                os.kill(int(self.fmt("#{pid}")), signal_module.SIGCHLD)
            time.sleep(0.1)

    def modes(self) -> dict[str, str]:
        """The terminal modes the program left set (``alternate_on``, mouse tracking...)."""
        values = self.fmt(" ".join(f"#{{{m}}}" for m in MODES)).split(" ")
        return dict(zip(MODES, values))

    def buffers(self) -> list[str]:
        """tmux paste buffers: where OSC 52 clipboard writes from the program land."""
        names = self._run("list-buffers", "-F", "#{buffer_name}", check=False).split()
        return [self._run("show-buffer", "-b", name, check=False) for name in names]
