"""Ending DataLoader worker processes promptly, and their errors as one line.

The training loaders' workers ignore SIGINT and SIGTERM (see
:func:`gqn.data.loader.ignore_stop_signals`), so Python's exit, which terminates and then joins
daemonic children with no timeout, waits forever on a worker the loader did not shut down,
e.g. when an error leaves the loader referenced from its traceback. :func:`shutdown_workers`
ends them the cooperative way (done event, queues), which they do not ignore.

A worker's exception reaches the main process re-raised by torch with the worker's whole
traceback in its message; :func:`unwrap_worker_error` gives back the original one-line message.
"""

from __future__ import annotations

from typing import Any

_WORKER_PREFIX = "Caught "
_WORKER_MARK = "in DataLoader worker process"


def shutdown_workers(batches: Any) -> None:
    """Stop the worker processes of DataLoader iterator ``batches`` now (no-op without any)."""
    shutdown = getattr(batches, "_shutdown_workers", None)
    if shutdown is not None:
        shutdown()


def unwrap_worker_error(error: BaseException) -> BaseException | None:
    """The worker's original exception (same type, its own message) for an exception torch
    re-raised from a DataLoader worker; None for any other exception."""
    text = str(error)
    head, _, trace = text.partition("\n")
    if not (head.startswith(_WORKER_PREFIX) and _WORKER_MARK in head):
        return None
    last = trace.rstrip().splitlines()[-1] if trace.strip() else head
    name = type(error).__name__
    message = last.split(f"{name}: ", 1)[1] if f"{name}: " in last else last
    try:
        return type(error)(message)
    except TypeError:  # an exception type whose constructor takes other arguments
        return None
