"""Why pylibbpf's load differs from libbpf 1.5's: every known cause, and how a row is matched.

Each cause names the pylibbpf code responsible (today's module, and where the layering
refactor moves it), what libbpf 1.5 does instead (functions of tools/lib/bpf/libbpf.c in
linux-6.12), and the proposed fix. ``classify`` maps one differing row to its causes by
the facts the run recorded (messages, errnos, the first differing instruction).
"""

from __future__ import annotations

import re
from typing import Any

from fidelity_diff import normalise

Row = dict[str, Any]

CAUSES: dict[str, dict[str, Any]] = {
    "internal-map-names": {
        "text": """
Global-data maps get another kernel name. pylibbpf: `object.py` `internal_map_name()`
(moving to `loader/maps.py`) keeps `15 - len(section)` characters of the object name, so
`test_global_data` gives `test_global.bss`. libbpf: `internal_map_name()` reserves a suffix
slot of `max(7, len(section))` characters (capped at 15) and keeps
`min(15 - slot, len(obj->name))` of the object name: `test_glo.bss`, `test_glo.data`,
`test_glo.rodata`, `test_gl.kconfig` (`.rodata` and longer suffixes already agree; names
with a second dot, `.data.foo`, `.rodata.str1.1`, are the section name alone in both).
Users see these names in `bpftool map` and pin and look maps up by them.
**Fix**: `prefix = min(15 - max(7, len(section)), len(object_name))`, suffix capped at 15
characters; test: the `MapInfo.name` of `.bss`, `.data`, `.rodata`, `.kconfig` of an object
with a long name.""",
    },
    "rodata-bind": {
        "text": """
The maps a program holds differ by the read-only data maps libbpf binds to it.
pylibbpf: `object.py` `BpfObject._load_programs` (moving to `loader/programs.py`) binds only
the `.rodata` map to each loaded program (`Program.bind_map`). libbpf:
`bpf_object_load_prog()` binds, after a successful load and when `FEAT_PROG_BIND_MAP` holds,
every map whose `libbpf_type` is `LIBBPF_MAP_RODATA`, in map order: `.rodata` and every
`.rodata.*` section, which includes clang's merged-constant sections `.rodata.str1.1`
(bpf_printk formats, string literals) and `.rodata.cst16`. The kernel then lists them in
the program's `map_ids` (after the maps its instructions use) and keeps them alive with it.
**Fix**: bind every read-only data map (`.rodata`, `.rodata.*`) in map order; test: the map
names `ProgramInfo` reports for a program of an object with `bpf_printk` and a `.rodata`
variable.""",
    },
    "no-license": {
        "text": """
Objects without a `license` section are refused at open. pylibbpf: `elf.py` `parse_object`
(moving to `spec/elf.py`) raises `ObjectError` "has no 'license' section". libbpf:
`bpf_object__elf_collect()` calls `bpf_object__init_license()` only when the section exists;
otherwise `obj->license` stays the empty string, the object opens, and programs load with
license "" (non-GPL): a program calling a GPL-only helper is then refused by the verifier
(EINVAL), the others load. Type-only objects (`btf__core_reloc_*`, `btf_dump_test_case_*`,
no programs) open and "load" (nothing to do).
**Fix**: default the license to "" (`ObjectSpec.license`), keep the hint in `LoadError` when
the verifier refuses a GPL-only helper with an empty license; test: an object without a
license section loads a program that calls no GPL-only helper, and its `ProgramInfo`
says `gpl_compatible == False`.""",
    },
    "errno-prepare": {
        "text": """
A failure found while preparing a load has no errno (or another one than libbpf's).
pylibbpf raises `ObjectError` without errno from `ksyms.py` `KsymResolver.resolve` (kfunc or
typed ksym not in vmlinux/modules; typeless ksym not in kallsyms; moving to
`loader/externs.py`) and from `struct_ops.py` (missing struct_ops type; moving to
`spec/struct_ops.py` + `loader/`), and `LoadError(ESRCH)` from `object.py`
`BpfObject._attach_btf_id` for `freplace` without a target program. libbpf 1.5 returns:
**EINVAL** for any failure of a typed ksym or kfunc (`bpf_object__resolve_externs()` turns
every error of `bpf_object__resolve_ksyms_btf_id()` - "not found in kernel or module BTFs",
incompatible prototype - into -EINVAL), and for kconfig/kallsyms read failures;
**ESRCH** for a strong extern left unresolved after that ("extern '%s' (strong): not
resolved": typeless ksyms missing from kallsyms, unknown kconfig) and for a struct_ops type
missing from the kernel (`find_struct_ops_kern_types()`); **EINVAL** for `freplace`/BPF-target
programs without `attach_prog_fd` (`libbpf_find_attach_btf_id()`: "attach program FD is not
set"); **ESRCH** for a missing kernel function of fentry/fexit/lsm/tp_btf
(`find_kernel_btf_id()`). libbpf also resolves externs before it initialises struct_ops
maps, so an object lacking both reports the extern (EINVAL).
**Fix**: give these errors libbpf's errno (ObjectError carries one: `ObjectError(msg,
errno.EINVAL)`), in libbpf's order (externs, then struct_ops); test: the errno of loading an
object with a missing kfunc (EINVAL), a missing strong typeless ksym (ESRCH), a missing
struct_ops type (ESRCH), and an `freplace` program without target (EINVAL).""",
    },
    "errno-open": {
        "text": """
Objects refused at open carry no errno. pylibbpf: `elf.py` (moving to `spec/elf.py`,
`spec/mapdefs.py`) raises `ObjectError` without errno. libbpf 1.5 fails `bpf_object__open()`
with: **ENOENT** for an extern without BTF ("failed to find BTF for extern",
`bpf_object__collect_externs()`; objects meant for static linking), **EOPNOTSUPP** for an
extern in an unknown section such as `.maps` (same function) and for a legacy `maps`
section (`bpf_object__elf_collect()`), **EINVAL** for a bad `pinning` value
(`parse_btf_map_def()`).
**Fix**: pass those errnos to `ObjectError`; test: the errno of opening each kind of
object.""",
    },
    "object-wide-externs": {
        "text": """
Object-wide steps run only for the programs being loaded. pylibbpf resolves an extern when
it links a program that uses it (`relocs.py` `_Linker.extern/kfunc` through
`BpfObject.extern`, moving to `spec/subprog.py` + `loader/externs.py`), so a kfunc or ksym
that only a program with `autoload = False` uses is never looked up. libbpf:
`bpf_object_load()` runs `bpf_object__resolve_externs()` for every extern of the object
before any program loads, whatever the programs' autoload, so a missing kfunc (EINVAL) or a
missing strong typeless ksym (ESRCH) fails the whole load. Where pylibbpf got further, the
program either loaded or was refused by the kernel (EPERM for fentry on this host, EACCES
from the verifier).
**Fix**: resolve every extern of the object in `load()` before loading programs (keep the
per-program linking using the resolved values); test: an object whose non-autoloaded
program calls a kfunc that does not exist fails to load with EINVAL.""",
    },
    "prog-array-init": {
        "text": """
A prog-array slot that names a program that is not loaded is skipped. pylibbpf:
`object.py` `BpfObject._fill_map_values` (moving to `loader/maps.py`) leaves the slot empty
when the program is not loaded. libbpf: `bpf_object_init_prog_arrays()` ->
`init_prog_array_slots()` updates each slot with `bpf_program__fd()` of its program, which
is -ENOENT (-2) for a program not loaded; the update fails with EBADF and so does the
load: "map 'jmp_table': failed to initialize slot [1] to prog 'classifier_1' fd=-2: -9"
(EBADF); the programs already loaded are unloaded.
**Fix**: fail the load with EBADF naming map, slot and program when a slot's program is not
loaded (the message can suggest loading it); test: loading an object whose prog-array
`values` names a program with `autoload = False` fails with EBADF.""",
    },
    "ringbuf-zero-size": {
        "text": """
A ring buffer without `max_entries` is created anyway. pylibbpf: `object.py`
`ringbuf_size()` (used by `BpfObject._make_map` and for inner maps; moving to
`loader/maps.py`) rounds 0 up to one page. libbpf: `adjust_ringbuf_sz()` (called from
`parse_btf_map_def` users at open and from `bpf_map__set_max_entries()`) keeps 0 ("if user
forgot to set any size, make sure they see error"), so map creation fails with EINVAL
("map 'ringbuf': failed to create: Invalid argument") unless the user sets a size before
load, as the selftests do. Other sizes round up the same way in both.
**Fix**: keep 0 as 0 so creation fails with EINVAL naming the map (with a hint to set
`max_entries`); test: loading an object whose ring buffer has no size fails with EINVAL,
and with `max_entries` set before load it succeeds.""",
    },
    "struct-ops-unreferenced": {
        "text": """
A `SEC("struct_ops")` program that no struct_ops map references is loaded. pylibbpf:
`object.py` (`BpfObject._load_programs`) loads it with no attach BTF id and the kernel
answers ENOTSUPP (524). libbpf: `bpf_object_load_prog()` refuses it first: "SEC(\\"struct_ops\\")
program isn't referenced anywhere, did you forget to use it?" (EINVAL). (libbpf also
re-derives struct_ops programs' autoload at load time, `bpf_object_adjust_struct_ops_autoload()`,
overriding what the user set; pylibbpf derives it at open.)
**Fix**: refuse such a program with EINVAL and libbpf's hint; derive struct_ops autoload at
load as libbpf does; test: loading an object with an unreferenced struct_ops program fails
with EINVAL.""",
    },
    "ksym-func-value": {
        "text": """
A function extern used as a value (`bpf_ksym_exists(kfunc)`, `&kernel_function`) is refused:
"extern 'X' is a function, used as a value". pylibbpf: `relocs.py` `_Linker.extern` (moving
to `spec/subprog.py`) accepts only kconfig, typed variables, kallsyms addresses and missing
weak externs in an `ld_imm64`. libbpf: `bpf_object__relocate_data()` (`RELO_EXTERN_LD64`)
writes a resolved typed ksym - a kfunc included - as `src_reg = BPF_PSEUDO_BTF_ID`,
`imm = kernel BTF id`, `imm[1] = module BTF fd` (0 for vmlinux); an unresolved weak one
(or a typeless ksym) as its kallsyms address, 0 when missing. The verifier accepts a
BTF_ID ld_imm64 of a kfunc and `bpf_ksym_exists()` then tests it. Tools that probe for a
kfunc with `bpf_ksym_exists()` cannot load at all.
**Fix**: in `_Linker.extern`, emit the kfunc's BTF id (and module BTF fd) as a
`PSEUDO_BTF_ID` ld_imm64, or 0 when an unresolved weak kfunc; test: the xlated
instructions of a program using `bpf_ksym_exists()` on a present and an absent weak kfunc,
and its result through `test_run`.""",
    },
    "usdt-uprobe-multi": {
        "text": """
USDT programs are loaded for another attach mode. pylibbpf: `sections.py` row `usdt+`
(expected_attach_type None) and `usdt.py` `attach_usdt` (one perf-event uprobe link per
location; moving to `spec/sections.py`, `links/usdt.py`). libbpf:
`libbpf_prepare_prog_load()` sets `expected_attach_type = BPF_TRACE_UPROBE_MULTI` for
`SEC_USDT` programs when `FEAT_UPROBE_MULTI_LINK` holds (6.6+), and `bpf_program__attach_usdt()`
then attaches every location through one uprobe-multi link with per-location cookies. The
kernel inlines a different `bpf_get_attach_cookie` for the two attach types, so the xlated
call differs (the rest of the stream is identical).
**Fix**: probe uprobe-multi links (`features.py`), load `usdt` programs with
`BPF_TRACE_UPROBE_MULTI` where supported, attach through `attach_uprobe_multi` with the
spec-id cookies, keep the perf-link path for older kernels; test: `ProgramInfo` of a loaded
usdt program and an event through a uprobe-multi USDT link.""",
    },
    "arena": {
        "text": """
An arena object fails to open or load in pylibbpf only. Arenas are modelled as libbpf does
(`spec/mapdefs.py` reads `__ulong(map_extra, ...)`, `spec/elf.py` the `.addr_space.1`
section, `spec/subprog.py` relocates `__arena` globals into the ARENA map, `loader/maps.py`
mmaps the arena before programs load, as `bpf_object__create_maps()`), so any such row is
a regression.""",
    },
    "arena-globals-at-end": {
        "deliberate": True,
        "text": """
The `__arena` globals' addresses differ. pylibbpf places them in the arena's last pages,
as libbpf 1.7 does (`init_arena_map_data()`: `arena_data_off = mmap_sz -
roundup(data_sz, page_sz)`, added to each `.addr_space.1` relocation), so that a NULL
arena pointer lands on a page nothing uses; libbpf 1.4-1.6 put them at offset 0. Only the
64-bit immediates that load those addresses differ (and, for an arena without `map_extra`,
every load is wherever the kernel mapped the arena, different from one run to the next).
**Deliberate**: follow libbpf 1.7.""",
    },
    "exceptions": {
        "text": """
BPF exceptions: the exception callback is missing. pylibbpf links only the sub-programs a
program calls (`relocs.py` `_Linker`). libbpf: `bpf_prog_assign_exc_cb()` reads the
`exception_callback:<name>` decl tag of the main program, appends that sub-program even
though nothing calls it, and its func_info marks it; the kernel refuses the program
otherwise (EINVAL).
**Fix**: collect `exception_callback:` decl tags and append the callback sub-program with
its func_info; test: a program that throws, run with `test_run`, returns the callback's
value.""",
    },
    "subprog-order": {
        "text": """
The same program, with its sub-programs in another order. pylibbpf: `relocs.py`
`_Linker.link` (moving to `spec/subprog.py`) appends sub-programs breadth first (each piece
is relocated after all pieces placed before it). libbpf: `bpf_object__reloc_code()` appends
a callee when it first meets the call and relocates it at once, recursively (depth
first). Both streams are correct; calls and callback addresses (`ld_imm64 PSEUDO_FUNC`)
differ, and so do the instruction indexes the verifier log and `bpftool prog dump`
show.
**Fix**: relocate each newly placed callee immediately (recursive or an explicit stack)
so the order is libbpf's; test: the xlated instructions of an object with nested
sub-programs equal the order libbpf produces.""",
    },
    "kfunc-flavour": {
        "text": """
kfunc externs with a `___flavour` suffix are not found. pylibbpf: `ksyms.py`
`KsymResolver.resolve` looks the kfunc up by its full name (`bpf_task_acquire___one`), so a
weak one resolves to "missing". libbpf: `bpf_object__resolve_ksym_func_btf_id()` looks it
up by `ext->essent_name` (the name without `___suffix`), as CO-RE does for types, then
checks the local prototype against the kernel's (`bpf_core_types_are_compat()`): an
incompatible weak flavour stays unresolved (0), an incompatible strong one is EINVAL. In
`task_kfunc_success`, `bpf_task_acquire___one` resolves and is called; `___two` and
`___three` (other prototypes) stay 0.
**Fix**: resolve kfuncs (and typed ksyms) by the name without `___flavour`, with the
prototype compatibility check (pylibbpf does neither today: a kfunc with the right name
and a wrong prototype is accepted, and the kernel is left to refuse it); needs
`ksym-func-value` for the `bpf_ksym_exists()` tests that usually guard flavours; test: the
xlated instructions of `test_task_kfunc_flavor_relo`-like program.""",
    },
    "syscall-wrapper": {
        "deliberate": True,
        "text": """
`LINUX_HAS_SYSCALL_WRAPPER` (used by `BPF_KSYSCALL`/`ksyscall`) is decided differently.
pylibbpf: `kconfig.py` `_has_syscall_wrapper()` looks for `__x64_sys_bpf` (and the other
arches' names) in `/proc/kallsyms`. libbpf: `probe_kern_syscall_wrapper()` tries to create
a kprobe on `__<arch>_sys_bpf` (perf kprobe PMU, else legacy tracefs) and says "no wrapper"
when that fails. This host has no kprobe PMU, so libbpf concludes "no wrapper" on a kernel
that has one, and its ksyscall programs read the arguments from the wrong registers;
pylibbpf reads the truth. **Deliberate**: keep pylibbpf's answer (it only differs where
libbpf's probe cannot run, and there ksyscall programs cannot attach anyway).""",
    },
    "unclassified": {
        "text": "A difference no rule above explains; look at it.",
    },
}

_EXTERN_NOT_FOUND = re.compile(
    r"not found in kernel or module BTFs|\(strong\): not resolved|not found in kernel BTF"
    r"|func_proto .* incompatible"
)


def _first_differing(ours: str, theirs: str) -> tuple[Any, Any]:
    a, b = normalise(ours), normalise(theirs)
    for x, y in zip(a, b, strict=False):
        if x != y:
            return x, y
    return None, None


def _only_address_loads_differ(ours: str, theirs: str) -> bool:
    """Whether the streams differ only in the values plain 64-bit loads put in registers
    (both halves of ``ld_imm64`` with no pseudo source): addresses, e.g. in an arena."""
    a, b = normalise(ours), normalise(theirs)
    if len(a) != len(b) or a == b:
        return False
    loads = {i + h for i, insn in enumerate(a) if insn[0] == 0x18 and insn[2] == 0 for h in (0, 1)}
    return all(i in loads for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y)


def _libbpf_internal_name(obj: str, real: str) -> str:
    suffix = min(max(7, len(real)), 15)
    prefix = 0 if "." in real[1:] else min(16 - suffix - 1, len(obj))
    return (obj[:prefix] + real)[:15]


def _map_name_causes(obj: str, ours: list[Any], theirs: list[Any]) -> list[str]:
    causes = []
    extra = [n for n in theirs if n not in ours and str(n).startswith(".rodata.")]
    theirs_rest = [n for n in theirs if n not in extra]
    if extra:
        causes.append("rodata-bind")
    if len(ours) == len(theirs_rest):
        renamed = [(a, b) for a, b in zip(ours, theirs_rest, strict=True) if a != b]
        if renamed and all(
            "." in str(a) and _libbpf_internal_name(obj, "." + str(a).split(".", 1)[1]) == b
            for a, b in renamed
        ):
            causes.append("internal-map-names")
        elif renamed:
            causes.append("unclassified")
    else:
        causes.append("unclassified")
    return causes


def _insn_causes(obj: str, row: Row) -> list[str]:
    section = row["section"].lstrip("?")
    if section.startswith(("ksyscall", "kretsyscall")):
        return ["syscall-wrapper"]
    if section.startswith("usdt"):
        return ["usdt-uprobe-multi"]
    ours, theirs = row["pylibbpf"]["prog"]["insns"], row["libbpf"]["prog"]["insns"]
    if "arena" in obj and _only_address_loads_differ(ours, theirs):
        return ["arena-globals-at-end"]
    x, y = _first_differing(ours, theirs)
    if x is None:
        return ["unclassified"]
    if y[0] == 0x85 and y[2] == 2 and x[0] == 0x18:  # libbpf calls a kfunc we left as 0
        return ["kfunc-flavour"]
    if (x[0] == 0x85 and x[2] == 1) or (x[0] == 0x18 and x[2] == 4):  # call / callback
        return ["subprog-order"]
    return ["unclassified"]


def _failure_causes(obj: str, row: Row) -> list[str]:
    ours, theirs = row["pylibbpf"], row["libbpf"]
    mine, libbpf = ours.get("msg") or "", theirs.get("msg") or ""
    if "has no 'license' section" in mine:
        return ["no-license"]
    if "failed to initialize slot" in libbpf:
        return ["prog-array-init"]
    if "failed to create: Invalid argument" in libbpf and (ours["ok"] or ours["stage"] == "load"):
        return ["ringbuf-zero-size"]
    if "isn't referenced anywhere" in libbpf:
        return ["struct-ops-unreferenced"]
    if "is a function, used as a value" in mine:
        return ["ksym-func-value"]
    if "arena" in obj or "addr_space" in mine:
        return ["arena"]
    if obj.startswith("exceptions"):
        return ["exceptions"]
    if ours["stage"] == "open" and theirs["stage"] == "open":
        return ["errno-open"]
    if _EXTERN_NOT_FOUND.search(libbpf) and (ours["ok"] or ours.get("errno") is not None):
        return ["object-wide-externs"]  # we got past externs: they were another program's
    if not ours["ok"] and not theirs["ok"] and ours.get("errno") != theirs.get("errno"):
        return ["errno-prepare"]
    return ["unclassified"]


def classify(obj: str, row: Row, fields: list[str]) -> list[str]:
    """The causes of one row's differences (fields as ``fidelity_diff.differences``)."""
    if "outcome" in fields or "errno" in fields:
        return _failure_causes(obj, row)
    causes: list[str] = []
    if "insns" in fields or "insn_count" in fields:
        causes += _insn_causes(obj, row)
    if "map_names" in fields:
        a, b = row["pylibbpf"]["prog"], row["libbpf"]["prog"]
        causes += _map_name_causes(obj, a["map_names"], b["map_names"])
    rest = set(fields) - {"insns", "insn_count", "map_names"}
    if rest - {"nr_line_info", "nr_func_info"} or (rest and not causes):
        causes.append("unclassified")  # line/func info counts follow the instructions
    return sorted(set(causes), key=list(CAUSES).index)
