-- childindex roles on PostgreSQL. Run as a superuser (or a role with CREATEROLE) in the
-- childindex database, once it exists and BEFORE the first `childindex db upgrade`:
--     createdb childindex
--     psql -v ON_ERROR_STOP=1 -d childindex -f sql/01_roles.sql
-- Then migrate as childindex_owner and run sql/02_grants.sql (after every upgrade).
-- Roles are the server's (the cluster's), shared by every database on it: they are created
-- only where missing; who may connect and who may create objects is this database's part
-- (docs/production.md: one childindex per server).
-- Roles are created without passwords: set them out of band (ALTER ROLE ... PASSWORD, or
-- certificate authentication), never in this repository.
--
--   childindex_owner      owns the schema's tables and views; runs migrations and key rotation
--   childindex_loader     intake and linkage: writes the index and its bookkeeping
--   childindex_retention  retention: reads and deletes, logs what it deleted
--   childindex_reader     practitioners' tools: selects the reader_* views only
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['childindex_owner', 'childindex_loader', 'childindex_retention', 'childindex_reader']
    LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE', r);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;  -- another database's set-up created it meanwhile: roles are the server's
            END;
        END IF;
    END LOOP;
END
$$;

-- Only the owner creates objects; nobody else, PUBLIC included.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE, CREATE ON SCHEMA public TO childindex_owner;
GRANT USAGE ON SCHEMA public TO childindex_loader, childindex_retention, childindex_reader;

-- Who may connect to this database: childindex's roles (and superusers), not every role of
-- the server, as PostgreSQL allows by default.
DO $$
BEGIN
    EXECUTE format('REVOKE CONNECT ON DATABASE %I FROM PUBLIC', current_database());
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO childindex_owner, childindex_loader, childindex_retention, '
                   'childindex_reader', current_database());
END
$$;
