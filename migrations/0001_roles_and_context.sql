-- The application role, the extensions, and the per-transaction tenant context every policy reads.
CREATE EXTENSION IF NOT EXISTS vector;

-- The app's own queries run as sparring_app, whatever DATABASE_URL connects as: superusers and
-- table owners bypass row-level security, this role does not.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sparring_app') THEN
        CREATE ROLE sparring_app NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
END
$$;
-- The connecting user must be able to SET ROLE to it (a no-op for superusers).
DO $$
BEGIN
    IF NOT pg_has_role(current_user, 'sparring_app', 'MEMBER') THEN
        EXECUTE format('GRANT sparring_app TO %I', current_user);
    END IF;
END
$$;
GRANT USAGE ON SCHEMA public TO sparring_app;
-- Tenant tables ENABLE row-level security but do not FORCE it: the owner (whoever migrates) stays
-- outside it, which is what lets the few SECURITY DEFINER functions (login lookups, the
-- audit trigger) cross tenants on purpose. Everything else runs as sparring_app, never the owner.

-- Tenant context: set per transaction with set_config(name, value, true). After the transaction
-- the setting reads '' rather than NULL, hence nullif.
CREATE FUNCTION app_org_id() RETURNS uuid LANGUAGE sql STABLE AS
$$ SELECT nullif(current_setting('app.org_id', true), '')::uuid $$;

CREATE FUNCTION app_user_id() RETURNS uuid LANGUAGE sql STABLE AS
$$ SELECT nullif(current_setting('app.user_id', true), '')::uuid $$;

-- trainee | coach | admin for people; system for background work inside one org (writers,
-- webhooks, jobs); platform for org-less maintenance (built-in personas, shared knowledge).
CREATE FUNCTION app_role() RETURNS text LANGUAGE sql STABLE AS
$$ SELECT nullif(current_setting('app.role', true), '') $$;

-- Coaches, admins and background work see the whole org; trainees see their own rows.
CREATE FUNCTION app_is_staff() RETURNS boolean LANGUAGE sql STABLE AS
$$ SELECT coalesce(app_role() IN ('coach', 'admin', 'system'), false) $$;

-- Instance-wide secrets (the generated JWT secret). Never granted to sparring_app.
CREATE TABLE app_secrets (
    name       text PRIMARY KEY,
    value      text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
REVOKE ALL ON app_secrets FROM PUBLIC;
