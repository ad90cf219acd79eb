-- Runs once, when the `postgres` service initialises an empty data volume
-- (docker-entrypoint-initdb.d), as the superuser `airflow` in database `airflow`.
--
-- The programme ledger (plugins/decommission/ledger.py) keeps its append-only,
-- hash-chained evidence in its own database and role, apart from Airflow's
-- metadata, so that `airflow db reset` or a metadata clean-up can never touch
-- evidence. Airflow reaches it as connection `programme_ledger`
-- (AIRFLOW_CONN_PROGRAMME_LEDGER in docker-compose.yaml).
--
-- Demo credentials: change the password here and in docker-compose.yaml together.
CREATE ROLE programme LOGIN PASSWORD 'programme';
CREATE DATABASE programme OWNER programme;
REVOKE ALL ON DATABASE programme FROM PUBLIC;
