"""The pure half (with ``btf/``): bytes in, specs out.

ELF objects (``elf``, ``objspec``, ``mapdefs``, ``sections``), instructions (``insn``,
``helpers``, ``disasm``), linking sub-programs (``subprog``), CO-RE (``core``,
``core_types``), struct_ops planning, ``.kconfig`` layout, USDT notes, ELF symbols of user
binaries and key/value codecs. Nothing here makes a syscall or reads /proc or /sys: every
module imports and runs with ``pylibbpf.syscall`` absent.
"""
