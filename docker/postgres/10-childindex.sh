#!/usr/bin/env bash
# First start of the database container: the index database beside Airflow's, and the
# childindex roles in it (sql/01_roles.sql). Passwords come from the environment.
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<SQL
CREATE DATABASE childindex;
SQL
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname childindex -f /childindex-sql/01_roles.sql
for role in owner loader retention reader; do
  var="CHILDINDEX_${role^^}_PASSWORD"
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname childindex \
    -v role="childindex_${role}" -v password="${!var}" <<'SQL'
ALTER ROLE :"role" PASSWORD :'password';
SQL
done
