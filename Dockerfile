# Image for every Airflow service in docker-compose.yaml, and for the demo
# helpers (r7sim, legacy-seed), so that all of them run the same code.
#
#   docker compose build          # or: docker build -t decommission/airflow:3.3.2 .
#
# See docs/docker.md.
FROM apache/airflow:3.3.2-python3.11

# Directories that docker-compose.yaml mounts named volumes on. A new named
# volume copies the owner of the directory it is mounted on, so creating them
# here, owned by airflow (uid 50000, gid 0), makes the volumes writable for the
# services, which run as "${AIRFLOW_UID:-50000}:0".
USER root
RUN install -d -o airflow -g root -m 0775 \
        /opt/airflow/out /opt/airflow/staging /opt/airflow/auth /data
USER airflow

# Dependencies first, so that a code change does not reinstall them. The lock
# pins apache-airflow itself to the image's version; the checks below stop the
# build if the lock moved Airflow or removed the Celery provider that the
# CeleryExecutor needs (the base image ships it, the lock does not pin it).
COPY --chown=airflow:root requirements.lock /opt/airflow/requirements.lock
RUN pip install --no-cache-dir -r /opt/airflow/requirements.lock \
    && python -c "import importlib.metadata as m, os, sys; v = m.version('apache-airflow'); \
sys.exit(0 if v == os.environ['AIRFLOW_VERSION'] else f'requirements.lock changed Airflow to {v}')" \
    && python -c "import airflow.providers.celery.executors.celery_executor"

# The project. Airflow puts dags/ and plugins/ on sys.path itself; PYTHONPATH
# mirrors pyproject.toml's pytest pythonpath so that `python -m r7sim` and
# `python -m demo.generate` import the `decommission` package too.
COPY --chown=airflow:root plugins/ /opt/airflow/plugins/
COPY --chown=airflow:root dags/ /opt/airflow/dags/
COPY --chown=airflow:root include/ /opt/airflow/include/
COPY --chown=airflow:root r7sim/ /opt/airflow/r7sim/
COPY --chown=airflow:root demo/ /opt/airflow/demo/
ENV PYTHONPATH=/opt/airflow/plugins:/opt/airflow

WORKDIR /opt/airflow
