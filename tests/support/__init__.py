"""Helpers the tests (and ``bench/``) share, one module per job; test modules import from here, never from
each other or from a conftest.

- ``services``: the local PostgreSQL/Redis/RabbitMQ the tests use, and how a missing one is reported.
- ``videos``: every test video (synthetic orbits, noise clips, raw uploads), all through one encoder.
- ``synthetic``: the synthetic scenes and camera paths with known ground truth.
- ``server``: a ``vidscene`` subprocess, and waiting for a server's ``/health``.
- ``cluster``: the end-to-end cluster (API server plus workers on one data dir, database and broker).
- ``api_client``: clients of the API: the in-process app (``Api``) and HTTP over loopback (``ApiClient``).
- ``browser``: the web app's server, headless Chromium driven by Playwright, and what the viewer drew.
- ``scenes``: scene, job and output rows (and their files) as the service leaves them.
- ``outputs``: sample files of each output format, and checks that a real output parses back.
- ``captures``: tiny captures and configs that training tests run in seconds, and the quality of what they train.
- ``crowd``: the walk-around with people walking through, exposure drift, blur and noise (``bench/capture.py``'s
  disturbed capture), and what a model kept of the people.
- ``gaussians``: random gaussians and how to compare them with what a reader or renderer gives back.
"""
