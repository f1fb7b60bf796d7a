"""Batch operations on maps (MAP_*_BATCH): many elements per syscall, the fastest way to
read or write a whole map. ``Map`` inherits them from ``MapBatches``."""

from __future__ import annotations

import ctypes
import errno
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from . import syscall
from .errors import BpfError
from .spec.codec import Codec
from .uapi import Cmd

# Batch operations move at most this many elements per syscall by default; large enough to
# amortise the syscall, small enough to keep the transfer buffers modest.
DEFAULT_BATCH_CHUNK = 1 << 16


@dataclass(frozen=True)
class BatchData:
    """Raw result of a batch lookup: ``count`` keys and values, packed back to back."""

    keys: bytes
    values: bytes
    count: int


class MapBatches:
    """The batch half of ``Map`` (whose attributes it uses)."""

    key_size: int
    max_entries: int
    percpu: bool
    _what: str
    _slot_size: int
    _ncpus: int
    _key: Codec
    _value: Codec
    _raw_values: bool

    @property
    def fd(self) -> int:
        """The map's descriptor (``Map.fd``)."""
        raise NotImplementedError

    def _encode_value(self, value: Any) -> bytes:
        raise NotImplementedError

    def _decode_value(self, raw: bytes) -> Any:
        raise NotImplementedError

    def _batch_chunk(self, chunk: int | None) -> int:
        return max(1, min(chunk or DEFAULT_BATCH_CHUNK, self.max_entries or 1))

    def lookup_batch_raw(
        self, *, chunk: int | None = None, delete: bool = False, elem_flags: int = 0
    ) -> BatchData:
        """Every element in as few syscalls as possible, packed (the fastest way to read)."""
        cmd = Cmd.MAP_LOOKUP_AND_DELETE_BATCH if delete else Cmd.MAP_LOOKUP_BATCH
        value_size = self._slot_size * self._ncpus
        count = self._batch_chunk(chunk)
        token_size = max(self.key_size, 8)
        tokens = [ctypes.create_string_buffer(token_size), ctypes.create_string_buffer(token_size)]
        keys_out = bytearray()
        values_out = bytearray()
        total = 0
        first = True
        while True:
            keys = ctypes.create_string_buffer(count * self.key_size)
            values = ctypes.create_string_buffer(count * value_size)
            try:
                result = syscall.map_batch(
                    cmd,
                    self.fd,
                    keys=keys,
                    values=values,
                    count=count,
                    in_batch=None if first else tokens[0],
                    out_batch=tokens[1],
                    elem_flags=elem_flags,
                    what=self._what,
                )
            except BpfError as error:
                # A hash bucket larger than the buffer: the kernel asks for more room.
                if error.errno == errno.ENOSPC and count < (self.max_entries or count) * 2:
                    count *= 2
                    continue
                raise
            keys_out += keys.raw[: result.count * self.key_size]
            values_out += values.raw[: result.count * value_size]
            total += result.count
            if result.done:
                return BatchData(bytes(keys_out), bytes(values_out), total)
            tokens.reverse()
            first = False

    def lookup_batch(
        self, *, chunk: int | None = None, delete: bool = False
    ) -> list[tuple[Any, Any]]:
        """Every (key, value) pair through MAP_LOOKUP_BATCH, decoded."""
        data = self.lookup_batch_raw(chunk=chunk, delete=delete)
        keys = self._key.decode_many(data.keys, data.count)
        size = self._slot_size * self._ncpus
        if self._raw_values:
            values = [data.values[i * size : (i + 1) * size] for i in range(data.count)]
        else:
            values = [
                self._decode_value(data.values[i * size : (i + 1) * size])
                for i in range(data.count)
            ]
        return list(zip(keys, values, strict=True))

    def lookup_and_delete_batch(self, *, chunk: int | None = None) -> list[tuple[Any, Any]]:
        """Every (key, value) pair, removed as it is read (MAP_LOOKUP_AND_DELETE_BATCH)."""
        return self.lookup_batch(chunk=chunk, delete=True)

    def update_batch(
        self,
        keys: Iterable[Any] | bytes,
        values: Iterable[Any] | bytes,
        *,
        elem_flags: int = 0,
        chunk: int | None = None,
    ) -> int:
        """Update many elements; ``keys``/``values`` are sequences or packed buffers."""
        packed_keys = self._key.encode_many(keys)
        if isinstance(values, bytes | bytearray | memoryview) and not self.percpu:
            packed_values = self._value.encode_many(values)
        else:
            packed_values = b"".join(self._encode_value(v) for v in values)
        n = len(packed_keys) // self.key_size
        value_size = self._slot_size * self._ncpus
        if len(packed_values) != n * value_size:
            raise BpfError(
                f"{self._what}: update_batch got {n} keys but "
                f"{len(packed_values) // value_size} values",
                errno.EINVAL,
            )
        return self._batch_write(
            Cmd.MAP_UPDATE_BATCH, packed_keys, packed_values, n, elem_flags, chunk
        )

    def delete_batch(self, keys: Iterable[Any] | bytes, *, chunk: int | None = None) -> int:
        """Delete many keys (a sequence or a packed buffer); returns how many."""
        packed = self._key.encode_many(keys)
        return self._batch_write(
            Cmd.MAP_DELETE_BATCH, packed, None, len(packed) // self.key_size, 0, chunk
        )

    def _batch_write(
        self,
        cmd: Cmd,
        keys: bytes,
        values: bytes | None,
        n: int,
        elem_flags: int,
        chunk: int | None,
    ) -> int:
        step = chunk or DEFAULT_BATCH_CHUNK
        value_size = self._slot_size * self._ncpus
        done = 0
        while done < n:
            count = min(step, n - done)
            key_part = keys[done * self.key_size : (done + count) * self.key_size]
            value_part = None
            if values is not None:
                value_part = values[done * value_size : (done + count) * value_size]
            try:
                syscall.map_batch(
                    cmd,
                    self.fd,
                    keys=key_part,
                    values=value_part,
                    count=count,
                    elem_flags=elem_flags,
                    what=self._what,
                )
            except BpfError as error:
                partial = getattr(error, "batch_count", 0)
                error.message += f" (after {done + partial} of {n} elements)"
                raise
            done += count
        return done
