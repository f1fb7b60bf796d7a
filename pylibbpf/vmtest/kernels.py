"""Which kernel a guest boots: Debian's packaged kernels (fetched once, cached), the host's
own, or any kernel image with its modules.

A kernel is named on the command line as ``6.1`` / ``6.12`` (Debian's packages), ``host``
(``/boot/vmlinuz-$(uname -r)``), a path to a ``vmlinuz``/``bzImage``, or ``LABEL=PATH`` to
choose the label the results carry. Debian's packages are unpacked with ``dpkg -x`` into the
cache (nothing is installed, /boot is untouched).
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

# Debian 12's meta packages: each points at the current image package of that series.
DEBIAN_PACKAGES = {"6.1": "linux-image-amd64", "6.12": "linux-image-6.12-amd64"}


class KernelError(Exception):
    """A kernel that cannot be found, fetched or booted; the message says which and why."""


@dataclass(frozen=True)
class Kernel:
    """One kernel to boot: its image, the release it reports and where its modules are."""

    label: str  # what results are tagged with: test_x[6.1]
    image: Path
    release: str  # `uname -r` in the guest
    modules: Path | None  # lib/modules/<release>, or None when everything is built in

    @property
    def config(self) -> Path | None:
        """The kernel's config-<release> next to its image (guests see it in /boot)."""
        path = self.image.parent / f"config-{self.release}"
        return path if path.exists() else None


def default_cache() -> Path:
    return Path(os.environ.get("PYLIBBPF_VM_CACHE", Path.home() / ".cache" / "pylibbpf-vm"))


def resolve(name: str, cache: Path | None = None, modules: Path | None = None) -> Kernel:
    """The kernel ``name`` stands for (see the module docstring), fetched if need be."""
    label, _, path = name.partition("=") if "=" in name else ("", "", name)
    if path in DEBIAN_PACKAGES:
        kernel = debian_kernel(path, cache or default_cache())
    elif path == "host":
        release = platform.release()
        kernel = image_kernel(Path(f"/boot/vmlinuz-{release}"), modules, release=release)
        kernel = Kernel("host", kernel.image, kernel.release, kernel.modules)
    else:
        kernel = image_kernel(Path(path).expanduser().resolve(), modules)
    if label:
        kernel = Kernel(label, kernel.image, kernel.release, kernel.modules)
    return kernel


def image_kernel(image: Path, modules: Path | None = None, release: str = "") -> Kernel:
    """A kernel image on disk; its modules are found next to it unless given."""
    if not image.is_file():
        raise KernelError(f"kernel image {image} does not exist")
    if not os.access(image, os.R_OK):
        raise KernelError(f"kernel image {image} is not readable (try as root)")
    release = release or image_release(image)
    if modules is None:
        candidates = [
            image.parent.parent / "lib" / "modules" / release,  # an unpacked package
            image.parent / "lib" / "modules" / release,
            Path("/lib/modules") / release,
        ]
        modules = next((c for c in candidates if (c / "modules.order").exists()), None)
    elif not (modules / "modules.order").exists():
        raise KernelError(f"{modules} has no modules.order: not a lib/modules/<release> tree")
    if modules is not None:
        ensure_depmod(modules)
    return Kernel(release, image, release, modules)


def ensure_depmod(modules: Path) -> None:
    """Write modules.dep & co. where a package ships only the modules (Debian's postinst
    runs depmod; ``dpkg -x`` does not), so the guest's modprobe finds them."""
    if (modules / "modules.dep").exists():
        return
    base = modules.parent.parent.parent
    if modules.parent.parent.name != "lib" or shutil.which("depmod") is None:
        raise KernelError(f"{modules} has no modules.dep and depmod cannot make one")
    result = subprocess.run(
        ["depmod", "-b", str(base), modules.name], capture_output=True, text=True
    )
    if result.returncode:
        raise KernelError(f"depmod for {modules} failed: {result.stderr.strip()[-500:]}")


def image_release(image: Path) -> str:
    """The release string an x86 bzImage carries in its setup header (``uname -r``)."""
    with image.open("rb") as file:
        header = file.read(0x400)
        if len(header) < 0x210 or header[0x202:0x206] != b"HdrS":
            raise KernelError(f"{image} is not an x86 bzImage (no HdrS setup header)")
        offset = int.from_bytes(header[0x20E:0x210], "little")
        if offset == 0:
            raise KernelError(f"{image} does not record its version in its setup header")
        file.seek(offset + 0x200)
        text = file.read(256).split(b"\0")[0].decode(errors="replace")
    release = text.split(" ")[0]
    if not release:
        raise KernelError(f"{image} records an empty version string")
    return release


def debian_kernel(version: str, cache: Path) -> Kernel:
    """Debian's current image package for a series, unpacked into the cache on first use."""
    meta = DEBIAN_PACKAGES[version]
    package = _debian_package(meta, version, cache)
    target = cache / package
    if not _unpacked_image(target):
        _download_and_unpack(package, target, cache)
    image = _unpacked_image(target)
    if image is None:
        raise KernelError(f"{package} unpacked into {target} but holds no boot/vmlinuz-*")
    kernel = image_kernel(image, release=image.name.removeprefix("vmlinuz-"))
    return Kernel(version, kernel.image, kernel.release, kernel.modules)


def _unpacked_image(target: Path) -> Path | None:
    images = sorted(target.glob("boot/vmlinuz-*"))
    return images[0] if images else None


def _debian_package(meta: str, version: str, cache: Path) -> str:
    """The versioned package the meta package depends on; offline, the newest cached one."""
    try:
        out = subprocess.run(
            ["apt-cache", "depends", meta], capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        out = ""
    match = re.search(r"Depends: (linux-image-[^\s]+)", out)
    if match:
        return match.group(1)
    cached = sorted(
        path.name
        for path in cache.glob(f"linux-image-{version}.*")
        if _unpacked_image(path) is not None
    )
    if cached:
        return cached[-1]
    raise KernelError(
        f"cannot resolve Debian's {meta} (kernel {version}): apt-cache knows no such "
        "package and nothing is cached; on a non-Debian host pass --image PATH instead"
    )


def _download_and_unpack(package: str, target: Path, cache: Path) -> None:
    """``apt-get download`` + ``dpkg -x`` into a temporary directory, then one rename, so a
    concurrent runner never sees half a kernel."""
    for tool in ("apt-get", "dpkg"):
        if shutil.which(tool) is None:
            raise KernelError(f"fetching {package} needs {tool}; pass --image PATH instead")
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{package}-", dir=cache) as tmp:
        work = Path(tmp)
        os.chmod(work, 0o755)  # apt's sandbox user downloads into it
        fetched = subprocess.run(
            ["apt-get", "download", package], cwd=work, capture_output=True, text=True
        )
        debs = sorted(work.glob(f"{package}_*.deb"))
        if fetched.returncode or not debs:
            raise KernelError(f"apt-get download {package} failed:\n{fetched.stderr[-2000:]}")
        unpacked = work / "root"
        subprocess.run(["dpkg", "-x", str(debs[0]), str(unpacked)], check=True)
        for modules in unpacked.glob("lib/modules/*"):
            ensure_depmod(modules)
        try:
            unpacked.rename(target)
        except OSError:
            if _unpacked_image(target) is None:  # not a concurrent runner's copy: a real error
                raise
