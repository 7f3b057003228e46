"""Group commit: single-record submissions that arrive together share one transaction.

A single POST /v1/records is one transaction of about ten round trips and a commit flush, all under
the log's append lock, so one record per transaction caps single POSTs at roughly one per lock hold
however many clients send them. Here concurrent submissions queue up; one thread at a time (the
leader) submits everything queued as one batch, then hands the lead to the next thread waiting, if
any. A lone client sees no difference; with many, each transaction carries the records that arrived
while the previous one ran (the way a database groups commit flushes).

A batch is all or nothing, but independent requests must not fail each other: when a group is refused
for bad input (an unregistered provider, a reused request id...), each of its records is submitted
again on its own, so every request gets the answer it would have had alone.
"""

from __future__ import annotations

import threading
from collections import defaultdict

from anchor.errors import InputError
from anchor.records.ingest import MAX_BATCH, Accepted, Recorder, Submission


class _Waiter:
    """One queued submission: woken once, either with its answer or to lead the next group."""

    def __init__(self, sub: Submission, api_key: str | None) -> None:
        self.sub = sub
        self.api_key = api_key
        self.wake = threading.Event()
        self.answered = False
        self.accepted: Accepted | None = None
        self.error: BaseException | None = None

    def answer(self, accepted: Accepted | None = None, error: BaseException | None = None) -> None:
        self.accepted, self.error, self.answered = accepted, error, True
        self.wake.set()


class GroupCommit:
    """Submits single records through `recorder`, grouping concurrent ones. Thread-safe."""

    def __init__(self, recorder: Recorder, max_group: int = MAX_BATCH) -> None:
        self.recorder = recorder
        self.max_group = max_group
        self._lock = threading.Lock()
        self._queue: list[_Waiter] = []
        self._leading = False
        self.groups = 0
        """Transactions attempted so far (a refused group counts once, its retries each once more)."""

    def waiting(self) -> int:
        """Submissions queued and not yet taken into a group."""
        with self._lock:
            return len(self._queue)

    def submit(self, sub: Submission, api_key: str | None = None) -> Accepted:
        """Log one parsed submission; returns its receipt as `Recorder.submit` would for it alone."""
        me = _Waiter(sub, api_key)
        with self._lock:
            self._queue.append(me)
            lead = not self._leading
            self._leading = True
        if not lead:
            me.wake.wait()  # answered by a leader, or made the leader
        if not me.answered:
            self._lead()
        if me.error is not None:
            raise me.error
        assert me.accepted is not None
        return me.accepted

    def _lead(self) -> None:
        """Commit one group (the leader's own submission is in it), then pass the lead on."""
        with self._lock:
            group, self._queue = self._queue[: self.max_group], self._queue[self.max_group :]
        try:
            self._commit(group)
        finally:
            for w in group:  # nobody may wait forever, whatever went wrong
                if not w.answered:
                    w.answer(error=RuntimeError("group commit failed without an answer"))
            with self._lock:
                if self._queue:
                    self._queue[0].wake.set()  # the next leader takes the queue, itself included
                else:
                    self._leading = False

    def _commit(self, group: list[_Waiter]) -> None:
        by_key: dict[str | None, list[_Waiter]] = defaultdict(list)
        for w in group:  # Recorder.submit checks one API key per call
            by_key[w.api_key].append(w)
        for api_key, members in by_key.items():
            self.groups += 1
            try:
                answers = self.recorder.submit([w.sub for w in members], api_key)
            except InputError as exc:
                if len(members) == 1:
                    members[0].answer(error=exc)
                else:
                    self._one_by_one(members, api_key)
            except Exception as exc:  # the database is down, say: every member gets the error
                for w in members:
                    w.answer(error=exc)
            else:
                for w, accepted in zip(members, answers, strict=True):
                    w.answer(accepted)

    def _one_by_one(self, members: list[_Waiter], api_key: str | None) -> None:
        for w in members:
            self.groups += 1
            try:
                (accepted,) = self.recorder.submit([w.sub], api_key)
            except Exception as exc:
                w.answer(error=exc)
            else:
                w.answer(accepted)
