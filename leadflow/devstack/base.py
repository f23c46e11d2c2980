"""A server process we start, find again later, and always stop completely.

The child runs in its own session, so its pid is also its process-group id and stopping
it signals the whole group (a JVM or a forking Redis leaves nothing behind). A JSON pid
file records pid, argv and kernel start time, so a later CLI invocation can find the
process again and never signals a recycled pid that now belongs to something else.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import signal
import socket
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from leadflow.devstack.exceptions import NotReadyError, ProcessExitedError

log = logging.getLogger(__name__)

LOG_TAIL_LINES = 30
_ROTATE_LOG_AT_BYTES = 10 * 1024 * 1024
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


# --- /proc helpers ---------------------------------------------------------------------


def _proc_stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (field 3 onwards), or None."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) is in parentheses and may itself contain spaces or ')'.
    return raw[raw.rindex(")") + 2 :].split()


def read_cmdline(pid: int) -> list[str] | None:
    """argv of a live process as the kernel sees it, or None if there is no such process."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\0")[:-1]]


def process_start_ticks(pid: int) -> int | None:
    """Kernel start time of a process (clock ticks since boot); with the pid it is unique."""
    fields = _proc_stat_fields(pid)
    return int(fields[19]) if fields else None  # field 22 of stat


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU time a live process has used so far (seconds), or None."""
    fields = _proc_stat_fields(pid)
    if not fields:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # fields 14, 15 of stat


def process_group_of(pid: int) -> int | None:
    fields = _proc_stat_fields(pid)
    return int(fields[2]) if fields else None  # field 5 of stat


def is_alive(pid: int) -> bool:
    """True while the process exists and is not a zombie waiting to be reaped."""
    fields = _proc_stat_fields(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def process_group_members(pgid: int) -> list[int]:
    """Live processes whose process group is `pgid`."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            pid = int(entry.name)
            if process_group_of(pid) == pgid and is_alive(pid):
                members.append(pid)
    return members


# --- small utilities -------------------------------------------------------------------


def tail_lines(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """Last `lines` lines of a text file ('' if it does not exist)."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 256 * 1024))  # enough for 30 long JVM log lines
            last = deque(f.read().splitlines(), maxlen=lines)
    except FileNotFoundError:
        return ""
    return "\n".join(line.decode(errors="replace") for line in last)


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True if nothing listens on host:port (bind test, same SO_REUSEADDR the servers use)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def die_with_parent_preexec() -> Callable[[], None]:
    """preexec_fn that makes the kernel SIGKILL the child when its parent dies (kill -9 too).

    libc is resolved here, before fork; the child only makes the syscall. Caveat: Linux
    ties PDEATHSIG to the *thread* that forked, so spawn from a thread that outlives the child.
    """
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent_pid = os.getpid()

    def preexec() -> None:
        if prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        if os.getppid() != parent_pid:  # parent already died before prctl took effect
            os.kill(os.getpid(), signal.SIGKILL)

    return preexec


# --- the managed process ---------------------------------------------------------------


@dataclass(frozen=True)
class ProcessStatus:
    name: str
    running: bool
    pid: int | None
    log_file: str

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class PidRecord:
    """What the pid file stores: enough to prove a pid is still the process we started."""

    pid: int
    argv: list[str]
    start_ticks: int | None

    def is_same_process_start(self) -> bool:
        """The pid is alive and was started at the recorded moment (not a recycled pid)."""
        if not is_alive(self.pid):
            return False
        return self.start_ticks is None or process_start_ticks(self.pid) == self.start_ticks

    def matches_live_process(self) -> bool:
        return self.is_same_process_start() and read_cmdline(self.pid) == self.argv

    def write(self, path: Path) -> None:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(asdict(self)))
        tmp.replace(path)  # atomic: a reader never sees a half-written pid file

    @classmethod
    def read(cls, path: Path) -> PidRecord | None:
        try:
            data = json.loads(path.read_text())
            return cls(int(data["pid"]), list(data["argv"]), data.get("start_ticks"))
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring unreadable pid file %s", path)
            return None


class ManagedProcess:
    """One long-running child: start, find again via its pid file, wait for readiness, stop."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_file: Path,
        pid_file: Path,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        tie_to_parent: bool = False,
    ) -> None:
        self.name = name
        self.argv = [str(a) for a in argv]
        self.log_file = Path(log_file)
        self.pid_file = Path(pid_file)
        self.cwd = cwd
        self.env = dict(env) if env is not None else None  # None = inherit ours
        self.tie_to_parent = tie_to_parent
        self._popen: subprocess.Popen[bytes] | None = None

    # -- discovery --

    def running_pid(self) -> int | None:
        """Pid of our live process, or None; drops a stale pid file as a side effect."""
        if self._popen is not None and self._popen.poll() is None:
            return self._popen.pid  # our unreaped child: its pid cannot have been recycled
        record = PidRecord.read(self.pid_file)
        if record is None:
            return None
        if record.matches_live_process():
            return record.pid
        if not record.is_same_process_start():
            log.info("%s: removing stale pid file %s (pid %d is gone or reused)", self.name, self.pid_file, record.pid)
            self.pid_file.unlink(missing_ok=True)
        return None

    def remember_cmdline(self) -> None:
        """Re-record the kernel's view of argv: some servers (redis) retitle themselves."""
        pid = self.running_pid()
        cmdline = read_cmdline(pid) if pid is not None else None
        if pid is not None and cmdline:
            PidRecord(pid, cmdline, process_start_ticks(pid)).write(self.pid_file)

    def status(self) -> ProcessStatus:
        pid = self.running_pid()
        return ProcessStatus(self.name, pid is not None, pid, str(self.log_file))

    def exit_code(self) -> int | None:
        """Exit status if we spawned it in this interpreter and it has exited."""
        return self._popen.poll() if self._popen is not None else None

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        return tail_lines(self.log_file, lines)

    # -- lifecycle --

    def start(self) -> int:
        """Spawn the process unless it already runs; returns its pid."""
        existing = self.running_pid()
        if existing is not None:
            log.info("%s already running (pid %d)", self.name, existing)
            return existing
        if self.tie_to_parent and threading.current_thread() is not threading.main_thread():
            log.warning("%s: tie_to_parent from a non-main thread; the child dies when this thread exits", self.name)
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self._rotate_log()
        with self.log_file.open("ab") as log_fh:
            self._popen = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log_fh,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: stop() signals the whole tree
                preexec_fn=die_with_parent_preexec() if self.tie_to_parent else None,
            )
        pid = self._popen.pid
        PidRecord(pid, self.argv, process_start_ticks(pid)).write(self.pid_file)
        log.info("%s started (pid %d, log %s)", self.name, pid, self.log_file)
        return pid

    def stop(self, timeout: float = 30.0) -> bool:
        """SIGTERM the process group, wait up to `timeout`, then SIGKILL it.

        Returns True if a running process was stopped, False if none was running.
        """
        pid = self.running_pid()
        if pid is None:
            self._reap()
            return False
        log.info("stopping %s (pid %d)", self.name, pid)
        self._signal_group(pid, signal.SIGTERM)
        if not self._wait_for_exit(pid, timeout):
            log.warning("%s (pid %d) ignored SIGTERM for %.0fs; sending SIGKILL", self.name, pid, timeout)
            self._signal_group(pid, signal.SIGKILL)
            self._wait_for_exit(pid, 10.0)
        # Members of the group can outlive the leader (e.g. a forked helper): sweep them.
        # While any member lives, the kernel cannot hand the pgid to a new process.
        if process_group_members(pid):
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.pid_file.unlink(missing_ok=True)
        log.info("%s stopped", self.name)
        return True

    def wait_ready(
        self,
        is_ready: Callable[[], bool],
        timeout: float,
        *,
        interval: float = 0.1,
        what: str = "ready",
    ) -> float:
        """Poll `is_ready` until it returns True; returns the seconds waited.

        Raises ProcessExitedError if the process dies first and NotReadyError at the
        deadline; both carry the last lines of the process log. Exceptions raised by
        `is_ready` count as "not yet" (the last one is reported on timeout).
        """
        started = time.monotonic()
        deadline = started + timeout
        last_error: BaseException | None = None
        while True:
            pid = self.running_pid()
            if pid is None:
                code = self.exit_code()
                raise ProcessExitedError(
                    f"{self.name} exited{f' with code {code}' if code is not None else ''} "
                    f"before it was {what}. {self._log_excerpt()}"
                )
            try:
                if is_ready():
                    self.remember_cmdline()
                    return time.monotonic() - started
                last_error = None
            except Exception as exc:  # noqa: BLE001 - any failure just means "not yet"
                last_error = exc
            if time.monotonic() >= deadline:
                because = f" (last check failed: {last_error!r})" if last_error else ""
                raise NotReadyError(
                    f"{self.name} (pid {pid}) was not {what} after {timeout:.0f}s{because}. {self._log_excerpt()}"
                )
            time.sleep(interval)

    # -- internals --

    def _log_excerpt(self) -> str:
        tail = self.log_tail()
        if not tail:
            return f"Its log {self.log_file} is empty."
        return f"Last {LOG_TAIL_LINES} lines of {self.log_file}:\n{tail}"

    def _rotate_log(self) -> None:
        try:
            if self.log_file.stat().st_size > _ROTATE_LOG_AT_BYTES:
                self.log_file.replace(self.log_file.with_name(self.log_file.name + ".1"))
        except FileNotFoundError:
            pass

    def _signal_group(self, pid: int, sig: signal.Signals) -> None:
        try:
            if process_group_of(pid) == pid:
                os.killpg(pid, sig)
            else:  # it left its group (unexpected): signal only the process we started
                os.kill(pid, sig)
        except ProcessLookupError:
            pass

    def wait_for_exit(self, timeout: float) -> bool:
        """Wait for our process to exit on its own; True if it is gone."""
        pid = self.running_pid()
        return pid is None or self._wait_for_exit(pid, timeout)

    def _wait_for_exit(self, pid: int, timeout: float) -> bool:
        if self._popen is not None and self._popen.pid == pid:
            try:
                self._popen.wait(timeout)  # our child: wait() also reaps it
                return True
            except subprocess.TimeoutExpired:
                return False
        deadline = time.monotonic() + timeout
        while is_alive(pid):  # not our child: its real parent (or init) reaps it
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def _reap(self) -> None:
        if self._popen is not None:
            self._popen.poll()


def launch_and_wait(service, timeout: float) -> float:
    """``service.launch()`` then ``service.wait_ready(timeout)``; stops what it spawned if it
    never became ready (no half-started process left behind). Returns seconds taken."""
    started = time.monotonic()
    spawned = service.launch()
    try:
        service.wait_ready(timeout)
    except BaseException:
        if spawned:
            service.stop()
        raise
    return time.monotonic() - started
