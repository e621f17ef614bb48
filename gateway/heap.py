"""The serving process's garbage collector, tuned for a long-running event loop.

What start-up builds (imported modules, the app, routes, personas, provider clients) lives as long
as the process, yet every full collection walks it again: with it in the heap, a full collection
paused the loop for ~140 ms under VAPI load (bench/vapi_ingest.py, p99 at 1,000/s 196 ms; frozen,
81 ms). `freeze_after_startup` collects once when start-up is done and moves the survivors out of
the collector's generations (`gc.freeze`), so later collections walk only what calls create.
"""

from __future__ import annotations

import gc

from litestar import Litestar

__all__ = ["freeze_after_startup"]


def freeze_after_startup(app: Litestar) -> None:
    """For a serving process only: an app started and stopped many times in one process (tests)
    would keep each run's frozen objects for good."""
    app.on_startup.append(_freeze)


def _freeze() -> None:
    gc.collect()
    gc.freeze()
