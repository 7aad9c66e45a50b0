#!/bin/sh
# Lays out an empty PostgreSQL cluster for the team stack. The postgres image runs it once,
# from /docker-entrypoint-initdb.d, when its data volume is new (changing a password in
# .env later does not reach an existing volume: use ALTER ROLE ... PASSWORD).
#
# One login role per job, so that each password opens only what its holder needs:
#   optuna         owns database optuna (studies, trials): the workers.
#   optuna_viewer  may only SELECT in optuna: optuna-dashboard, which has no login of its
#                  own; whoever reaches it can look, but not delete a study.
#   mlflow         owns databases mlflow (runs) and mlflow_auth (users, password hashes,
#                  permissions): the MLflow server alone.
# MLflow and Optuna both keep an alembic_version table, hence separate databases.
set -e
: "${OPTUNA_DB_PASSWORD:?set OPTUNA_DB_PASSWORD}" "${OPTUNA_VIEWER_DB_PASSWORD:?set OPTUNA_VIEWER_DB_PASSWORD}"
: "${MLFLOW_DB_PASSWORD:?set MLFLOW_DB_PASSWORD}"

# Passwords travel as psql variables (:'name' quotes them), never pasted into the SQL text.
psql -v ON_ERROR_STOP=1 --no-psqlrc --username "${POSTGRES_USER:-postgres}" \
    --dbname "${POSTGRES_DB:-${POSTGRES_USER:-postgres}}" \
    -v optuna_password="$OPTUNA_DB_PASSWORD" -v viewer_password="$OPTUNA_VIEWER_DB_PASSWORD" \
    -v mlflow_password="$MLFLOW_DB_PASSWORD" <<'SQL'
CREATE ROLE optuna LOGIN PASSWORD :'optuna_password';
CREATE ROLE optuna_viewer LOGIN PASSWORD :'viewer_password';
CREATE ROLE mlflow LOGIN PASSWORD :'mlflow_password';
CREATE DATABASE optuna OWNER optuna;
CREATE DATABASE mlflow OWNER mlflow;
CREATE DATABASE mlflow_auth OWNER mlflow;
-- New databases let every role connect; only the roles named here may.
REVOKE ALL ON DATABASE optuna, mlflow, mlflow_auth FROM PUBLIC;
GRANT CONNECT ON DATABASE optuna TO optuna_viewer;
\connect optuna
-- Optuna creates its tables later (as optuna): the viewer may read each one.
ALTER DEFAULT PRIVILEGES FOR ROLE optuna IN SCHEMA public GRANT SELECT ON TABLES TO optuna_viewer;
SQL
