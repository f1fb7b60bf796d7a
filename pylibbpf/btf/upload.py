"""Compatibility: uploading BTF and fetching it by id moved to pylibbpf.syscall.kernel_btf
(``Btf.from_id`` fetches too).

Kept so that code written against the flat layout keeps importing; nothing in the pure
half imports it (it pulls in the syscall layer)."""

from __future__ import annotations

from ..syscall.kernel_btf import btf_object_info, fetch_btf, load_btf

__all__ = ["btf_object_info", "fetch_btf", "load_btf"]
