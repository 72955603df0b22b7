"""Ctrl-C (SIGINT) and SIGTERM during training: stop after the step with a checkpoint, not lose the run.

    with StopRequest() as stop:       # the loop checks stop.signum after each step
        ...
    # the previous handlers are back here

DataLoader workers leave the process group (:func:`detach_loader_worker`): Ctrl-C in a terminal, or
``kill -TERM -PGID``, reaches every process of the group, and a worker that died of it would fail
the loader before the checkpoint. The loader still ends them (SIGTERM), and they end by
themselves when the main process is gone.
"""

from __future__ import annotations

import os
import signal
import threading

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """Training stopped on a signal after saving a checkpoint. A KeyboardInterrupt, so that a
    caller's ``except Exception`` (e.g. one trying several configs) does not carry on after Ctrl-C."""

    def __init__(self, signum: int, message: str):
        super().__init__(message)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        """The shell's convention for a process ended by a signal: 130 for SIGINT, 143 for SIGTERM."""
        return 128 + self.signum


class StopRequest:
    """While active (a ``with`` block) the first SIGINT or SIGTERM only records itself in
    :attr:`signum` (and says so on stderr); a second SIGINT aborts at once (KeyboardInterrupt).
    The previous handlers come back on exit. Outside the main thread, where Python cannot catch
    signals, it does nothing."""

    def __init__(self, quiet: bool = False):
        self.signum: int | None = None
        self.quiet = quiet  # e.g. every process but the main one of a multi-process run
        self._previous: dict[int, object] = {}

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for s in STOP_SIGNALS:
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)  # None: set outside Python
        self._previous.clear()

    def _handle(self, signum: int, _frame) -> None:
        if self.signum is None:
            self.signum = signum
            if not self.quiet:  # os.write: the main thread may be inside a print to stderr
                os.write(2, f"\n{signal.Signals(signum).name}: stopping after this step with a checkpoint "
                            "(Ctrl-C again aborts at once)\n".encode())
        elif signum == signal.SIGINT:
            raise KeyboardInterrupt


def detach_loader_worker(_worker_id: int | None = None) -> None:
    """A DataLoader ``worker_init_fn``: the main process decides when to stop, and shuts its workers down."""
    os.setpgrp()  # out of the terminal's job: its Ctrl-C goes to the main process alone
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Forked while StopRequest was active: the loader's SIGTERM must end the worker, as by default.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
