"""Boot the uncompressed kernel when we can: under TCG a bzImage spends ~10 s of every boot
in its own decompressor (measured: 16 s to the guest's first command with Debian's 6.1
bzImage, 6 s with its vmlinux). A kernel built with CONFIG_PVH carries an entry point QEMU
jumps to directly in an ELF vmlinux, so the runner unpacks the bzImage's payload once on
the host, caches it, and boots that; kernels without PVH (or with a payload compression
nothing here unpacks) boot as they are.
"""

from __future__ import annotations

import bz2
import hashlib
import lzma
import os
import shutil
import subprocess
import tempfile
import zlib
from pathlib import Path

_XEN_ELFNOTE_PHYS32_ENTRY = 18  # the PVH entry point note (name "Xen")


def bootable(image: Path, cache: Path) -> Path:
    """The file QEMU should boot for ``image``: its PVH vmlinux if there is one."""
    stat = image.stat()
    key = hashlib.sha256(f"{image}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()
    target = cache / "vmlinux" / f"{image.name}-{key[:16]}"
    refused = target.with_suffix(".no-pvh")
    if target.exists():
        return target
    if refused.exists():
        return image
    vmlinux = _payload(image.read_bytes())
    target.parent.mkdir(parents=True, exist_ok=True)
    if vmlinux is None or not has_pvh_entry(vmlinux):
        refused.touch()  # remembered: no second attempt at unpacking this image
        return image
    with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as tmp:
        tmp.write(vmlinux)
    os.replace(tmp.name, target)
    return target


def _payload(data: bytes) -> bytes | None:
    """The bzImage's compressed kernel, unpacked (setup header: payload_offset/length)."""
    if len(data) < 0x260 or data[0x202:0x206] != b"HdrS":
        return None
    protected_mode = ((data[0x1F1] or 4) + 1) * 512
    offset = int.from_bytes(data[0x248:0x24C], "little")
    length = int.from_bytes(data[0x24C:0x250], "little")
    payload = data[protected_mode + offset : protected_mode + offset + length]
    try:
        if payload.startswith(b"\xfd7zXZ\x00") or payload.startswith(b"\x5d\x00\x00"):
            return lzma.LZMADecompressor().decompress(payload)
        if payload.startswith(b"\x1f\x8b"):
            return zlib.decompressobj(wbits=31).decompress(payload)  # trailing data is fine
        if payload.startswith(b"BZh"):
            return bz2.BZ2Decompressor().decompress(payload)
        if payload.startswith(b"\x28\xb5\x2f\xfd"):
            return _zstd(payload[:-4])  # the build appends the unpacked size (le32)
    except (lzma.LZMAError, zlib.error, OSError, EOFError, subprocess.CalledProcessError):
        return None
    return None


def _zstd(payload: bytes) -> bytes | None:
    tool = shutil.which("zstd")
    if tool is None:  # Python's zstd arrives in 3.14; without the tool, boot the bzImage
        return None
    return subprocess.run([tool, "-dc"], input=payload, capture_output=True, check=True).stdout


def has_pvh_entry(elf: bytes) -> bool:
    """Whether a 64-bit little-endian ELF has the Xen PHYS32_ENTRY note QEMU boots from."""
    if elf[:4] != b"\x7fELF" or elf[4] != 2 or elf[5] != 1:
        return False
    phoff = int.from_bytes(elf[32:40], "little")
    phentsize = int.from_bytes(elf[54:56], "little")
    for index in range(int.from_bytes(elf[56:58], "little")):
        header = elf[phoff + index * phentsize : phoff + (index + 1) * phentsize]
        if int.from_bytes(header[0:4], "little") != 4:  # PT_NOTE
            continue
        offset = int.from_bytes(header[8:16], "little")
        end = offset + int.from_bytes(header[32:40], "little")
        while offset + 12 <= end:
            namesz, descsz, kind = (
                int.from_bytes(elf[offset + i : offset + i + 4], "little") for i in (0, 4, 8)
            )
            name = elf[offset + 12 : offset + 12 + namesz].rstrip(b"\0")
            if name == b"Xen" and kind == _XEN_ELFNOTE_PHYS32_ENTRY:
                return True
            offset += 12 + (namesz + 3) // 4 * 4 + (descsz + 3) // 4 * 4
    return False
