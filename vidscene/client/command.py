"""``vidscene remote ...``: the client's command line, for scripts and CI jobs that use a vidscene server.

    vidscene remote upload walk.mp4 --server https://scenes.example --token vst_... --wait --out walk/

The token (or the password) can come from the environment (``VIDSCENE_TOKEN``, ``VIDSCENE_PASSWORD``), so it
stays out of shell history and process lists.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from vidscene.client.errors import ApiError
from vidscene.client.session import Client

remote = typer.Typer(no_args_is_help=True, help="Use a vidscene server over its HTTP API (vidscene.client).")

VideoArg = Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="the video to upload")]
ServerOpt = Annotated[str, typer.Option(envvar="VIDSCENE_SERVER", help="the server's base URL")]
TokenOpt = Annotated[str | None, typer.Option(envvar="VIDSCENE_TOKEN", show_envvar=True,
                                              help="a personal API token (vst_...) with scenes:write "
                                                   "(and scenes:read to wait or download)")]


def default_state_file(video: Path, out: Path | None) -> Path:
    """Where the upload's URL is kept for a resume: in the output dir when there is one, else by the video."""
    return out / ".vidscene-upload.json" if out is not None else video.with_name(video.name + ".upload.json")


def _connect(server: str, token: str | None, username: str | None, password: str | None) -> Client:
    if token:
        return Client(server, token)
    if username and password:
        return Client.login(server, username, password)
    raise typer.BadParameter("give --token (or VIDSCENE_TOKEN), or --username with --password", param_hint="--token")


class _ProgressPrinter:
    """One line on stderr each time the state, step or whole percent changes (polling repeats itself)."""

    def __init__(self) -> None:
        self.last: tuple[Any, ...] | None = None

    def upload(self, offset: int, size: int) -> None:
        typer.echo(f"uploaded {offset}/{size} bytes", err=True)

    def scene(self, progress: dict[str, Any]) -> None:
        line = (progress.get("state"), progress.get("step"), int(progress.get("percent", 0)))
        if line == self.last:
            return
        self.last = line
        eta = progress.get("eta_seconds")
        typer.echo(f"{line[0]} {line[1] or '-'} {line[2]}%" + (f" (about {eta:.0f} s left)" if eta else ""), err=True)


@remote.command("upload")
def upload_command(
    video: VideoArg,
    server: ServerOpt,
    token: TokenOpt = None,
    username: Annotated[str | None, typer.Option(help="log in instead of a token")] = None,
    password: Annotated[str | None, typer.Option(envvar="VIDSCENE_PASSWORD", help="with --username")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="wait until the scene is processed, printing progress")] = False,
    out: Annotated[Path | None, typer.Option(file_okay=False,
                                             help="download every output here (implies --wait)")] = None,
    preset: Annotated[str | None, typer.Option(help="preview, standard, quality...; default: the server's")] = None,
    mode: Annotated[str, typer.Option(help="training mode")] = "gaussian",
    outputs: Annotated[str, typer.Option(help="comma-separated output types; default: the preset's")] = "",
    iterations: Annotated[int | None, typer.Option(help="total iterations; default: the preset's")] = None,
    save: Annotated[str | None, typer.Option(help="comma-separated iterations to save; default: the preset's")] = None,
    name: Annotated[str | None, typer.Option(help="the scene's name")] = None,
    state: Annotated[Path | None, typer.Option(help="the resume file; default: in --out, else by the video")] = None,
    chunk_bytes: Annotated[int | None, typer.Option(help="bytes per PATCH; default: the server's")] = None,
    poll_seconds: Annotated[float, typer.Option(help="seconds between progress polls")] = 2.0,
) -> None:
    """Upload VIDEO (resuming an interrupted upload of it), optionally wait and download the outputs."""
    printer = _ProgressPrinter()
    try:
        with _connect(server, token, username, password) as client:
            fields = client.default_fields(
                mode=mode, preset=preset, outputs=tuple(o.strip() for o in outputs.split(",") if o.strip()),
                total_iterations=iterations, scene_name=name,
                save_iterations=None if save is None else tuple(int(s) for s in save.split(",") if s.strip()))
            scene = client.upload(video, fields, state_file=state or default_state_file(video, out),
                                  chunk_bytes=chunk_bytes, on_progress=printer.upload)
            typer.echo(f"scene {scene}")
            if not (wait or out):
                return
            final = client.wait(scene, poll_seconds=poll_seconds, on_progress=printer.scene)
            if final["state"] != "done":
                typer.echo(f"scene {scene} {final['state']}: {final['message']}", err=True)
                raise typer.Exit(2)
            if out is not None:
                for path in client.download_outputs(scene, out):
                    typer.echo(f"downloaded {path}")
    except ApiError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
