"""The overview app, built on its first request: every Airflow process loads the plugin, only the api-server serves it.

A scheduler, worker or DAG processor would otherwise import the api-server's security stack and
Jinja for nothing each time it loads plugins.
"""

from __future__ import annotations

from typing import Any


class LazyOverviewApp:
    """An ASGI app that builds :func:`decommission.ui.app.create_app` when first called."""

    def __init__(self) -> None:
        self._app: Any = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if self._app is None:
            from decommission.ui.app import create_app

            self._app = create_app()
        await self._app(scope, receive, send)

    def __repr__(self) -> str:
        return "decommission.ui.app:create_app"
