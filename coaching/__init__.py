"""The domain, framework-free: events, call pipeline, personas, hints, scoring, providers."""

import os as _os

# Numeric work (embeddings, audio) runs in the bounded inference pool, one job per thread: the
# libraries' own thread pools would only compete with live calls, and they deadlock a process that
# forks (a subprocess, the embedded Postgres' pg_ctl) while one of their calls is running (OpenBLAS
# waits in its fork handler for workers the running call holds; tokenizers' rayon pool likewise).
# Read when numpy and tokenizers load, so set before anything imports them.
for _name in ("OPENBLAS_NUM_THREADS", "TOKENIZERS_PARALLELISM"):
    _os.environ.setdefault(_name, "false" if _name == "TOKENIZERS_PARALLELISM" else "1")
