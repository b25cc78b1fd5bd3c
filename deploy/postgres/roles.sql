-- The services' PostgreSQL roles and what each may touch, in the event store's database.
--
-- Run by the superuser with psql: at the first start of the postgres container by
-- init-roles.sh (docker-entrypoint-initdb.d), and again by hand to change passwords or
-- to bring an older database to these roles (it can be run any number of times):
--   psql -v ON_ERROR_STOP=1 --set secrets_dir=/run/secrets -f roles.sql
-- psql variables: secrets_dir, the folder of the postgres_<role>_password files
-- (deploy/make_secrets.py writes them); role_prefix (optional, '' by default) to make
-- unique roles for tests, since roles belong to the whole cluster.
--
-- | role       | may                                                                  |
-- |------------|----------------------------------------------------------------------|
-- | invitation | own the event store: create its tables, write them                    |
-- | notifier   | read the event store; create and write its own tables (notifier_*)    |
-- | expiry     | read the event store                                                  |
-- | cli        | read the event store and the notifier's tables (audit, state, verify, |
-- |            | report without --temp-passwords)                                      |
-- | cli_admin  | what invitation and notifier may: report --temp-passwords (records    |
-- |            | the retrieval), verify --checkpoint, replay notifier, republish        |
--
-- Everything lives in schema public, because the notifier keeps its tables in the schema
-- its DATABASE_URL names, which is also where it reads the event store: CREATE on public
-- is what "its own tables" costs until its tables get a schema of their own. Ownership
-- still separates them: a table can be altered or dropped only by its owner, and the
-- other roles get only what is granted below.

\set ON_ERROR_STOP on
\if :{?role_prefix}
\else
\set role_prefix ''
\endif
\set invitation :role_prefix 'invitation'
\set notifier :role_prefix 'notifier'
\set expiry :role_prefix 'expiry'
\set cli :role_prefix 'cli'
\set cli_admin :role_prefix 'cli_admin'
-- Read by psql itself, so the passwords never appear in a command line.
\set invitation_password `cat :'secrets_dir'/postgres_invitation_password`
\set notifier_password `cat :'secrets_dir'/postgres_notifier_password`
\set expiry_password `cat :'secrets_dir'/postgres_expiry_password`
\set cli_password `cat :'secrets_dir'/postgres_cli_password`
\set cli_admin_password `cat :'secrets_dir'/postgres_cli_admin_password`

BEGIN;

SELECT format('CREATE ROLE %I', name)
FROM unnest(ARRAY[:'invitation', :'notifier', :'expiry', :'cli', :'cli_admin']) AS name
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = name)
\gexec

ALTER ROLE :"invitation" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'invitation_password';
ALTER ROLE :"notifier" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'notifier_password';
ALTER ROLE :"expiry" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'expiry_password';
ALTER ROLE :"cli" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'cli_password';
ALTER ROLE :"cli_admin" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'cli_admin_password';

-- Nobody else connects, and only these roles see the schema.
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database())
\gexec
SELECT format('GRANT CONNECT ON DATABASE %I TO %I, %I, %I, %I, %I',
              current_database(), :'invitation', :'notifier', :'expiry', :'cli', :'cli_admin')
\gexec
-- The notifier plans emails through temporary tables; the invitation service merges a
-- save's read-model rows through them (services/invitation/eventstore/read_model/).
SELECT format('GRANT TEMPORARY ON DATABASE %I TO %I, %I, %I',
              current_database(), :'invitation', :'notifier', :'cli_admin')
\gexec
REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE, CREATE ON SCHEMA public TO :"invitation", :"notifier";
GRANT USAGE ON SCHEMA public TO :"expiry", :"cli", :"cli_admin";

-- The tables do not exist yet (each service creates its own at its first start): these
-- grants apply to every table and sequence the owner creates from now on.
ALTER DEFAULT PRIVILEGES FOR ROLE :"invitation" IN SCHEMA public
    GRANT SELECT ON TABLES TO :"notifier", :"expiry", :"cli";
ALTER DEFAULT PRIVILEGES FOR ROLE :"notifier" IN SCHEMA public
    GRANT SELECT ON TABLES TO :"cli";
-- ...and to those that exist already (a database older than these roles).
SELECT format('GRANT SELECT ON %I.%I TO %I, %I, %I', schemaname, tablename,
              :'notifier', :'expiry', :'cli')
FROM pg_tables WHERE schemaname = 'public' AND tableowner = :'invitation'
\gexec
SELECT format('GRANT SELECT ON %I.%I TO %I', schemaname, tablename, :'cli')
FROM pg_tables WHERE schemaname = 'public' AND tableowner = :'notifier'
\gexec

-- The privileged CLI acts as the services it stands in for.
GRANT :"invitation", :"notifier" TO :"cli_admin";

COMMIT;
