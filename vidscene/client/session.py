"""``Client``: one server, one bearer token (a login JWT or a personal API token); progress, waiting and the
upload form's defaults. The resumable upload is ``tus.py``, the downloads ``outputs.py``."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from vidscene.client import outputs, tus
from vidscene.client.errors import ApiError, raise_for_error

Progress = dict[str, Any]


@dataclass(frozen=True)
class UploadFields:
    """The upload form's text fields (docs/api.md, ``POST /user/scene/new``), as the tus metadata sends them."""

    training_mode: str
    output_types: tuple[str, ...]
    total_iterations: int
    save_iterations: tuple[int, ...] = ()
    preset: str | None = None
    scene_name: str | None = None

    def form(self) -> dict[str, str]:
        fields = {"training_mode": self.training_mode, "output_types": ",".join(self.output_types),
                  "total_iterations": str(self.total_iterations),
                  "save_iterations": ",".join(str(i) for i in self.save_iterations)}
        if self.preset:
            fields["preset"] = self.preset
        if self.scene_name:
            fields["scene_name"] = self.scene_name
        return fields


class Client:
    """A vidscene server seen through its public HTTP API, with one bearer token."""

    def __init__(self, server: str, token: str, *, timeout: float = 60.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.server = server.rstrip("/")
        self.http = httpx.Client(base_url=self.server, timeout=timeout, transport=transport,
                                 headers={"Authorization": f"Bearer {token}", "User-Agent": "vidscene-client"})

    @classmethod
    def login(cls, server: str, username: str, password: str, *, timeout: float = 60.0) -> Client:
        """Log in with a password; the JWT it returns can do everything the account can (prefer an API token)."""
        answer = httpx.post(f"{server.rstrip('/')}/user/account/login", timeout=timeout,
                            json={"username": username, "password": password})
        raise_for_error(answer)
        return cls(server, answer.json()["jwtToken"], timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get_json(self, path: str, **params: Any) -> Any:
        answer = self.http.get(path, params=params or None)
        raise_for_error(answer)
        return answer.json()

    def options(self) -> dict[str, Any]:
        """The server's catalogue: modes, output types (with their file extensions), presets, limits."""
        options: dict[str, Any] = self.get_json("/user/scene/options")
        return options

    def default_fields(self, *, mode: str = "gaussian", preset: str | None = None,
                       outputs: tuple[str, ...] = (), total_iterations: int | None = None,
                       save_iterations: tuple[int, ...] | None = None, scene_name: str | None = None) -> UploadFields:
        """The upload fields the server's preset (its default when none is named) gives, with what is named."""
        options = self.options()
        name = preset or options["default_preset"]
        found = next((p for p in options["presets"] if p["name"] == name), None)
        if found is None:
            known = ", ".join(p["name"] for p in options["presets"])
            raise ApiError(400, f"Unknown preset {name!r}; the server offers {known}.")
        if mode not in found["iterations"]:
            raise ApiError(400, f"Unknown training mode {mode!r}; the server offers {', '.join(found['iterations'])}.")
        total = total_iterations or int(found["iterations"][mode])
        if save_iterations is None:
            save_iterations = tuple(i for i in found["save_iterations"][mode] if i <= total)
        return UploadFields(training_mode=mode, output_types=outputs or tuple(found["outputs"][mode]),
                            total_iterations=total, save_iterations=save_iterations, preset=preset,
                            scene_name=scene_name)

    def upload(self, video: Path, fields: UploadFields, *, state_file: Path, chunk_bytes: int | None = None,
               on_progress: Callable[[int, int], None] | None = None) -> str:
        """Upload ``video`` with tus and return the scene id; a call after an interruption with the same
        ``state_file`` continues from the server's offset (see ``tus.upload``)."""
        if chunk_bytes is None:
            chunk_bytes = int(self.options()["limits"].get("upload_chunk_bytes", tus.DEFAULT_CHUNK_BYTES))
        return tus.upload(self.http, video, fields.form(), state_file=state_file, chunk_bytes=chunk_bytes,
                          on_progress=on_progress)

    def progress(self, scene_id: str) -> Progress:
        progress: Progress = self.get_json(f"/user/scene/progress/{scene_id}")
        return progress

    def wait(self, scene_id: str, *, poll_seconds: float = 2.0, timeout: float | None = None,
             on_progress: Callable[[Progress], None] | None = None) -> Progress:
        """Poll the progress route until the scene is no longer processing; its last progress answer."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            progress = self.progress(scene_id)
            if on_progress is not None:
                on_progress(progress)
            if not progress["processing"]:
                return progress
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"scene {scene_id} still {progress.get('state')} after {timeout} s")
            time.sleep(poll_seconds)

    def download_outputs(self, scene_id: str, out_dir: Path) -> list[Path]:
        """Every output file the scene has (each saved iteration of each type) into ``out_dir``."""
        extensions = {o["name"]: o["extensions"] for o in self.options()["output_types"]}
        return outputs.download_all(self.http, scene_id, out_dir, extensions)
