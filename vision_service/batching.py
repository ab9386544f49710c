"""Dynamic micro-batching: items from many callers, collected into one handler call on one thread.

A single worker thread owns the handler (the detector). Callers :meth:`MicroBatcher.submit`
items and get one :class:`concurrent.futures.Future` per item (async code wraps them with
:func:`asyncio.wrap_future`, as :meth:`vision_service.pipeline.Pipeline.gather` does).

**Collection rule.** The worker blocks for the first item, then keeps taking items until it has
``max_batch`` of them or ``max_wait`` seconds have passed since that first item was taken,
whichever comes first. With an ``expected`` count (the pipeline passes its admitted frames:
queued, or still being decoded by their callers), it waits only while more items than it holds
are on their way: a lone request is dispatched at once instead of waiting ``max_wait`` for
company that is not coming. Under load batches fill up without any wait, since items queue
while the handler runs. ``max_wait = 0`` takes only what is already queued.

**Outcomes.** The handler returns one outcome per item: its result, or the exception that item
failed with, so one bad item fails only its own future (the pipeline runs a failed batch again
frame by frame, see :mod:`vision_service.pipeline`). A handler that raises fails every item of
the batch.

**Shutdown.** :meth:`MicroBatcher.stop` refuses new items, lets the worker finish everything
already queued (drain), then joins it.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

DEFAULT_MAX_BATCH = 16
DEFAULT_MAX_WAIT_SECONDS = 0.002


class BatcherClosed(RuntimeError):
    """The batcher was stopped; it takes no new items."""


@dataclass(frozen=True)
class _Item(Generic[T, R]):
    value: T
    future: Future[R]


# Queued after the last item by stop(): everything before it is still processed.
_STOP = object()


class MicroBatcher(Generic[T, R]):
    """Collects items from concurrent callers into calls of ``handle`` with up to ``max_batch`` items.

    ``handle`` takes a list of items and returns one outcome per item, in order: a result, or the
    exception that item failed with. It runs on the batcher's own thread only, so it needs no
    locking of its own.
    """

    def __init__(
        self,
        handle: Callable[[list[T]], Sequence[R | Exception]],
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
        max_wait: float = DEFAULT_MAX_WAIT_SECONDS,
        expected: Callable[[], int] | None = None,
        name: str = "micro-batcher",
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        if max_wait < 0:
            raise ValueError(f"max_wait must be >= 0 seconds, got {max_wait}")
        self.handle = handle
        self.max_batch = max_batch
        self.max_wait = max_wait
        # How many items are on their way in all (queued or about to be submitted); None: unknown.
        self.expected = expected
        self.name = name
        self._queue: queue.SimpleQueue[_Item[T, R] | object] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    def start(self) -> None:
        """Start the worker (again, after a stop); idempotent while it runs."""
        with self._lock:
            self._closed = False
            self._start_locked()

    def _start_locked(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Refuse new items, finish the queued ones, and join the worker (at most ``timeout`` s)."""
        with self._lock:
            self._closed = True
            thread, self._thread = self._thread, None
            if thread is not None:
                self._queue.put(_STOP)
        if thread is not None:
            thread.join(timeout)

    def submit(self, values: Sequence[T]) -> list[Future[R]]:
        """Queue ``values``; one future per value, resolved with its result or its exception.

        The worker starts on first use, so a batcher works without an explicit :meth:`start`.

        Raises:
            BatcherClosed: after :meth:`stop`.
        """
        items: list[_Item[T, R]] = [_Item(value, Future()) for value in values]
        with self._lock:
            if self._closed:
                raise BatcherClosed(f"{self.name} is stopped")
            self._start_locked()
            for item in items:
                self._queue.put(item)
        return [item.future for item in items]

    # -- worker ---------------------------------------------------------------------------------

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is _STOP:
                return
            batch = [first]
            deadline = time.monotonic() + self.max_wait
            while len(batch) < self.max_batch:
                remaining = deadline - time.monotonic()
                if self.expected is not None and len(batch) >= self.expected():
                    remaining = 0.0  # everything on its way is in hand: take what is queued, wait for nothing
                try:
                    item = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True  # finish this batch, then leave: _STOP is queued after every item
                    break
                batch.append(item)
            self._process([b for b in batch if isinstance(b, _Item)])

    def _process(self, batch: list[_Item[T, R]]) -> None:
        # Callers that gave up (a cancelled future) are skipped before the handler sees them.
        live = [item for item in batch if item.future.set_running_or_notify_cancel()]
        if not live:
            return
        try:
            outcomes = list(self.handle([item.value for item in live]))
            if len(outcomes) != len(live):
                raise RuntimeError(f"handler returned {len(outcomes)} outcomes for {len(live)} items")
        except Exception as exc:
            log.warning("%s: a batch of %d failed: %s", self.name, len(live), exc)
            for item in live:
                item.future.set_exception(exc)
            return
        for item, outcome in zip(live, outcomes, strict=True):
            if isinstance(outcome, Exception):
                item.future.set_exception(outcome)
            else:
                item.future.set_result(outcome)
