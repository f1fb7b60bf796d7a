"""A structure-aware fuzzer for pylibbpf's pure half: objects, BTF and ``.BTF.ext``.

See README.md here for how to run it, what it mutates and the figures of the long run.
"""
