"""What lives in a kernel module, through the BPF selftests' bpf_testmod (built by
vm-tests/testmod/build, inserted in the 6.12 VM by the ``bpf_testmod`` fixture; skipped
elsewhere): a module's kfunc called from a
program, fentry/fexit on a module's function (its BTF id with the module's BTF fd as
attach_btf_obj_fd), and a struct_ops type the module defines (the map's value type named
with the module's BTF fd, its programs attached to that BTF).
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import read_testmod_file, require_testmod

from pylibbpf import struct_ops
from pylibbpf.errors import LoadError
from pylibbpf.loader import BpfObject
from pylibbpf.syscall import btf_get_fd_by_id
from pylibbpf.syscall.fd import OwnedFd
from pylibbpf.syscall.kernel_btf import btf_object_info
from pylibbpf.uapi import MapFlags

pytestmark = pytest.mark.root

U64 = (1 << 64) - 1


@pytest.fixture(autouse=True)
def _testmod(request: pytest.FixtureRequest) -> None:
    require_testmod(request)


def _only(obj: BpfObject, *names: str) -> None:
    for name, program in obj.programs.items():
        program.autoload = name in names


def test_module_kfunc_runs(bpf_object: Callable[[str], Path]) -> None:
    """bpf_kfunc_call_test4 is bpf_testmod's: called through fd_array, it sums its args."""
    with BpfObject.open(bpf_object("testmod")) as obj:
        _only(obj, "call_kfunc")
        obj.load()
        assert obj.programs["call_kfunc"].test_run(bytes(64)).retval == 0
        assert obj.variables["kfunc_result"].value == -3 - 30 - 200 - 1000


def test_fentry_and_fexit_on_a_module_function(bpf_object: Callable[[str], Path]) -> None:
    """fentry/fexit on bpf_testmod_test_read (found in module BTF, not vmlinux) and
    fentry/bpf_testmod:bpf_testmod_fentry_test1 run when the module's file is read."""
    with BpfObject.open(bpf_object("testmod")) as obj:
        _only(obj, "enter_read", "exit_read", "enter_test1")
        obj.variables["reader_tgid"].value = os.getpid()
        obj.load()
        links = obj.attach()
        try:
            read_testmod_file(123)
        finally:
            for link in links:
                link.close()
        assert obj.variables["read_calls"].value == 1
        assert obj.variables["read_len"].value == 123
        assert obj.variables["read_ret"].value == -errno.EIO & U64  # it always fails
        assert obj.variables["test1_arg"].value == 1  # bpf_testmod_fentry_test1(1)


def test_set_attach_target_in_a_module(bpf_object: Callable[[str], Path]) -> None:
    """set_attach_target(None, "module:function") picks the module's function; naming
    vmlinux for it finds nothing."""
    with BpfObject.open(bpf_object("testmod")) as obj:
        _only(obj, "enter_test1")
        obj.programs["enter_test1"].set_attach_target(None, "vmlinux:bpf_testmod_fentry_test1")
        with pytest.raises(LoadError, match="no function of that name"):
            obj.load()
    with BpfObject.open(bpf_object("testmod")) as obj:
        _only(obj, "enter_test1")
        obj.programs["enter_test1"].set_attach_target(None, "bpf_testmod:bpf_testmod_fentry_test2")
        obj.variables["reader_tgid"].value = os.getpid()
        obj.load()
        with obj.programs["enter_test1"].attach():
            read_testmod_file(1)
        assert obj.variables["test1_arg"].value == 2  # bpf_testmod_fentry_test2(2, 3)


def _value_btf_name(btf_id: int) -> str:
    with OwnedFd(btf_get_fd_by_id(btf_id), f"BTF id {btf_id}") as fd:
        return btf_object_info(fd.fd, f"BTF id {btf_id}")[0]


def test_struct_ops_from_a_module_registers_and_runs(bpf_object: Callable[[str], Path]) -> None:
    """bpf_testmod_ops lives in bpf_testmod's BTF: the map names it with the module's BTF
    fd (BPF_F_VTYPE_BTF_OBJ_FD), and registering it runs test_1() and test_2(4, data)
    (bpf_dummy_reg). ``data`` sits at another offset in the kernel's struct than in the
    object's, so 21 arriving proves the value was laid out for the module's type."""
    with BpfObject.open(bpf_object("testmod_ops")) as obj:
        obj.struct_ops_value("testmod_ops").data = 21
        obj.load()
        ops_map = obj.maps["testmod_ops"]
        info = ops_map.info()
        assert info.flags & MapFlags.VTYPE_BTF_OBJ_FD
        assert _value_btf_name(info.btf_vmlinux_id) == "bpf_testmod"
        with ops_map.attach_struct_ops():
            assert obj.variables["test_1_result"].value == 0xDEADBEEF
            assert (obj.variables["test_2_a"].value, obj.variables["test_2_b"].value) == (4, 21)
            (entry,) = [e for e in struct_ops.list_registered() if e.id == info.id]
            assert entry.kernel_type == "bpf_testmod_ops"
            dumped = subprocess.run(  # read back through the module's BTF
                [sys.executable, "-m", "pylibbpf", "--json", "struct_ops", "dump", str(info.id)],
                capture_output=True,
                text=True,
                check=True,
            )
            # one named map: one JSON object, as the CLI prints it since the cli/ package
            assert json.loads(dumped.stdout)["data"] == 21
