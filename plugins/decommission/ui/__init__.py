"""The programme overview in the Airflow UI: a FastAPI app the api-server mounts (see airflow_plugin.py)."""
