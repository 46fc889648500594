"""What crosses the pipe between a process and its workers: length-prefixed frames of pickled
messages, values pickled with cloudpickle (protocol 5), and large binary buffers out of band
through shared memory files, so that a 64 MB array costs one memcpy and one mapping instead of
a trip through the pipe in 64 KB pieces."""

from __future__ import annotations

import collections
import contextlib
import io
import itertools
import mmap
import os
import pickle
import struct
import sys
import types
from typing import ClassVar

import cloudpickle

from .. import _core
from .._actor import ActorHandle, named

PROTOCOL = 5
# Buffers at least this big go through shared memory; smaller ones ride in the frame.
OUT_OF_BAND_MIN = 1 << 20
SHM_DIR = "/dev/shm"
SHM_PREFIX = "pyactors-"
_HEADER = struct.Struct("<I")
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
        # bytes never go out of band by themselves (only PickleBuffer-capable objects do): a
        # big one is pickled as bytes(<buffer>), so that it travels like a bytearray.
        if type(obj) is bytes:
            if len(obj) >= OUT_OF_BAND_MIN and _SHM:
                return bytes, (pickle.PickleBuffer(obj),)
            return NotImplemented
        # The class or function under an @remote of an importable module: by reference.
        if isinstance(obj, (type, types.FunctionType)):
            decorated = _decorated(obj)
            if decorated is not None:
                return _undecorated, (decorated,)
        return super().reducer_override(obj)


class Payload:
    """A value pickled for the other side: the pickle and the shared memory files holding its
    large buffers (each consumed, and removed, by the one receiver)."""

    __slots__ = ("data", "segments")

    def __init__(self, data: bytes, segments: tuple):
        self.data = data
        self.segments = segments

    def __reduce__(self):
        return Payload, (self.data, self.segments)

    def available(self) -> bool:
        """Whether its segments are still there (a receiver removes them as it reads)."""
        return all(os.path.exists(os.path.join(SHM_DIR, name)) for name in self.segments)

    def discard(self) -> None:
        """Remove the segments of a payload that will never be read."""
        for name in self.segments:
            _unlink(name)


def segment_prefix(pid: int | None = None) -> str:
    return f"{SHM_PREFIX}{os.getpid() if pid is None else pid}-"


def dumps(value, exports=None) -> Payload:
    """Pickle `value`; raises what pickling raises (nothing is left behind then). Refs and
    handles in it are exported through `exports` (crossing.Exports), or do not pickle."""
    if _plain(value, 3):  # nothing for cloudpickle to do: the C pickler, 8x faster
        return Payload(pickle.dumps(value, PROTOCOL), ())
    segments: list[str] = []

    def out_of_band(buffer: pickle.PickleBuffer) -> bool:
        try:
            raw = buffer.raw()
        except BufferError:  # not contiguous: in band
            return True
        if raw.nbytes < OUT_OF_BAND_MIN or not _SHM:
            return True
        segments.append(_write_segment(raw))
        return False

    stream = io.BytesIO()
    try:
        _Pickler(stream, exports, protocol=PROTOCOL, buffer_callback=out_of_band).dump(value)
    except BaseException:
        for name in segments:
            _unlink(name)
        raise
    return Payload(stream.getvalue(), tuple(segments))


_SCALARS = frozenset({type(None), bool, int, float, complex, str})
_PLAIN_MOST = 32  # items looked at before the general path is cheaper than looking on


def _plain(value, depth: int) -> bool:
    """Built-in scalars, small bytes, and small tuples, lists and dicts of them."""
    kind = type(value)
    if kind in _SCALARS:
        return True
    if kind is bytes:
        return len(value) < OUT_OF_BAND_MIN
    if not depth:
        return False
    # Loops rather than all() over a generator: this runs for every call's arguments.
    if kind is tuple or kind is list:
        if len(value) > _PLAIN_MOST:
            return False
        for item in value:  # noqa: SIM110  (the loop, as said above)
            if not _plain(item, depth - 1):
                return False
        return True
    if kind is dict:
        if len(value) > _PLAIN_MOST:
            return False
        for key, item in value.items():
            if type(key) is not str or not _plain(item, depth - 1):
                return False
        return True
    return False


def loads(payload: Payload):
    buffers = [_map_segment(name) for name in payload.segments]
    return pickle.loads(payload.data, buffers=buffers)


def _write_segment(raw: memoryview) -> str:
    name = f"{segment_prefix()}{next(_counter)}"
    path = os.path.join(SHM_DIR, name)
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    try:
        # write(2), not a mapping and a memcpy: the kernel fills the file's pages as it
        # allocates them, where a mapping takes a page fault per 4 KiB page (16,384 for 64 MiB).
        write_all(fd, raw.cast("B"))
    except BaseException:
        os.close(fd)
        _unlink(name)
        raise
    os.close(fd)
    return name


# madvise(MADV_POPULATE_READ) (Linux 5.14; not every Python names it): every page of a
# mapping mapped in one call, rather than a page fault each as the buffer is read.
_POPULATE_READ = getattr(mmap, "MADV_POPULATE_READ", 22 if sys.platform == "linux" else None)


def _map_segment(name: str) -> memoryview:
    # A private (copy-on-write) mapping: the receiver gets a writable buffer without a copy,
    # and the file is removed at once - the mapping keeps its pages until it is dropped.
    path = os.path.join(SHM_DIR, name)
    fd = os.open(path, os.O_RDONLY)
    try:
        os.unlink(path)
        size = os.fstat(fd).st_size
        mapped = mmap.mmap(fd, size, access=mmap.ACCESS_COPY)
        if _POPULATE_READ is not None:
            with contextlib.suppress(OSError):  # an older kernel: the pages fault in as read
                mapped.madvise(_POPULATE_READ)
    finally:
        os.close(fd)
    return memoryview(mapped)


def _unlink(name: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(os.path.join(SHM_DIR, name))


def sweep_segments(prefix: str) -> None:
    """Remove every segment whose name starts with `prefix` (those of a dead process)."""
    if not _SHM:
        return
    try:
        names = os.listdir(SHM_DIR)
    except OSError:
        return
    for name in names:
        if name.startswith(prefix):
            _unlink(name)


# -- frames -----------------------------------------------------------------------------------


def frame(message: tuple) -> bytes:
    last = message[-1]
    if type(last) is Payload:  # a call's arguments, a result: most messages end with one
        # Sent as a list ending with its two fields (FrameReader makes the tuple again): a
        # Payload pickled as itself names its class, which costs an import look-up on either
        # side, about 3 us each, more than the rest of a small message.
        message = [*message[:-1], last.data, last.segments]  # type: ignore[assignment]
    data = pickle.dumps(message, PROTOCOL)
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
            message = pickle.loads(buffer[start + 4 : start + 4 + size])
            if type(message) is list:  # see frame()
                message = (*message[:-2], Payload(message[-2], message[-1]))
            messages.append(message)
            start += 4 + size
        if start:
            del buffer[:start]
        return messages


def write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
