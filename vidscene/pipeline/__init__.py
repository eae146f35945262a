"""The reconstruction pipeline as a plain library: paths and config objects in, files out.

It knows nothing of HTTP or the database. Long stages report through a ``ProgressFn`` callback, which the
job layer implements (database row, heartbeat, cancellation) and the CLI implements as a progress bar.
"""
