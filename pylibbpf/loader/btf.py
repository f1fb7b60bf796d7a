"""The object's BTF in the kernel: fixed up the way libbpf does (DATASEC sizes and
offsets, extern and hidden-symbol linkage, no ``.ksyms`` section), sanitized for what this
kernel accepts, and uploaded (BTF_LOAD) so maps and programs can refer to it."""

from __future__ import annotations

from ..btf import Kind, Type
from ..btf.encode import (
    KernelBtfSupport,
    encode,
    fixup_datasecs,
    fixup_externs,
    fixup_hidden,
    raw_types,
    sanitize,
)
from ..errors import ObjectError
from ..logs import module_logger
from ..spec.objspec import ObjectSpec
from ..syscall import features, kernel_btf
from ..syscall.fd import OwnedFd

try:  # hashlib's own blake2b, without hashlib's import of OpenSSL
    from _blake2 import blake2b
except ImportError:  # a Python built without it
    from hashlib import blake2b

TYPE_CHECKING = False  # (typing is for the type checker: not imported at run time)
if TYPE_CHECKING:
    from typing import Any

# Object BTF as uploaded (fixed up, sanitized, encoded), by content: repeated loads of one
# object in a process skip the work. Bounded; oldest entries go first.
_KERNEL_BTF_CACHE: dict[tuple[Any, ...], bytes] = {}

logger = module_logger(__name__)


_DATASEC = Kind.DATASEC  # (a global: an attribute of the enum class is slower to read)


def _drop_ksyms_datasec(t: Type) -> Type:
    """The kernel has no section for ksyms: keep the id, describe nothing."""
    if t.kind == _DATASEC and t.name == ".ksyms":
        return Type(t.id, Kind.STRUCT, "", size=0)
    return t


def _section_layout(
    spec: ObjectSpec, kconfig_layout: dict[str, tuple[int, int]], kconfig_size: int
) -> tuple[dict[str, int], dict[str, int]]:
    """Section sizes and variable offsets, ``.kconfig``'s included, for the DATASECs."""
    sizes = dict(spec.section_sizes)
    offsets = {name: offset for (_section, name), offset in spec.object_symbols.items()}
    if kconfig_layout:
        sizes[".kconfig"] = kconfig_size
        offsets.update({name: off for name, (off, _) in kconfig_layout.items()})
    return sizes, offsets


def btf_for_kernel(
    spec: ObjectSpec,
    kconfig_layout: dict[str, tuple[int, int]],
    kconfig_size: int,
    support: KernelBtfSupport,
) -> bytes:
    """The object's BTF as it is uploaded: fixed up, sanitized for ``support``, encoded.
    Pure (the fuzzer runs it without a kernel); malformed BTF is an ObjectError."""
    btf = spec.btf
    if btf is None:
        return b""
    sizes, offsets = _section_layout(spec, kconfig_layout, kconfig_size)
    # Only what the fix-ups may change is decoded; other records go back verbatim.
    types, strings = raw_types(btf, support)
    types = fixup_externs(fixup_datasecs(types, sizes, offsets))
    types = fixup_hidden(types, spec.hidden_symbols)
    types = [_drop_ksyms_datasec(t) for t in types]
    return encode(sanitize(types, support), strings_base=strings)


def upload_object_btf(
    spec: ObjectSpec, kconfig_layout: dict[str, tuple[int, int]], kconfig_size: int
) -> tuple[OwnedFd | None, str]:
    """Upload the object's BTF: (its fd, "") or, where the kernel has no BTF support or
    refuses it, (None, why). As libbpf, loading goes on without BTF: maps and simple
    programs still load, and a program that needs BTF fails quoting this reason."""
    btf = spec.btf
    if btf is None or not features.has_btf():
        return None, ""
    support = features.btf_support()
    try:
        sizes, offsets = _section_layout(spec, kconfig_layout, kconfig_size)
        key = (
            blake2b(btf.raw_data).digest(),
            tuple(sorted(sizes.items())),
            tuple(sorted(offsets.items())),
            spec.hidden_symbols,
            support,
        )
        raw = _KERNEL_BTF_CACHE.get(key)
        if raw is None:  # the same object loaded again: reuse the fixed-up encoding
            raw = btf_for_kernel(spec, kconfig_layout, kconfig_size, support)
            if len(_KERNEL_BTF_CACHE) >= 32:
                _KERNEL_BTF_CACHE.pop(next(iter(_KERNEL_BTF_CACHE)))
            _KERNEL_BTF_CACHE[key] = raw
        return kernel_btf.load_btf(raw, name=f"{spec.name} BTF"), ""
    except ObjectError as error:
        logger.warning(
            "%s: the kernel refused the object's BTF; loading without it: %s", spec.name, error
        )
        return None, str(error)
