"""Trying something an interpreter might crash on, in a forked child: a native crash (SIGSEGV) ends the child,
not the device's process. Used where an interpreter is known to crash on some inputs instead of raising
(tflite-runtime 2.14 on damaged or some int8 models; TFLM after failed allocations)."""

from __future__ import annotations

import faulthandler
import os

from edgernn.errors import BackendError, first_line


def try_in_child(action, what: str) -> tuple[str, str]:
    """Run ``action()`` in a forked child: ``("ok", "")``, ``("error", its one-line message)`` or
    ``("crash", the signal's name)``.

    ``EDGERNN_PROBE_MODELS=0`` turns the child off (``("ok", "")`` without running): under qemu-user emulation a
    forked child of a process that has run interpreters can itself crash (qemu's threads do not survive fork),
    which would turn valid models into errors. On real hardware leave it on.
    """
    if not hasattr(os, "fork") or os.environ.get("EDGERNN_PROBE_MODELS", "1") == "0":
        return "ok", ""
    read_end, write_end = os.pipe()
    try:
        pid = os.fork()
    except OSError as exc:
        raise BackendError(f"cannot check {what} in a child process: {exc.strerror}") from None
    if pid == 0:  # child: report what happened on the pipe, exit without cleanup
        os.close(read_end)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)  # the interpreter's banners and complaints are the parent's to report
        os.dup2(devnull, 2)
        faulthandler.disable()  # an expected crash here is no news (pytest's handler writes to a saved fd)
        try:
            action()
            message = b"ok\n"
        except BaseException as exc:  # noqa: BLE001 - any Python error is reported to the parent, in one line
            message = b"error\n" + first_line(exc).encode("utf-8", "replace")
        os.write(write_end, message[:4000])
        os._exit(0)
    os.close(write_end)
    chunks = []
    while chunk := os.read(read_end, 4096):
        chunks.append(chunk)
    os.close(read_end)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        import signal

        return "crash", signal.Signals(os.WTERMSIG(status)).name
    kind, _, message = b"".join(chunks).decode("utf-8", "replace").partition("\n")
    return (kind or "crash"), message
