#!/usr/bin/env bash
# Create the PostgreSQL role and database Moulin uses (peer authentication over the local
# socket: the 'moulin' system user connects as the 'moulin' role without a password).
set -euo pipefail
apt-get install -y postgresql
runuser -u postgres -- psql -v ON_ERROR_STOP=1 <<'SQL'
SELECT 'CREATE ROLE moulin LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'moulin')\gexec
SELECT 'CREATE DATABASE moulin OWNER moulin ENCODING ''UTF8''' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'moulin')\gexec
SQL
echo 'Set database_url = "postgresql+psycopg://moulin@/moulin?host=/run/postgresql" in /etc/moulin/moulin.toml'
