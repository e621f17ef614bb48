-- Single sign-on (OpenID Connect): the identities people log in with, the email domains an
-- organization claims, and whether an organization signs in through SSO only.

-- One row per (provider, subject) an account has logged in with; later logins match on it.
CREATE TABLE user_identities (
    provider      text NOT NULL CHECK (length(provider) BETWEEN 1 AND 64),   -- OIDC_PROVIDERS id
    subject       text NOT NULL CHECK (length(subject) BETWEEN 1 AND 255),   -- the ID token's `sub`
    user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email         text,                 -- the verified email it last carried
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_login_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, subject)
);
CREATE INDEX user_identities_user_idx ON user_identities (user_id);

-- A domain belongs to one organization at most: new SSO users with a verified email on it join
-- that organization as trainees.
CREATE TABLE org_email_domains (
    domain     text PRIMARY KEY CHECK (domain = lower(domain) AND length(domain) BETWEEN 3 AND 253),
    org_id     uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    claimed_by uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX org_email_domains_org_idx ON org_email_domains (org_id);

-- true: the organization's members may not log in with a password (SSO only).
ALTER TABLE org_settings ADD COLUMN sso_required boolean NOT NULL DEFAULT false;

ALTER TABLE user_identities ENABLE ROW LEVEL SECURITY;
CREATE POLICY user_identities_own ON user_identities FOR ALL
    USING (user_id = app_user_id())
    WITH CHECK (user_id = app_user_id());

ALTER TABLE org_email_domains ENABLE ROW LEVEL SECURITY;
CREATE POLICY org_email_domains_read ON org_email_domains FOR SELECT
    USING (org_id = app_org_id() AND app_is_staff());
CREATE POLICY org_email_domains_write ON org_email_domains FOR ALL
    USING (org_id = app_org_id() AND app_role() IN ('admin', 'system'))
    WITH CHECK (org_id = app_org_id() AND app_role() IN ('admin', 'system'));

GRANT SELECT, INSERT, UPDATE, DELETE ON user_identities, org_email_domains TO sparring_app;

CREATE TRIGGER audit AFTER INSERT OR UPDATE OF user_id OR DELETE ON user_identities
    FOR EACH ROW EXECUTE FUNCTION audit_row('email', 'last_login_at', 'subject');
CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON org_email_domains
    FOR EACH ROW EXECUTE FUNCTION audit_row();

-- The doors an SSO login needs before a tenant is known (as in 0008): the account behind an
-- identity, the organization that claimed a domain, and whether an organization requires SSO.
CREATE FUNCTION auth_user_by_identity(p_provider text, p_subject text)
RETURNS uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS
$$
    SELECT u.id FROM user_identities i JOIN users u ON u.id = i.user_id
    WHERE i.provider = p_provider AND i.subject = p_subject AND u.deleted_at IS NULL
$$;

CREATE FUNCTION auth_org_for_domain(p_domain text)
RETURNS uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS
$$
    SELECT d.org_id FROM org_email_domains d JOIN organizations o ON o.id = d.org_id
    WHERE d.domain = lower(p_domain) AND o.deleted_at IS NULL
$$;

CREATE FUNCTION auth_sso_required(p_org_id uuid)
RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS
$$
    SELECT coalesce((SELECT s.sso_required FROM org_settings s WHERE s.org_id = p_org_id), false)
$$;

REVOKE ALL ON FUNCTION auth_user_by_identity(text, text), auth_org_for_domain(text), auth_sso_required(uuid)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth_user_by_identity(text, text), auth_org_for_domain(text), auth_sso_required(uuid)
    TO sparring_app;
