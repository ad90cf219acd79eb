"""A real Airflow stack on this machine, for the tests and the bench: processes, object storage, Celery.

``processes``: ``airflow`` sub-commands in process groups that never outlive their owner;
``stack``: one deadline, the API as an admin sees it, diagnostics; ``object_storage``: an S3
server (s3rver) as a real process; ``celery``: the distributed shape (CeleryExecutor on Redis,
PostgreSQL metadata, two workers with homes of their own, artefacts and staging on S3).
Development tooling: not part of the image (the Dockerfile copies ``plugins/``, ``dags/``...).
"""
