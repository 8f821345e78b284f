"""The audit journal: the records of reads kept on local disk, moved into the audit log in batches (ADR 0018).

A read must not be answered before its AuditEvent would survive a crash of the server (issue 10,
ADR 0016). Committing a database transaction per read did that at the price of a transaction on
the read path: on SQLite the single writer's lock, six statements, and a commit that makes every
reader connection drop its page cache; on PostgreSQL a round trip. A line appended to a file
gives the same guarantee (once ``write`` returns, the bytes are the kernel's and outlive this
process; neither survives the loss of the machine before the next sync, as with ADR 0016), so:

- :meth:`Spool.append` writes the records as one checksummed line to this process's **segment**
  file (``seg-*.log``, held with an exclusive ``flock`` for its life) and returns: the request
  may be answered.
- A thread of its own (:meth:`Spool._run`) moves what was appended into the hash-chained log a
  batch at a time, after a short linger, through ``drain``: one transaction that appends the
  records and stores the segment's offset after them (``mark``), so a batch is in the log exactly
  once whatever moment a crash picks.
- A segment that is full is sealed and a new one begun; a sealed segment whose records are all in
  the log is deleted with its mark.
- **Recovery** (:meth:`Spool.recover`): a segment nobody holds locked belongs to a process that
  stopped without draining it (killed, crashed); its records after the stored mark are drained and
  the file deleted. The server does this at start and then now and again (a sibling process may
  have died), and ``ketnoi audit verify`` before it reads the log.
- **Back pressure**: when the log cannot be written (database down) records wait in memory and on
  disk; past ``max_pending`` of them, or when the file cannot be written, :class:`SpoolError`: the
  request is answered 503, never unaudited.

Line format: ``crc32-hex SP json NL``, the JSON an array of ``[recorded, request_id, patient,
event]`` (the event's bytes as text: they are compact UTF-8 JSON). A line that does not check out
ends a segment: only the tail being written when the machine stopped can be torn.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import socket
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ketnoi.store.auditlog import AuditEntry

log = logging.getLogger("ketnoi.audit")

Drain = Callable[[Sequence[AuditEntry], str, int], None]  # entries, segment name, its offset after them
Mark = Callable[[str], "int | None"]  # the offset of a segment that the log already holds
Forget = Callable[[str], None]  # the mark of a deleted segment is no longer needed

SEGMENT_BYTES = 4 << 20
MAX_PENDING = 100_000  # records waiting for the log before appends are refused
# How long the drainer waits for more records before a batch. With a batch one statement (ADR 0018,
# decision 3) 0.1 s beat 20 ms: the drainer's CPU per record 0.30 -> 0.12 ms, reads/s 8-15 % higher.
LINGER_S = 0.1
RETRY_S = 1.0  # after a failed drain
GIVE_UP_AFTER = 5  # failed drains in a row before the thread ends (the next append starts another)
IDLE_EXIT_S = 5.0  # the drainer thread ends when idle this long (started again by the next append)


class SpoolError(Exception):
    """The journal cannot take the records: the request they belong to must not be answered."""


def default_directory(dialect: str, location: str) -> Path | None:
    """Where a database's journal lives when not configured (``location``: ``Store.location``):
    beside an SQLite file; for PostgreSQL under ``var/audit-spool``, in a folder named after the
    database (never another's: recovery drains whatever it finds into the database it serves).
    None for an SQLite database in memory, which a crash takes with it anyway."""
    if dialect == "sqlite":
        return None if location in ("", ":memory:") else Path(location + "-audit-spool")
    return Path("var/audit-spool") / hashlib.sha256(location.encode()).hexdigest()[:16]


@dataclass(eq=False)
class _Segment:
    name: str
    path: Path
    fd: int
    size: int = 0
    pending: int = 0  # batches appended and not yet in the log
    sealed: bool = False


@dataclass(frozen=True, slots=True)
class _Batch:
    segment: _Segment
    entries: list[AuditEntry]
    end: int  # the segment's size after this batch's line


@dataclass
class _Progress:
    appended: int = 0  # batches
    drained: int = 0
    queue: list[_Batch] = field(default_factory=list)
    waiting: int = 0  # records in the queue


class Spool:
    """One process's journal in ``directory`` (see the module docstring)."""

    def __init__(
        self,
        directory: Path,
        drain: Drain,
        mark: Mark,
        forget: Forget,
        *,
        segment_bytes: int = SEGMENT_BYTES,
        max_pending: int = MAX_PENDING,
        linger_s: float = LINGER_S,
    ) -> None:
        self.directory = directory
        self._drain, self._mark, self._forget = drain, mark, forget
        self._segment_bytes, self._max_pending, self._linger_s = segment_bytes, max_pending, linger_s
        self._cond = threading.Condition()
        self._progress = _Progress()
        self._segment: _Segment | None = None
        self._sealed: list[_Segment] = []
        self._thread: threading.Thread | None = None
        self._urgent = False
        self._closed = False

    # ---- the request's side ----------------------------------------------------------------------
    def append(self, entries: Sequence[AuditEntry]) -> None:
        """Return once ``entries`` would survive a crash of this process; SpoolError if they cannot."""
        line = encode(entries)
        with self._cond:
            if self._closed:
                raise SpoolError("the audit journal is closed")
            if self._progress.waiting + len(entries) > self._max_pending:
                raise SpoolError(f"{self._progress.waiting} audit records are waiting for the log")
            segment = self._writable()
            _write_line(segment, line, self._seal)
            segment.pending += 1
            self._progress.queue.append(_Batch(segment, list(entries), segment.size))
            self._progress.waiting += len(entries)
            self._progress.appended += 1
            self._wake(notify=len(self._progress.queue) == 1)  # a lingering drainer is not hurried

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until what this process appended so far is in the log (a reader of the log in this
        process sees its own reads); False if that did not happen within ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            target = self._progress.appended
            self._urgent = True
            self._wake()
            while self._progress.drained < target:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def close(self, timeout: float = 10.0) -> None:
        """Drain what is left and delete this process's segments; what cannot be drained stays on
        disk for the next recovery."""
        drained = self.flush(timeout)
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            segments = [*self._sealed, *([self._segment] if self._segment else [])]
            self._segment, self._sealed = None, []
        for segment in segments:
            if drained and segment.pending == 0:
                self._retire(segment)
            else:
                os.close(segment.fd)  # the lock goes with it: the next recovery takes the file
        with contextlib.suppress(OSError):  # only when empty: a folder per database would pile up
            self.directory.rmdir()

    # ---- segments ---------------------------------------------------------------------------------
    def _writable(self) -> _Segment:
        current = self._segment
        if current is not None and not current.sealed and current.size < self._segment_bytes:
            return current
        if current is not None:
            self._seal(current)
        self._segment = _open_segment(self.directory)
        return self._segment

    def _seal(self, segment: _Segment) -> None:
        """No more lines go to ``segment`` (full, or a write to it failed part-way)."""
        if not segment.sealed:
            segment.sealed = True
            self._sealed.append(segment)
        if segment is self._segment:
            self._segment = None

    def _retire(self, segment: _Segment) -> None:
        """``segment`` is wholly in the log: delete the file, then its mark (a mark without its file
        is harmless; a file without its mark would be drained again)."""
        with contextlib.suppress(FileNotFoundError):
            segment.path.unlink()
        os.close(segment.fd)
        try:
            self._forget(segment.name)
        except Exception:  # a leftover mark costs a row, nothing else
            log.warning("could not forget the audit journal mark of %s", segment.name, exc_info=True)

    # ---- the drainer ------------------------------------------------------------------------------
    def _wake(self, notify: bool = True) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="ketnoi-audit-spool", daemon=True)
            self._thread.start()
        elif notify:
            self._cond.notify_all()

    def _run(self) -> None:
        failures = 0
        while True:
            batches = self._next_batches()
            if batches is None:
                return
            if self._move(batches, loud=failures == 0):
                failures = 0
                continue
            failures += 1
            if failures >= GIVE_UP_AFTER:  # the records wait on disk; the next append tries again
                with self._cond:
                    self._thread = None
                return
            time.sleep(RETRY_S)

    def _next_batches(self) -> list[_Batch] | None:
        """The queued batches, after the linger; None when the thread should end."""
        with self._cond:
            idle_since = time.monotonic()
            while not self._progress.queue:
                if self._closed or time.monotonic() - idle_since > IDLE_EXIT_S:
                    self._thread = None
                    return None
                self._cond.wait(IDLE_EXIT_S)
            if not self._urgent and not self._closed:
                self._cond.wait(self._linger_s)  # more records join this batch meanwhile
            self._urgent = False
            batches, self._progress.queue = self._progress.queue, []
            return batches

    def _move(self, batches: list[_Batch], *, loud: bool = True) -> bool:
        """Drain ``batches`` in order, one transaction per segment they span; on failure the rest
        go back to the head of the queue (False)."""
        done = 0
        try:
            for run in _runs(batches):
                self._drain([e for b in run for e in b.entries], run[0].segment.name, run[-1].end)
                self._settle(run)
                done += len(run)
            return True
        except Exception:
            report = log.exception if loud else log.warning
            report("moving %d audit records from the journal into the log failed", len(batches))
            with self._cond:
                self._progress.queue[:0] = batches[done:]
            return False

    def _settle(self, run: list[_Batch]) -> None:
        segment = run[0].segment
        with self._cond:
            segment.pending -= len(run)
            self._progress.drained += len(run)
            self._progress.waiting -= sum(len(b.entries) for b in run)
            retire = segment.sealed and segment.pending == 0 and segment in self._sealed
            if retire:
                self._sealed.remove(segment)
            self._cond.notify_all()
        if retire:
            self._retire(segment)

    # ---- recovery ---------------------------------------------------------------------------------
    def recover(self) -> int:
        """Drain the segments of processes that stopped without draining them; the records moved."""
        if not self.directory.is_dir():
            return 0
        for path in self.directory.glob("new-*"):  # created, never renamed: nothing was written to it
            _remove_unheld(path)
        moved = 0
        for path in sorted(self.directory.glob("seg-*.log")):
            moved += recover_segment(path, self._drain, self._mark, self._forget)
        return moved


def recover_segment(path: Path, drain: Drain, mark: Mark, forget: Forget) -> int:
    """Drain one segment if no live process holds it; the records moved (0 when it is held)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return 0
    try:
        if not _try_lock(fd) or not _same_file(fd, path):
            return 0  # a live process's segment, or one another recoverer just deleted
        name = path.name
        start = mark(name) or 0
        entries, end = decode(_read_from(fd, start))
        if entries:
            drain(entries, name, start + end)
            log.warning("moved %d audit records left in %s by a stopped process into the log", len(entries), path)
        path.unlink()
        forget(name)
        return len(entries)
    finally:
        os.close(fd)


# ---- the file format ------------------------------------------------------------------------------
def encode(entries: Sequence[AuditEntry]) -> bytes:
    payload = orjson.dumps([[e.recorded, e.request_id, e.patient, e.event.decode("utf-8")] for e in entries])
    return b"%08x %b\n" % (zlib.crc32(payload), payload)


def decode(data: bytes) -> tuple[list[AuditEntry], int]:
    """The records of the whole lines of ``data`` up to the first that does not check out, and the
    number of bytes they take."""
    entries: list[AuditEntry] = []
    at = 0
    while (newline := data.find(b"\n", at)) >= 0:
        records = _records(data[at:newline])
        if records is None:
            break
        entries.extend(records)
        at = newline + 1
    return entries, at


def _records(line: bytes) -> list[AuditEntry] | None:
    if len(line) < 10 or line[8:9] != b" ":
        return None
    payload = line[9:]
    try:
        if int(line[:8], 16) != zlib.crc32(payload):
            return None
        items: list[list[Any]] = orjson.loads(payload)
        return [AuditEntry(float(r), q, p, e.encode("utf-8")) for r, q, p, e in items]
    except (ValueError, TypeError):
        return None


def _runs(batches: list[_Batch]) -> list[list[_Batch]]:
    """``batches`` cut where the segment changes (each run drains with that segment's mark)."""
    runs: list[list[_Batch]] = []
    for batch in batches:
        if runs and runs[-1][0].segment is batch.segment:
            runs[-1].append(batch)
        else:
            runs.append([batch])
    return runs


def _open_segment(directory: Path) -> _Segment:
    """A new segment, locked before it takes its final name: a recoverer never sees it unlocked."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        name = f"seg-{socket.gethostname()}-{os.getpid()}-{time.time_ns()}.log"
        temporary = directory / f"new-{name}"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_EXCL, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.rename(temporary, directory / name)
    except OSError as exc:
        raise SpoolError(f"cannot open an audit journal file in {directory}: {exc}") from exc
    return _Segment(name, directory / name, fd)


def _write_line(segment: _Segment, line: bytes, seal: Callable[[_Segment], None]) -> None:
    try:
        written = os.write(segment.fd, line)
    except OSError as exc:
        seal(segment)  # whatever part reached the file ends it: later lines go to a new segment
        raise SpoolError(f"cannot write the audit journal {segment.path}: {exc}") from exc
    segment.size += written
    if written != len(line):
        seal(segment)
        raise SpoolError(f"the audit journal {segment.path} took {written} of {len(line)} bytes (disk full?)")


def _remove_unheld(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        if _try_lock(fd) and _same_file(fd, path):
            path.unlink()
    finally:
        os.close(fd)


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.fstat(fd).st_ino == path.stat().st_ino
    except FileNotFoundError:
        return False


def _read_from(fd: int, start: int) -> bytes:
    os.lseek(fd, start, os.SEEK_SET)
    chunks: list[bytes] = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)
