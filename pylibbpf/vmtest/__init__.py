"""Run a project's pytest suite inside QEMU guests on other kernels.

``pylibbpf vmtest`` (``session.py``; its options in ``pylibbpf/cli/vmtest.py``) and the
pytest plugin (``plugin.py``, ``pytest --bpf-kernels``) share one runner: kernels are
resolved and cached (``kernels.py``), every kernel's tests run in one or more guests at a
time (``runner.py``), each guest boots over the host's root filesystem (``guest.py``), and
the guests' per-test records (``guest_plugin.py``) become per-kernel summaries and JUnit
files (``results.py``).

Nothing here touches bpf(2): the package only starts processes, so it imports no other part
of pylibbpf and importing it stays cheap (the pytest plugin is imported by every pytest run
in an environment where pylibbpf is installed).
"""
