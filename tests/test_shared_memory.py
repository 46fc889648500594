"""Large buffers between a process and its workers go through shared memory files, which the
writer fills again once the reader has given them back. What either side still holds must never
change under it; what it is given must be exactly what was sent. Each worker reports what its
own process saw: the bytes, and which file its argument's buffer maps (/proc/self/maps)."""

import contextlib
import errno
import functools
import os
import queue
import time
import warnings

import numpy as np
import pytest

import pyactors as ray
from pyactors._process import wire

SIZE = 2 * wire.COPY_PART  # big enough to be copied by more than one thread


@functools.cache
def _offsets(size: int) -> np.ndarray:
    return (np.arange(size) % 251).astype(np.uint8)  # a period no copy's split divides


def pattern(i: int, size: int = SIZE) -> np.ndarray:
    # Every byte depends on its offset and on i: a misplaced or stale part cannot pass.
    return _offsets(size) + np.uint8(i)


def backing_file(address: int) -> tuple[int, str]:
    """The inode and path of the file mapped at `address` in this process."""
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split(maxsplit=5)
            start, end = (int(part, 16) for part in fields[0].split("-"))
            if start <= address < end:
                return int(fields[4]), fields[5].strip() if len(fields) > 5 else ""
    raise LookupError(f"nothing is mapped at {address:#x}")


@ray.remote(process=True)
class Reader:
    def __init__(self):
        self.kept = []

    def inspect(self, array, i):
        """Whether `array` is pattern(i), and the file its buffer maps."""
        # (Not array.ctypes: it holds the array in a reference cycle, freed only by the
        # cyclic collector.)
        address = array.__array_interface__["data"][0]
        return bool(np.array_equal(array, pattern(i, array.size))), backing_file(address)

    def scribble(self, array, i):
        same = bool(np.array_equal(array, pattern(i, array.size)))
        array[:] = 255  # its own copy: writable, and nobody else's
        return same

    def keep_and_echo(self, array):
        self.kept.append(array)
        return array

    def kept_intact(self):
        return [bool(np.array_equal(a, pattern(i, a.size))) for i, a in enumerate(self.kept)]


def given_back() -> list[str]:
    prefix = wire.segment_prefix() + "kept-"
    return [name for name in os.listdir(wire.SHM_DIR) if name.startswith(prefix)]


def wait_until_given_back(count: int = 1) -> None:
    # The worker gives a buffer back when its call has let go of it, a moment after the result
    # (a message of its own, with no reply to wait for): this waits for it to arrive.
    deadline = time.monotonic() + 10
    while len(given_back()) < count:
        assert time.monotonic() < deadline, "the worker never gave its argument's file back"
        time.sleep(0.005)


def test_an_argument_of_the_same_size_reuses_the_file_its_reader_gave_back():
    reader = Reader.remote()
    files = []
    for i in range(5):
        same, (inode, path) = ray.get(reader.inspect.remote(pattern(i), i))
        assert same, f"call {i}: the worker did not get the bytes sent"
        assert wire.segment_prefix() in path
        files.append(inode)
        wait_until_given_back()
    assert len(set(files)) == 1, f"a new file per call: inodes {files}"


def test_a_reader_writing_into_its_buffer_changes_nothing_that_is_sent_later():
    reader = Reader.remote()
    for i in range(4):
        sent = pattern(i)
        assert ray.get(reader.scribble.remote(sent, i)), f"call {i} got the last call's 255s"
        assert np.array_equal(sent, pattern(i)), "the caller's array changed"
        wait_until_given_back()


def test_buffers_still_held_on_either_side_are_never_written_again():
    reader = Reader.remote()
    results = []
    for i in range(3):  # the worker keeps each argument; this process keeps each result
        results.append(ray.get(reader.keep_and_echo.remote(pattern(i))))
        wait_until_given_back(0)
    assert given_back() == [], "an argument the worker holds was given back"
    del results[0]  # its file goes back to the worker, which writes the next result there
    results.extend(ray.get(reader.keep_and_echo.remote(pattern(i))) for i in range(3, 6))
    assert ray.get(reader.kept_intact.remote()) == [True] * 6
    for result, i in zip(results, range(1, 6), strict=True):
        assert np.array_equal(result, pattern(i)), f"the result of call {i} changed"


def test_a_process_keeps_at_most_keep_most_bytes_of_given_back_files(monkeypatch):
    monkeypatch.setattr(wire, "KEEP_MOST", 3 * wire.OUT_OF_BAND_MIN)
    reader = Reader.remote()
    sizes = [wire.OUT_OF_BAND_MIN + k * 4096 for k in range(5)]  # five sizes, none reusable
    for i, size in enumerate(sizes):
        _, (_, path) = ray.get(reader.inspect.remote(pattern(i, size), i))
        deadline = time.monotonic() + 10
        while os.path.exists(path):  # until it is given back (renamed, or removed past the cap)
            assert time.monotonic() < deadline, "the worker never gave its argument's file back"
            time.sleep(0.005)
    # Each given back is kept, and the oldest removed past KEEP_MOST, one after the other.
    deadline = time.monotonic() + 10
    while not 0 < kept_bytes() <= wire.KEEP_MOST:
        assert time.monotonic() < deadline, f"{kept_bytes()} bytes kept"
        time.sleep(0.005)


def kept_bytes() -> int:
    total = 0
    for name in given_back():
        with contextlib.suppress(FileNotFoundError):  # removed since it was listed
            total += os.path.getsize(os.path.join(wire.SHM_DIR, name))
    return total


def test_without_room_in_shared_memory_a_big_buffer_goes_through_the_pipe(monkeypatch):
    def full(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    reader = Reader.remote()
    monkeypatch.setattr(wire, "write_all", full)  # this process's writes of new files only
    same, (_, path) = ray.get(reader.inspect.remote(pattern(7), 7))
    assert same
    assert wire.SHM_DIR not in path, "the buffer still came through shared memory"


@pytest.mark.parametrize("size", [wire.OUT_OF_BAND_MIN, 3 * wire.COPY_PART + 1])
def test_sizes_that_split_unevenly_arrive_whole(size):
    reader = Reader.remote()
    for i in range(2):
        assert ray.get(reader.inspect.remote(pattern(i, size), i))[0]
        wait_until_given_back()


def test_buffers_mapped_when_the_process_forks_are_not_given_back():
    # A fork()ed child (multiprocessing's fork start method, in a method or here) has a copy
    # of each mapping: a file given back and written again would change under it.
    freed = queue.SimpleQueue()
    before, after = wire.dumps(pattern(4)), wire.dumps(pattern(5))  # written here, for once
    try:
        mapped_before = wire.loads(before, freed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # 3.12: fork() with threads
            pid = os.fork()
        if pid == 0:
            os._exit(0)
        assert os.waitpid(pid, 0)[1] == 0
        mapped_after = wire.loads(after, freed)
        del mapped_before, mapped_after
        given = []
        while not freed.empty():
            given.append(freed.get()[1])
        assert given == list(after.segments)
    finally:
        before.discard()
        after.discard()


def test_a_payload_several_processes_read_is_never_given_back_nor_removed_by_them():
    payload = wire.dumps(pattern(3), shared=True)  # a task's function, an actor's class
    freed = queue.SimpleQueue()
    first, second = wire.loads(payload, freed), wire.loads(payload, freed)
    assert np.array_equal(first, pattern(3)) and np.array_equal(second, pattern(3))
    del first, second
    assert freed.empty() and payload.available()
    payload.discard()  # its writer's to remove
    assert not payload.available()
