"""A small Python client for a vidscene server's HTTP API (docs/api.md), for scripts and CI jobs.

It speaks HTTP only (no import of the server's code): log in or use a personal API token, upload a video with
tus so an interrupted upload resumes where the server's offset says, wait with progress, download every output.
``vidscene remote upload`` is its command line.

    from vidscene.client import Client, UploadFields
    client = Client("https://scenes.example", token="vst_...")
    fields = client.default_fields(preset="preview")
    scene = client.upload(Path("walk.mp4"), fields, state_file=Path("walk.upload.json"))
    client.wait(scene)
    client.download_outputs(scene, Path("out"))
"""

from vidscene.client.errors import ApiError
from vidscene.client.session import Client, UploadFields

__all__ = ["ApiError", "Client", "UploadFields"]
