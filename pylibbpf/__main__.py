"""``python -m pylibbpf``: the command line (``pylibbpf.cli``)."""

import sys

from .cli import main

sys.exit(main())
