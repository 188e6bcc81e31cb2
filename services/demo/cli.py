"""`platewatch demo render`: regenerate the bundled demo clip and its manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from services.demo.render import DEFAULT_FOOTAGE, DEFAULT_MANIFEST, SEED, render


def register(app: typer.Typer) -> None:
    demo = typer.Typer(help="The bundled demo footage.", no_args_is_help=True)

    @demo.command("render")
    def render_command(
        footage: Annotated[Path, typer.Option(help="video file to write (.mp4 or .avi)")] = DEFAULT_FOOTAGE,
        manifest: Annotated[Path, typer.Option(help="ground-truth manifest to write")] = DEFAULT_MANIFEST,
        seed: Annotated[int, typer.Option(help="random seed (noise)")] = SEED,
    ) -> None:
        """Render the demo clip: vehicles with readable plates passing a roadside camera."""
        document = render(footage, manifest, seed)
        plates = ", ".join(v["plate"] for v in document["vehicles"])
        typer.echo(f"wrote {footage} ({document['frames']} frames) and {manifest}: {plates}")

    app.add_typer(demo, name="demo")
