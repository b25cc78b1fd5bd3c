#!/bin/sh
# The services' roles (deploy/postgres/roles.sql), with the passwords in /run/secrets.
# Run by the postgres image once, on an empty data directory (docker-entrypoint-initdb.d);
# run it again by hand after changing a password or to bring an older database to the
# roles: docker compose exec postgres sh /docker-entrypoint-initdb.d/10-roles.sh
set -eu
psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  --set secrets_dir=/run/secrets --file /etc/invitations/roles.sql
