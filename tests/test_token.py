"""BPF tokens: a process in a user namespace, without CAP_BPF in the initial one, loads
and attaches a program with nothing but a token from a bpffs that root delegated to its
namespace — and the kernel refuses the same load without the token. Plus libbpf's rules
for which bpffs an object's token comes from, and mountinfo parsing (pure)."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import io
import json
import logging
import os
import socket
import traceback
from pathlib import Path
from typing import Any

import pytest

from pylibbpf import cli, introspect, syscall
from pylibbpf.errors import BpfError, BpfPermissionError
from pylibbpf.logs import set_print
from pylibbpf.maps import Map
from pylibbpf.object import BpfObject
from pylibbpf.syscall import features, mount, system
from pylibbpf.syscall.token import (
    ALL,
    TOKEN_PATH_ENV,
    Delegation,
    create_token,
    delegating_mounts,
    parse_delegation,
    parse_mountinfo,
    token_info,
)
from pylibbpf.uapi import AttachType, Cmd, MapType, ProgType

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18

MOUNTINFO = """\
22 1 0:21 / /proc rw,nosuid - proc proc rw
42 23 0:39 / /sys/fs/bpf rw,relatime - bpf bpf rw
77 23 0:52 / /run/my\\040bpf rw - bpf none rw,delegate_cmds=map_create:prog_load,\
delegate_maps=array:0x10000000000,delegate_progs=any,delegate_attachs=xdp
78 23 0:53 / /run/plain rw - bpf none rw,uid=1000
"""

# --------------------------------------------------------------------------- pure


def test_delegate_options_read_as_kernel_enums() -> None:
    options = "rw,delegate_cmds=map_create:prog_load:btf_load,delegate_maps=array"
    options += ",delegate_progs=socket_filter:xdp,delegate_attachs=any"
    delegation = parse_delegation(options)
    assert delegation.cmds == 1 << Cmd.MAP_CREATE | 1 << Cmd.PROG_LOAD | 1 << Cmd.BTF_LOAD
    assert delegation.maps == 1 << MapType.ARRAY
    assert delegation.progs == 1 << ProgType.SOCKET_FILTER | 1 << ProgType.XDP
    assert delegation.attachs == ALL
    assert delegation.names("progs") == ["socket_filter", "xdp"]
    assert delegation.names("attachs") == ["any"]
    assert not parse_delegation("rw,relatime,mode=700").delegates


def test_mountinfo_finds_delegating_bpffs(tmp_path: Path) -> None:
    mounts = parse_mountinfo(MOUNTINFO)
    assert [m.path for m in mounts] == ["/sys/fs/bpf", "/run/my bpf", "/run/plain"]
    delegated = mounts[1].delegation
    assert delegated.maps == 1 << MapType.ARRAY | 1 << 40
    assert delegated.names("maps") == ["array", hex(1 << 40)]
    assert delegated.attachs == 1 << AttachType.XDP
    info = tmp_path / "mountinfo"
    info.write_text(MOUNTINFO)
    assert [m.path for m in delegating_mounts(str(info))] == ["/run/my bpf"]


# --------------------------------------------------------------------------- kernel


def _require_tokens() -> None:
    if not features.has_bpf_token():
        pytest.skip("this kernel has no BPF tokens (TOKEN_CREATE needs Linux 6.9+)")


@pytest.mark.root
def test_no_token_in_the_initial_user_namespace() -> None:
    """A delegating bpffs made in the initial namespace gives no token (the kernel's
    rule), and an object told to use one fails its load naming itself."""
    _require_tokens()
    with (
        mount.fsopen("bpf") as context,
        mount.DelegateOptions().apply(context.fd) as detached,
        pytest.raises(BpfError) as refused,
    ):
        create_token(detached.fd)
    assert refused.value.errno == errno.EOPNOTSUPP
    assert "initial user namespace" in str(refused.value)


@pytest.mark.root
def test_token_path_is_mandatory_and_empty_disables(
    bpf_object: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _require_tokens()
    path = bpf_object("token_socket")
    with (
        BpfObject.open(path, token_path="/sys/fs/bpf") as obj,
        pytest.raises(BpfError, match="object 'token_socket'") as refused,
    ):
        obj.load()
    assert refused.value.errno == errno.EOPNOTSUPP
    monkeypatch.setenv(TOKEN_PATH_ENV, "/sys/fs/bpf")
    with BpfObject.open(path) as obj, pytest.raises(BpfError):
        obj.load()
    monkeypatch.setenv(TOKEN_PATH_ENV, "")
    with BpfObject.open(path) as obj:
        obj.load()
        assert obj.token_fd is None
        assert obj.programs["count_datagrams"].loaded


# --------------------------------------------------------------------------- user namespace

_libc = ctypes.CDLL(None, use_errno=True)


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def _enter_user_and_mount_namespace() -> None:
    """Root of a new user namespace (uid 0 mapped to ours) with its own mounts: every
    capability there, none in the initial namespace."""
    uid, gid = os.geteuid(), os.getegid()  # as the initial namespace sees them
    if _libc.unshare(CLONE_NEWUSER) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWUSER)")
    _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", f"0 {uid} 1")
    _write("/proc/self/gid_map", f"0 {gid} 1")
    if _libc.unshare(CLONE_NEWNS) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS)")
    if _libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        raise OSError(ctypes.get_errno(), "mount --make-rprivate /")


def _child(channel: socket.socket, object_path: str, mount_point: str) -> dict[str, Any]:
    try:
        _enter_user_and_mount_namespace()
    except OSError as error:
        return {"skip": f"no user namespace for the test: {error}"}
    context = mount.fsopen("bpf")  # the superblock will belong to this user namespace
    socket.send_fds(channel, [b"context"], [context.fd])
    _, fds, _, _ = socket.recv_fds(channel, 16, 1)
    mount.move_mount(fds[0], mount_point)
    os.close(fds[0])
    result: dict[str, Any] = {}

    # Without the token the kernel refuses: this process has no CAP_BPF where it counts.
    with syscall.using_token(0):
        try:
            Map.create(MapType.ARRAY, 4, 8, 1).close()
            result["map_without_token"] = "created"
        except BpfPermissionError as error:
            result["map_without_token"] = errno.errorcode[error.errno or 0]
            result["map_without_token_says"] = str(error)
    os.environ[TOKEN_PATH_ENV] = ""  # libbpf's "no token"
    try:
        with BpfObject.open(object_path) as obj:
            obj.load()
        result["load_without_token"] = "loaded"
    except BpfPermissionError as error:
        result["load_without_token"] = errno.errorcode[error.errno or 0]
    del os.environ[TOKEN_PATH_ENV]

    result["listed"] = [vars(row) for row in introspect.tokens()]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        cli.main(["token", "list", "--json"])
    result["token_list"] = json.loads(printed.getvalue())

    # No path given: the delegating bpffs is found among this process's mounts.
    said: list[str] = []
    set_print(lambda _level, message: said.append(message), level=logging.INFO)
    with BpfObject.open(object_path) as obj:
        obj.load()
        set_print(None)
        result["said"] = [message for message in said if "BPF token" in message]
        assert obj.token_fd is not None
        try:
            allowed = token_info(obj.token_fd)
        except BpfError as error:  # kernels before 6.17 cannot describe a token
            result["token_allows"] = {"refused": error.message}
        else:
            result["token_allows"] = {k: allowed.names(k) for k in ("cmds", "maps", "progs")}
        receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with receiver, sender:
            receiver.bind(("127.0.0.1", 0))
            obj.programs["count_datagrams"].attach_socket(receiver)
            for size in (10, 20, 30):
                sender.sendto(b"x" * size, receiver.getsockname())
                assert len(receiver.recv(100)) == size
        result["packets"] = obj.variables["packets"].value
        result["bytes"] = obj.variables["bytes"].value
    return result


def _run_in_user_namespace(object_path: str, mount_point: str, options: Any) -> dict[str, Any]:
    parent, child = socket.socketpair()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        parent.close()
        try:
            result = _child(child, object_path, mount_point)
        except BaseException:
            result = {"error": traceback.format_exc()}
        try:
            child.sendall(b"result" + json.dumps(result).encode())
        finally:
            os._exit(0)
    child.close()
    with parent:
        message, fds, _, _ = socket.recv_fds(parent, 1 << 16, 1)
        if fds:  # the child's filesystem context: delegate from here, root in init ns
            try:
                with options.apply(fds[0]) as detached:
                    socket.send_fds(parent, [b"mount"], [detached.fd])
            finally:
                os.close(fds[0])
            message = b""
        while chunk := parent.recv(1 << 16):
            message += chunk
    os.waitpid(pid, 0)
    result: dict[str, Any] = json.loads(message.removeprefix(b"result"))
    return result


@pytest.mark.root
def test_user_namespace_loads_and_attaches_with_a_token(bpf_object: Any, tmp_path: Path) -> None:
    _require_tokens()
    options = mount.DelegateOptions(
        cmds="map_create:prog_load:btf_load", maps="array", progs="socket_filter", attachs="any"
    )
    result = _run_in_user_namespace(str(bpf_object("token_socket")), str(tmp_path), options)
    if "skip" in result:
        pytest.skip(result["skip"])
    assert "error" not in result, result.get("error")
    assert result["map_without_token"] == "EPERM"
    says = result["map_without_token_says"]  # its capabilities do not count there
    assert "ARRAY maps need CAP_BPF (or CAP_SYS_ADMIN), and this process is in a user" in says
    assert result["load_without_token"] == "EPERM"
    assert result["said"] == [  # logged (pylibbpf.syscall.token)
        f"object 'token_socket': loading with the BPF token of the bpffs at {str(tmp_path)!r}"
    ]
    if system.kernel_version() < (6 << 16 | 17 << 8):
        assert "bpf_token_info) is Linux 6.17+" in result["token_allows"]["refused"]
    else:
        assert result["token_allows"] == {
            "cmds": ["map_create", "prog_load", "btf_load"],
            "maps": ["array"],
            "progs": ["socket_filter"],
        }
    assert result["listed"] == [
        {
            "path": str(tmp_path),
            "allowed_cmds": ["map_create", "prog_load", "btf_load"],
            "allowed_maps": ["array"],
            "allowed_progs": ["socket_filter"],
            "allowed_attachs": ["any"],
        }
    ]
    assert result["token_list"] == [  # `pylibbpf token list --json`: bpftool's keys
        {
            "token_info": str(tmp_path),
            "allowed_cmds": ["map_create", "prog_load", "btf_load"],
            "allowed_maps": ["array"],
            "allowed_progs": ["socket_filter"],
            "allowed_attachs": ["any"],
        }
    ]
    # The filter ran in the kernel for each datagram this child sent (it sees each one
    # from its 8-byte UDP header on).
    assert result["packets"] == 3
    assert result["bytes"] == 10 + 20 + 30 + 3 * 8


def test_delegation_defaults_to_everything() -> None:
    assert mount.DelegateOptions() == mount.DelegateOptions("any", "any", "any", "any")
    assert Delegation(cmds=ALL).names("cmds") == ["any"]


@pytest.mark.root
def test_kernels_without_tokens_refuse_naming_the_release(bpf_object: Any) -> None:
    if features.has_bpf_token():
        pytest.skip("this kernel has BPF tokens (the refusal is for kernels before 6.9)")
    with (
        BpfObject.open(bpf_object("token_socket"), token_path="/sys/fs/bpf") as obj,
        pytest.raises(BpfError, match=r"6\.9"),
    ):
        obj.load()
