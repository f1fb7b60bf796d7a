"""The kinds of CO-RE relocation records in ``.BTF.ext`` (``enum bpf_core_relo_kind``):
apart from ``ext.py`` so that parsing an object without CO-RE does not build the enum."""

from __future__ import annotations

from enum import IntEnum


class CoreReloKind(IntEnum):
    FIELD_BYTE_OFFSET = 0
    FIELD_BYTE_SIZE = 1
    FIELD_EXISTS = 2
    FIELD_SIGNED = 3
    FIELD_LSHIFT_U64 = 4
    FIELD_RSHIFT_U64 = 5
    TYPE_ID_LOCAL = 6
    TYPE_ID_TARGET = 7
    TYPE_EXISTS = 8
    TYPE_SIZE = 9
    ENUMVAL_EXISTS = 10
    ENUMVAL_VALUE = 11
    TYPE_MATCHES = 12
