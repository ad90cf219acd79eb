"""r7sim: a local stand-in for R7 e-Arkiv, not R7.

R7's ingest interface is not public, so the project defines its own protocol
(``docs/archive-protocol.md``) and serves it here for development and tests. Run it with
``python -m r7sim --data-dir DIR --port PORT``.
"""

from __future__ import annotations

import sys
from pathlib import Path

#: the repository's ``plugins`` folder, where the ``decommission`` package (validator, counts) lives
PLUGINS_DIR = Path(__file__).resolve().parent.parent / "plugins"
if PLUGINS_DIR.is_dir() and str(PLUGINS_DIR) not in sys.path:
    sys.path.append(str(PLUGINS_DIR))

from r7sim.app import BANNER, Settings, create_app  # noqa: E402

__all__ = ["BANNER", "PLUGINS_DIR", "Settings", "create_app"]
