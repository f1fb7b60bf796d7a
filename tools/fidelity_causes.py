"""Why pylibbpf's load differs (or differed) from libbpf 1.5's: every known cause, and how
a row is matched.

Each cause says what differed, what libbpf 1.5 does (functions of tools/lib/bpf/libbpf.c in
linux-6.12), where pylibbpf now does the same and which test holds it there — or why it
stays (deliberate, open). ``classify`` maps one differing row to its causes by the facts
the run recorded (messages, errnos, the first differing instruction).
"""

from __future__ import annotations

import re
from typing import Any

from fidelity_diff import normalise

Row = dict[str, Any]

# status: "fixed" (the row rule stays, to catch a regression), "deliberate" (pylibbpf is
# right where libbpf is not), "open" (not fixed yet, and why). before: programs per corpus
# on 2026-11-28, the first run against libbpf 1.5 (selftests 70.3 % full agreement).
CAUSES: dict[str, dict[str, Any]] = {
    "internal-map-names": {
        "status": "fixed",
        "before": {"selftests": 432, "upstream": 2},
        "text": """
Global-data maps got another kernel name: pylibbpf kept `15 - len(section)` characters of
the object name (`test_global.bss`). libbpf's `internal_map_name()` reserves a suffix slot
of `max(7, len(section))` characters (capped at 15) and keeps
`min(15 - slot, len(obj->name))` of the object name: `test_glo.bss`, `test_glo.rodata`,
`test_gl.kconfig`; names with a second dot (`.data.foo`, `.rodata.str1.1`) are the section
name alone. Users see these names in `bpftool map`. **Fixed**: `loader/maps.py`
`internal_map_name()` (`obj.maps` keys stay the section names, as libbpf's
`bpf_object__find_map_by_name(".bss")`); tests `test_internal_map_names_follow_libbpfs_rule`,
`test_kernel_map_names_are_libbpfs` (MapInfo names).""",
    },
    "rodata-bind": {
        "status": "fixed",
        "before": {"selftests": 121, "realprogs": 2},
        "text": """
The maps a program holds differed by the read-only data maps libbpf binds to it: pylibbpf
bound `.rodata` only. libbpf's `bpf_object_load_prog()` binds, after a successful load and
when `FEAT_PROG_BIND_MAP` holds, every `LIBBPF_MAP_RODATA` map in map order: `.rodata` and
every `.rodata.*` (clang's `.rodata.str1.1` string constants, `.rodata.cst16`); the kernel
lists them in `map_ids`. **Fixed**: `loader/programs.py` `ProgramLoader.load_all`; test
`test_every_read_only_map_is_bound_to_the_program`.""",
    },
    "no-license": {
        "status": "fixed",
        "before": {"selftests": 166},
        "text": """
Objects without a `license` section were refused at open. libbpf's
`bpf_object__elf_collect()` reads the license only when the section exists; otherwise it
stays "", the object opens and its programs load as non-GPL (a GPL-only helper is then
refused by the verifier, EINVAL); type-only objects (`btf__core_reloc_*`) open and load.
**Fixed**: `spec/elf.py` `parse_object`, `loader/programs.py` `declare_programs` (license
"" passed as is); test `test_an_object_without_license_loads_as_non_gpl`
(`ProgramInfo.gpl_compatible`).""",
    },
    "errno-prepare": {
        "status": "fixed",
        "before": {"selftests": 194},
        "text": """
A failure found while preparing a load had no errno or another one than libbpf's. libbpf
1.5: **EINVAL** for any failure of a typed ksym or kfunc (`bpf_object__resolve_externs()`
turns every error of `bpf_object__resolve_ksyms_btf_id()` into -EINVAL) and for bad
kconfig values or an unknown `LINUX_*`; **ESRCH** for a strong extern left unresolved
(typeless ksym missing from kallsyms, unknown `CONFIG_*`) and for a struct_ops type the
kernel lacks (`find_struct_ops_kern_types()`); **EOPNOTSUPP** for a struct_ops member the
kernel's struct cannot hold (`bpf_map__init_kern_struct_ops()`); **EINVAL** for an
extension program without a target program (`libbpf_find_attach_btf_id()`). Externs are
resolved before struct_ops, so an object lacking both reports the extern. **Fixed**:
`loader/externs.py` `KsymResolver.resolve_all`, `spec/kconfig.py` `fill_kconfig`,
`spec/struct_ops.py`, `loader/programs.py` `_attach_btf_id`; tests
`test_missing_kfunc_is_einval_for_the_whole_object`,
`test_missing_strong_kernel_symbol_is_esrch`, `test_missing_struct_ops_type_is_esrch`,
`test_load_time_refusals_have_libbpfs_errno`.""",
    },
    "errno-open": {
        "status": "fixed",
        "before": {"selftests": 11},
        "text": """
Objects refused at open carried no errno. libbpf 1.5 fails `bpf_object__open()` with
**ENOENT** for an extern BTF does not place in a section (`bpf_object__collect_externs()`:
objects meant for static linking), **EOPNOTSUPP** for an extern in another section than
`.kconfig`/`.ksyms` (`.maps`) and for a legacy `maps` section, **EINVAL** for a bad
`pinning` (`parse_btf_map_def()`). **Fixed**: `spec/elf.py` `_externs`, `parse_object`,
`spec/mapdefs.py`; test `test_open_refusals_have_libbpfs_errno`.""",
    },
    "object-wide-externs": {
        "status": "fixed",
        "before": {"selftests": 57},
        "text": """
Externs were resolved only for the programs being loaded, so a missing kfunc used only by
a program with `autoload = False` went unnoticed. libbpf's `bpf_object_load()` runs
`bpf_object__resolve_externs()` for every extern of the object before any program loads.
**Fixed**: `BpfObject.prepare()` resolves every extern first (`loader/externs.py`
`KsymResolver.resolve_all`, in libbpf's order: typed by name, then kallsyms); test
`test_missing_kfunc_is_einval_for_the_whole_object`.""",
    },
    "prog-array-init": {
        "status": "fixed",
        "before": {"selftests": 72, "realprogs": 3},
        "text": """
A prog-array `values` slot naming a program that is not loaded was left empty. libbpf's
`init_prog_array_slots()` updates the slot with `bpf_program__fd()` (-ENOENT for a program
not loaded), the update fails with EBADF and so does the load ("failed to initialize slot
[1] to prog ..."). **Fixed**: `loader/maps.py` `MapCreator.fill_prog_arrays` (EBADF,
naming map, slot and program); map-in-map slots are filled right after map creation
(`fill_map_slots`, libbpf's `init_map_in_map_slots()`); test
`test_prog_array_slot_of_a_program_not_loaded_is_ebadf`.""",
    },
    "ringbuf-zero-size": {
        "status": "fixed",
        "before": {"selftests": 9},
        "text": """
A ring buffer without `max_entries` was rounded up to one page. libbpf's
`adjust_ringbuf_sz()` keeps 0 ("make sure they see error"), so map creation fails with
EINVAL unless the user sizes it. **Fixed**: `loader/maps.py` `ringbuf_size()` (0 stays 0;
the error says to set `max_entries`); test `test_unsized_ring_buffer_is_einval_until_sized`.""",
    },
    "struct-ops-unreferenced": {
        "status": "fixed",
        "before": {"selftests": 1},
        "text": """
A `SEC("struct_ops")` program no struct_ops variable uses was loaded (the kernel answered
ENOTSUPP). libbpf's `bpf_object_load_prog()` refuses it with EINVAL ("isn't referenced
anywhere, did you forget to use it?"), and `bpf_object_adjust_struct_ops_autoload()`
re-derives the autoload of referenced struct_ops programs at load. **Fixed**:
`loader/programs.py` `adjust_struct_ops_autoload`, `ProgramLoader.load_all`; test
`test_load_time_refusals_have_libbpfs_errno`.""",
    },
    "ksym-func-value": {
        "status": "fixed",
        "before": {"selftests": 3, "realprogs": 1},
        "text": """
A kfunc used as a value (`bpf_ksym_exists(kfunc)`) was refused ("is a function, used as a
value"). libbpf's `bpf_object__relocate_data()` (`RELO_EXTERN_LD64`) writes a resolved
typed ksym, kfuncs included, as `src_reg = BPF_PSEUDO_BTF_ID`, `imm` = kernel BTF id,
`imm[1]` = module BTF fd; an unresolved weak one as 0. **Fixed**: `spec/subprog.py`
`_Linker.extern`; test `test_ksym_exists_on_kfuncs` (the kernel writes the kfunc's
address into the translated program).""",
    },
    "usdt-uprobe-multi": {
        "status": "fixed",
        "before": {"selftests": 7, "realprogs": 2, "upstream": 2},
        "text": """
USDT programs were loaded for another attach mode. libbpf's `libbpf_prepare_prog_load()`
sets `expected_attach_type = BPF_TRACE_UPROBE_MULTI` for `SEC_USDT` programs when
`FEAT_UPROBE_MULTI_LINK` holds, and `bpf_program__attach_usdt()` attaches every location
through one uprobe-multi link with per-location cookies; the kernel inlines another
`bpf_get_attach_cookie` for the two. **Fixed**: `syscall/features.py`
`has_uprobe_multi_link` (libbpf's probe, pid-filtering fix included),
`loader/programs.py` `ProgramLoader.finish`, `links/usdt.py` (one uprobe-multi link; the
perf-link path stays for kernels without, e.g. 6.1); test
`test_usdt_attaches_through_one_uprobe_multi_link`.""",
    },
    "arena": {
        "status": "fixed",
        "before": {"selftests": 19},
        "text": """
An arena object fails to open or load in pylibbpf only. Arenas are modelled as libbpf does
(`spec/mapdefs.py` reads `__ulong(map_extra, ...)`, `spec/elf.py` the `.addr_space.1`
section, `spec/subprog.py` relocates `__arena` globals into the ARENA map, `loader/maps.py`
mmaps the arena before programs load, as `bpf_object__create_maps()`), so any such row is
a regression. **Fixed** by the kernel-features change (issue #20).""",
    },
    "arena-globals-at-end": {
        "status": "deliberate",
        "before": {},
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
        "status": "fixed",
        "before": {"selftests": 2},
        "text": """
The exception callback was missing. libbpf's `bpf_prog_assign_exc_cb()` reads the main
program's `exception_callback:<name>` decl tag and appends that sub-program though nothing
calls it; the kernel refuses the program otherwise. **Fixed**: `spec/subprog.py`
`exception_callbacks`, `_Linker.link`; test `test_exception_callback_is_appended`
(`bpf_throw` returns through the callback).""",
    },
    "subprog-order": {
        "status": "fixed",
        "before": {"selftests": 9},
        "text": """
Sub-programs were appended breadth first. libbpf's `bpf_object__reloc_code()` appends a
callee when it first meets the call and relocates it at once (depth first), which fixes
the instruction indexes the verifier log and `bpftool prog dump` show. **Fixed**:
`spec/subprog.py` `_Linker.relocate_placed` (an explicit stack); test
`test_sub_programs_are_laid_out_depth_first`.""",
    },
    "kfunc-flavour": {
        "status": "fixed",
        "before": {"selftests": 1},
        "text": """
kfunc externs with a `___flavour` suffix were looked up by their full name. libbpf's
`bpf_object__resolve_ksym_func_btf_id()` looks them up by the essential name (cut at the
last `X___Y`) and checks the prototype (`bpf_core_types_are_compat()`): an incompatible
weak flavour stays unresolved, a strong one is EINVAL. **Fixed**: `loader/externs.py`
`KsymResolver._resolve_typed`, `spec/core_types.py` `essential_name`; test
`test_kfunc_flavour_resolves_by_essential_name`.""",
    },
    "syscall-wrapper": {
        "status": "deliberate",
        "before": {"selftests": 3, "realprogs": 2, "upstream": 2},
        "text": """
`LINUX_HAS_SYSCALL_WRAPPER` (`BPF_KSYSCALL`, `SEC("ksyscall")`) is decided differently.
pylibbpf (`syscall/system.py` `has_syscall_wrapper()`) looks for `__<arch>_sys_bpf` in
`/proc/kallsyms`; libbpf's `probe_kern_syscall_wrapper()` tries to create a kprobe on it
and says "no wrapper" when that fails. This host has no kprobe PMU, so libbpf concludes
"no wrapper" on a kernel that has one and its ksyscall programs read the arguments from
the wrong registers; pylibbpf reads the truth. **Deliberate**: it differs only where
libbpf's probe cannot run, and there ksyscall programs cannot attach anyway; on a kernel
with kprobes both say yes.""",
    },
    "unclassified": {
        "status": "open",
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
