"""Helpers for the reliability tests: kill a process at a chosen write, deterministically (no sleeps, no races).

Both helpers fork; the child runs `fn()` with an audit hook on `open`. `killed_while_writing(name, fn)`:
when a file whose name ends with `name` is opened for writing, RLIMIT_FSIZE is lowered to that file's size
(0 unless appended to) plus `keep_bytes`, so the write in progress stops there and the kernel sends SIGXFSZ,
whose default action terminates the process: a kill (or power cut) in the middle of that write.
`sigkilled_before_writing(name, fn)`: the child sends itself SIGKILL as it opens that file. Linux/macOS only.
"""

from __future__ import annotations

import os
import resource
import signal
import sys
import time

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC


def _opened_for_writing(args) -> bool:
    _, mode, flags = (tuple(args) + (None, None))[:3]
    if isinstance(mode, str):
        return any(c in mode for c in "wax+")
    return isinstance(flags, int) and bool(flags & _WRITE_FLAGS)


def killed_while_writing(name: str, fn, *, nth: int = 1, keep_bytes: int = 0, timeout_s: float = 120.0) -> int:
    """Run `fn()` in a forked child that dies (SIGXFSZ) part way through writing its `nth` file named `*name`:
    the write stops after `keep_bytes` new bytes. Returns the signal; fails if the child was not killed."""
    return _run_child(name, fn, nth, keep_bytes, timeout_s)


def sigkilled_before_writing(name: str, fn, *, nth: int = 1, timeout_s: float = 120.0) -> int:
    """Run `fn()` in a forked child that SIGKILLs itself as it opens its `nth` file named `*name` for writing."""
    return _run_child(name, fn, nth, None, timeout_s)


def _run_child(name: str, fn, nth: int, keep_bytes: int | None, timeout_s: float) -> int:
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # child: never returns into pytest
        code = 0
        try:
            signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
            seen = 0

            def hook(event, args):
                nonlocal seen
                if event != "open" or not args or args[0] is None or isinstance(args[0], int):
                    return
                path = os.fspath(args[0])
                if not (path.endswith(name) and _opened_for_writing(args)):
                    return
                seen += 1
                if seen < nth:
                    return
                if keep_bytes is None:
                    os.kill(os.getpid(), signal.SIGKILL)
                mode, flags = (tuple(args) + (None, None))[1:3]
                appending = ("a" in mode) if isinstance(mode, str) else bool((flags or 0) & os.O_APPEND)
                size = os.path.getsize(path) if appending and os.path.exists(path) else 0
                resource.setrlimit(resource.RLIMIT_FSIZE,
                                   (size + keep_bytes, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))

            sys.addaudithook(hook)
            fn()
        except BaseException:  # noqa: BLE001 - report through the exit status, never into pytest
            import traceback

            traceback.print_exc()
            code = 3
        os._exit(code)
    deadline = time.monotonic() + timeout_s
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise AssertionError(f"the child writing {name} did not finish in {timeout_s}s")
        time.sleep(0.01)
    assert os.WIFSIGNALED(status), (f"the child was not killed while writing {name} "
                                    f"(exit status {os.WEXITSTATUS(status)}): it never opened that file")
    return os.WTERMSIG(status)
