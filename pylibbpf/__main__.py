"""``python -m pylibbpf``: the command line (``pylibbpf.cli``)."""

import os
import sys

from .cli import app, main

app.LEFT_FOR_EXIT = []
status = main()
if app.LEFT_FOR_EXIT:
    # The command left what it built for the end (``app.LEFT_FOR_EXIT``): once its output
    # is out, end here, without freeing it (or tearing the interpreter down) piece by piece.
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:
        pass  # (a closed pipe: the usual exit, which reports it as before)
    else:
        os._exit(status)
sys.exit(status)
