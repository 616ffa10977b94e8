"""`cinerl ui`: the director's workbench in the browser (apps/web)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from cinerl.apps.cli.common import fail, setup_logging
from cinerl.core.errors import UserError


def ui(
    runs: Path = typer.Option(Path("runs"), "--runs", help="the folder of run folders it shows and makes"),
    host: str = typer.Option(
        "127.0.0.1", "--host", help="address to bind (another than localhost needs --auth)"
    ),
    port: int = typer.Option(7860, "--port", help="port"),
    auth: Optional[str] = typer.Option(None, "--auth", help="USER:PASSWORD every request must give"),
    auth_file: Optional[Path] = typer.Option(
        None, "--auth-file", help="a file whose first line is USER:PASSWORD (instead of --auth)"
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Plan, approve, watch, compare takes, retake and choose in a browser (Gradio)."""
    setup_logging(verbose)
    try:
        if not 1 <= port <= 65535:
            raise UserError(f"--port must be between 1 and 65535 (got {port})")
        from cinerl.apps.web.app import check_host, read_auth_file

        if auth is not None and auth_file is not None:
            raise UserError("give --auth or --auth-file, not both")
        if auth_file is not None:
            auth = read_auth_file(auth_file)
        check_host(host, auth)
        try:
            import gradio  # noqa: F401
        except ImportError:
            raise UserError("cinerl ui needs Gradio: pip install 'cinerl[ui]'") from None
        from cinerl.apps.web.app import serve

        serve(runs, host, port, auth)
    except UserError as e:
        fail(str(e))
