"""The job engine: adapts the pipeline to the database (job state machine) and to Celery (delivery)."""
