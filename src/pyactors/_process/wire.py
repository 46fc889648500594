"""What crosses the pipe between a process and its workers: length-prefixed frames of pickled
messages, values pickled with cloudpickle (protocol 5), and large binary buffers out of band
through shared memory files, so that a 64 MB array costs one memcpy and one mapping instead of
a trip through the pipe in 64 KB pieces.

A shared memory file belongs to the process that wrote it. The receiver maps it (a private,
copy-on-write mapping: its buffer is its own) and, once nothing uses the buffer any more,
gives it back (a "drop" message); the writer keeps what is given back (up to KEEP_MOST bytes)
and writes its next buffer of the same size there: the kernel's work of allocating, mapping
and freeing 16,384 pages per 64 MiB, which is most of the cost, is paid once, not per call.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import io
import itertools
import mmap
import os
import pickle
import queue
import struct
import sys
import threading
import types
import weakref
from typing import ClassVar

import cloudpickle

from .. import _core
from .._actor import ActorHandle, named

PROTOCOL = 5
# Buffers at least this big go through shared memory; smaller ones ride in the frame.
OUT_OF_BAND_MIN = 1 << 20
SHM_DIR = "/dev/shm"
SHM_PREFIX = "pyactors-"
KEEP_MOST = 256 << 20  # bytes of given-back shared memory a process keeps to write again
# A copy into shared memory of at least two COPY_PARTs is split over up to COPY_THREADS
# threads: one core copies ~5 GB/s here, two ~10 (measured: 64 MiB in 12.8 ms, 6.3 ms).
COPY_PART = 8 << 20
COPY_THREADS = min(4, os.cpu_count() or 1)
_HEADER = struct.Struct("<I")
# What one read of a pipe asks for: what a pipe holds (64 KiB, Linux's default), since no read
# returns more. Asking for more costs an mmap, an mremap and an munmap per read (the buffer is
# past malloc's 128 KiB threshold), each munmap a TLB shootdown on the process's other CPUs.
READ_SIZE = 64 << 10
_counter = itertools.count()


def _shm_available() -> bool:
    return os.path.isdir(SHM_DIR) and os.access(SHM_DIR, os.W_OK)


_SHM = _shm_available()


def _code_reduce(code: types.CodeType):
    # cloudpickle replaces the file name of code it pickles by value with "<dynamic-code>";
    # kept, a remote traceback shows the lines of the user's own file.
    rebuild, args = _cloudpickle_code_reduce(code)
    return rebuild, tuple(code.co_filename if arg == "<dynamic-code>" else arg for arg in args)


_cloudpickle_code_reduce = cloudpickle.Pickler.dispatch_table[types.CodeType]


def _decorated(obj):
    """The ActorClass or RemoteFunction that `obj` (a class or function) became under its
    own name, or None: what pickle can name instead of copying `obj` by value."""
    found = named(obj)
    inner = getattr(found, "_cls", None) or getattr(found, "_function", None)
    return found if inner is obj else None


def _undecorated(decorated):
    return getattr(decorated, "_cls", None) or decorated._function


class _Pickler(cloudpickle.Pickler):
    dispatch_table: ClassVar[collections.ChainMap] = collections.ChainMap(
        {types.CodeType: _code_reduce}, cloudpickle.Pickler.dispatch_table
    )

    def __init__(self, stream, exports, **options):
        super().__init__(stream, **options)
        self.exports = exports

    def reducer_override(self, obj):
        # Refs and handles cross as references to this process's (see crossing.py).
        if type(obj) is _core.ObjectRef and self.exports is not None:
            return self.exports.export_ref(obj)
        if type(obj) is ActorHandle and self.exports is not None:
            return self.exports.export_handle(obj)
        # The class or function under an @remote of an importable module: by reference.
        if isinstance(obj, (type, types.FunctionType)):
            decorated = _decorated(obj)
            if decorated is not None:
                return _undecorated, (decorated,)
        return super().reducer_override(obj)


class Payload:
    """A value for the other side: its pickle and the shared memory files holding its large
    buffers (each consumed, and removed, by the one receiver) - or, when nothing in it can
    change (_core.frozen()), the value itself and None: it is pickled once, with the frame
    that carries it, and unpickled with it."""

    __slots__ = ("data", "segments")

    def __init__(self, data, segments: tuple | None):
        self.data = data
        self.segments = segments

    def __reduce__(self):
        return Payload, (self.data, self.segments)

    def available(self) -> bool:
        """Whether its segments are still there (a receiver removes them as it reads)."""
        return self.segments is None or all(
            os.path.exists(os.path.join(SHM_DIR, name)) for name in self.segments
        )

    def discard(self) -> None:
        """Remove the segments of a payload that will never be read."""
        for name in self.segments or ():
            _unlink(name)
            _kept.forget(name)


def _pid_namespace() -> int:
    # Named after it too: containers sharing /dev/shm (docker --ipc=host) each have their
    # own pids, so only a file of this namespace's says whether its writer is alive.
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return 0


_NAMESPACE = _pid_namespace()


def segment_prefix(pid: int | None = None) -> str:
    return f"{SHM_PREFIX}{_NAMESPACE}-{os.getpid() if pid is None else pid}-"


def dumps(value, exports=None, shared: bool = False) -> Payload:
    """Pickle `value`; raises what pickling raises (nothing is left behind then). Refs and
    handles in it are exported through `exports` (crossing.Exports), or do not pickle.
    `shared`: it may be read more than once, by several processes (a task's function, an
    actor's class): its receivers neither give its files back nor remove them; its writer
    removes them (discard(), or the sweep of its files at its end)."""
    if _core.frozen(value, 3):  # pickled with its frame, which is the C pickler's too
        return Payload(value, None)
    if _core.plain(value, 3):  # nothing for cloudpickle: the C pickler
        return Payload(pickle.dumps(value, PROTOCOL), ())
    segments: list[str] = []

    def out_of_band(buffer: pickle.PickleBuffer) -> bool:
        try:
            raw = buffer.raw()
        except BufferError:  # not contiguous: in band
            return True
        if raw.nbytes < OUT_OF_BAND_MIN or not _SHM:
            return True
        name = _write_segment(raw, shared)
        if name is None:  # no room in /dev/shm: through the pipe, then
            return True
        segments.append(name)
        return False

    stream = io.BytesIO()
    try:
        _Pickler(stream, exports, protocol=PROTOCOL, buffer_callback=out_of_band).dump(value)
    except BaseException:
        for name in segments:
            _unlink(name)
        raise
    return Payload(stream.getvalue(), tuple(segments))


def loads(payload: Payload, freed: queue.SimpleQueue | None = None):
    """The value `payload` holds. Its shared memory files are given back once nothing uses
    them: put in `freed` as (True, name), for the writer to be told; without `freed`, they
    are removed at once."""
    segments = payload.segments
    if segments is None:  # unpickled with its frame
        return payload.data
    if not segments:  # no comprehension to run (a frame of its own before 3.12)
        return pickle.loads(payload.data)
    buffers = [_map_segment(name, freed) for name in segments]
    return pickle.loads(payload.data, buffers=buffers)


def picklable(value) -> None:
    """Raise what pickling `value` would raise, without writing its large buffers anywhere
    (nor exporting the refs and handles in it)."""
    if not _core.plain(value, 3):
        _Pickler(io.BytesIO(), _NoExports(), protocol=PROTOCOL, buffer_callback=_nowhere).dump(
            value
        )


def _nowhere(buffer: pickle.PickleBuffer) -> bool:
    return False  # out of band, and nowhere: only whether it pickles matters


class _NoExports:
    """crossing.Exports' interface, exporting nothing: for picklable()."""

    def export_ref(self, ref) -> tuple:
        return type(None), ()

    def export_handle(self, handle) -> tuple:
        return type(None), ()


SHARED = "s"  # the mark of a shared payload's file names (after the writer's pid)


def _shared(name: str) -> bool:
    return name[name.rindex("-") + 1] == SHARED


def _write_segment(raw: memoryview, shared: bool = False) -> str | None:
    """A new shared memory file holding `raw` (one given back, if there is one of its size),
    or None if /dev/shm has no room for it, even once those kept are removed."""
    if not shared:
        name = _kept.write(raw)
        if name is not None:
            return name
    name = f"{segment_prefix()}{SHARED if shared else ''}{next(_counter)}"
    return name if _write_new(name, raw) or (_kept.clear() and _write_new(name, raw)) else None


def _write_new(name: str, raw: memoryview) -> bool:
    path = os.path.join(SHM_DIR, name)
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    try:
        # write(2), not a mapping and a memcpy: the kernel fills the file's pages as it
        # allocates them, where a mapping takes a page fault per 4 KiB page (16,384 for 64 MiB).
        write_all(fd, raw.cast("B"))
    except OSError:  # ENOSPC, most likely (a container's small /dev/shm)
        _unlink(name)
        return False
    except BaseException:
        _unlink(name)
        raise
    finally:
        os.close(fd)
    return True


# madvise(MADV_POPULATE_READ/WRITE) (Linux 5.14; not every Python names them): every page of
# a mapping mapped in one call, rather than a page fault each as the buffer is used.
_POPULATE_READ = getattr(mmap, "MADV_POPULATE_READ", 22 if sys.platform == "linux" else None)
_POPULATE_WRITE = getattr(mmap, "MADV_POPULATE_WRITE", 23 if sys.platform == "linux" else None)


def _populate(mapped: mmap.mmap, advice: int | None) -> None:
    if advice is not None:
        with contextlib.suppress(OSError):  # an older kernel: the pages fault in as used
            mapped.madvise(advice)


def _map_segment(name: str, freed: queue.SimpleQueue | None) -> memoryview:
    # A private (copy-on-write) mapping: the receiver gets a writable buffer without a copy,
    # and its writes never reach the file, which its writer may fill again once given back.
    path = os.path.join(SHM_DIR, name)
    shared = _shared(name)
    fd = os.open(path, os.O_RDONLY)
    try:
        if freed is None and not shared:  # nobody to give it back to: removed now (the
            os.unlink(path)  # mapping keeps its pages)
        size = os.fstat(fd).st_size
        mapped = mmap.mmap(fd, size, access=mmap.ACCESS_COPY)
    finally:
        os.close(fd)
    _populate(mapped, _POPULATE_READ)
    if freed is not None and not shared:
        # The callback is C only (partial, SimpleQueue.put): it runs wherever the buffer's
        # last reference goes, inside the core's completion of a call too, where Python code
        # could let another thread in.
        for key, ref in list(_lent.items()):  # (list(): one step, as other threads map too)
            if ref() is None:
                _lent.pop(key, None)
        _lent[name] = weakref.ref(mapped, functools.partial(freed.put, (True, name)))
    return memoryview(mapped)


# The weak references that give back the other processes' files this process maps, by name.
_lent: dict[str, weakref.ref] = {}


def _forked() -> None:
    """A fork was made (on this process's side): a child's copy of a mapping would see its
    file written again once given back, so none of those mapped now is (dropped, a weak
    reference never calls back); they stay until their writer's files are swept."""
    _lent.clear()


def _fork_child() -> None:
    _kept.reset()  # what it kept and lent is its parent's
    _lent.clear()  # as is what it maps: its parent gives it back


def _close(mapped: mmap.mmap | None) -> None:
    if mapped is not None:
        with contextlib.suppress(BufferError):  # still exported: unmapped when collected
            mapped.close()


def _copy(destination: mmap.mmap, raw: memoryview) -> None:
    size = raw.nbytes
    parts = min(COPY_THREADS, size // COPY_PART)
    if parts < 2:
        _core.copy_into(destination, raw)
        return
    into = memoryview(destination)
    step = -(-size // parts)
    helpers = [
        threading.Thread(
            target=_core.copy_into,
            args=(into[start : start + step], raw[start : start + step]),
            name="pyactors:copy",
        )
        for start in range(step, size, step)
    ]
    try:
        for helper in helpers:
            helper.start()
        _core.copy_into(into[:step], raw[:step])
    finally:
        for helper in helpers:
            if helper.ident is not None:
                helper.join()
        into.release()


class _Kept:
    """The shared memory files this process wrote and their receivers gave back, each with
    this process's (shared) mapping of it, ready to be written again under a new name (a
    payload's name is never reused: Payload.available() stays true only while its file holds
    what it was written with)."""

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        """Keep nothing (nor any lock another thread held)."""
        self._lock = threading.Lock()
        self._files: dict[str, tuple[int, mmap.mmap | None]] = {}  # kept name -> size, mapping
        self._mapped: dict[str, mmap.mmap] = {}  # a lent file's name -> this side's mapping
        self._bytes = 0

    def write(self, raw: memoryview) -> str | None:
        """A kept file of `raw`'s size, renamed and holding `raw`, or None if none is kept."""
        size = raw.nbytes
        with self._lock:
            kept = next((n for n, (s, _) in reversed(self._files.items()) if s == size), None)
            if kept is None:
                return None
            _, mapped = self._files.pop(kept)
            self._bytes -= size
        name = f"{segment_prefix()}{next(_counter)}"
        try:
            os.rename(os.path.join(SHM_DIR, kept), os.path.join(SHM_DIR, name))
            if mapped is None:  # written by write(2) the first time: mapped once, now
                fd = os.open(os.path.join(SHM_DIR, name), os.O_RDWR)
                try:
                    mapped = mmap.mmap(fd, size)
                finally:
                    os.close(fd)
                _populate(mapped, _POPULATE_WRITE)
            _copy(mapped, raw)
        except OSError:  # removed meanwhile (shutdown() sweeps them): a new file, then
            _unlink(name)
            _close(mapped)
            return None
        except BaseException:
            _unlink(name)
            raise
        with self._lock:
            # Those the receiver removed rather than gave back (it had nobody to give them
            # to: see loads()) are let go here.
            for gone in [n for n in self._mapped if not os.path.exists(os.path.join(SHM_DIR, n))]:
                _close(self._mapped.pop(gone))
            self._mapped[name] = mapped
        return name

    def give_back(self, names) -> None:
        """The receiver is done with these files of this process's: kept to be written again
        (the oldest removed past KEEP_MOST bytes)."""
        prefix = segment_prefix()
        for name in names:
            if not name.startswith(prefix):
                continue  # not this process's (not known to happen)
            kept = f"{prefix}kept-{next(_counter)}"
            with self._lock:
                mapped = self._mapped.pop(name, None)
            try:
                size = os.stat(os.path.join(SHM_DIR, name)).st_size
                if size > KEEP_MOST:
                    raise OSError("too big to keep")
                os.rename(os.path.join(SHM_DIR, name), os.path.join(SHM_DIR, kept))
            except OSError:  # discarded meanwhile, or not to be kept
                _unlink(name)
                _close(mapped)
                continue
            evicted = []
            with self._lock:
                self._files[kept] = (size, mapped)
                self._bytes += size
                while self._bytes > KEEP_MOST:
                    oldest = next(iter(self._files))
                    old_size, old_mapping = self._files.pop(oldest)
                    self._bytes -= old_size
                    evicted.append((oldest, old_mapping))
            for oldest, old_mapping in evicted:
                _unlink(oldest)
                _close(old_mapping)

    def forget(self, name: str) -> None:
        """A lent file removed unread (Payload.discard)."""
        with self._lock:
            mapped = self._mapped.pop(name, None)
        _close(mapped)

    def clear(self, lent: bool = False) -> bool:
        """Remove every kept file (to make room; with `lent`, as the process's files are
        swept, forget its mappings of those lent too). Whether any was kept."""
        with self._lock:
            files, self._files, self._bytes = self._files, {}, 0
            mapped_lent: dict[str, mmap.mmap] = {}
            if lent:
                mapped_lent, self._mapped = self._mapped, {}
        for name, (_, mapped) in files.items():
            _unlink(name)
            _close(mapped)
        for mapped in mapped_lent.values():
            _close(mapped)
        return bool(files)


_kept = _Kept()
give_back = _kept.give_back
os.register_at_fork(after_in_parent=_forked, after_in_child=_fork_child)


def clear_kept() -> None:
    _kept.clear(lent=True)


def _unlink(name: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(os.path.join(SHM_DIR, name))


def sweep_segments(prefix: str) -> None:
    """Remove every segment whose name starts with `prefix` (those of a dead process)."""
    for name in _segments():
        if name.startswith(prefix):
            _unlink(name)


def sweep_the_dead() -> None:
    """Remove the segments of this pid namespace's processes that no longer exist (one
    killed by a signal, and its workers, removed nothing): when a process hub starts."""
    for name in _segments():
        namespace, _, rest = name[len(SHM_PREFIX) :].partition("-")
        pid = rest.partition("-")[0]
        if namespace == str(_NAMESPACE) and pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
            with contextlib.suppress(OSError):  # another user's: not this process's to remove
                os.unlink(os.path.join(SHM_DIR, name))


def _segments() -> list[str]:
    if not _SHM:
        return []
    try:
        return [name for name in os.listdir(SHM_DIR) if name.startswith(SHM_PREFIX)]
    except OSError:
        return []


# -- frames -----------------------------------------------------------------------------------


def frame(*messages: tuple) -> bytes:
    """One frame holding `messages`: one pickle for a batch (the pickler's setup and the
    length prefix are paid once: 64 calls cost 4.3k instructions each instead of 7.9k)."""
    # A message ending with a Payload (a call's arguments, a result: most do) goes as a list
    # ending with its two fields (FrameReader makes the tuple again): a Payload pickled as
    # itself costs a Python-level __reduce__ on this side and a class look-up on the other.
    batch = []
    for message in messages:  # a loop, not a comprehension: no frame of its own to make
        last = message[-1]
        batch.append(
            [*message[:-1], last.data, last.segments] if type(last) is Payload else message
        )
    data = pickle.dumps(batch, PROTOCOL)
    return _HEADER.pack(len(data)) + data


class FrameReader:
    """Splits what a pipe delivers into messages."""

    __slots__ = ("_buffer",)

    def __init__(self):
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list:
        buffer = self._buffer
        buffer += data
        messages = []
        start = 0
        end = len(buffer)
        while end - start >= 4:
            (size,) = _HEADER.unpack_from(buffer, start)
            if end - start - 4 < size:
                break
            for sent in pickle.loads(buffer[start + 4 : start + 4 + size]):
                if type(sent) is list:  # see frame()
                    messages.append((*sent[:-2], Payload(sent[-2], sent[-1])))
                else:
                    messages.append(sent)
            start += 4 + size
        if start:
            del buffer[:start]
        return messages


def write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
