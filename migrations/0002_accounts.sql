-- Organizations, people, membership and the credentials that prove who they are.
CREATE TABLE organizations (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz
);

CREATE TABLE users (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email         text NOT NULL CHECK (length(email) BETWEEN 3 AND 320),
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    password_hash text,                -- argon2id; NULL for federated-only accounts
    external_id   text UNIQUE,         -- e.g. the Supabase auth user id
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    deleted_at    timestamptz
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

CREATE TABLE memberships (
    org_id     uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       text NOT NULL CHECK (role IN ('trainee', 'coach', 'admin')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, user_id)
);
CREATE INDEX memberships_user_idx ON memberships (user_id);

CREATE TABLE invites (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id     uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    code_hash  text NOT NULL UNIQUE,   -- sha256 of the code; the code itself is shown once
    role       text NOT NULL CHECK (role IN ('trainee', 'coach', 'admin')),
    created_by uuid REFERENCES users (id) ON DELETE SET NULL,
    max_uses   integer NOT NULL DEFAULT 1 CHECK (max_uses > 0),
    uses       integer NOT NULL DEFAULT 0 CHECK (uses >= 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz
);
CREATE INDEX invites_org_idx ON invites (org_id);

CREATE TABLE refresh_tokens (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    org_id      uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    family_id   uuid NOT NULL,         -- every rotation of one login shares it; reuse revokes it
    token_hash  text NOT NULL UNIQUE,  -- sha256 of the token
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    revoked_at  timestamptz
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user_idx ON refresh_tokens (user_id);

CREATE TABLE org_settings (
    org_id                  uuid PRIMARY KEY REFERENCES organizations (id) ON DELETE CASCADE,
    settings                jsonb NOT NULL DEFAULT '{}',
    vapi_auth_mode          text CHECK (vapi_auth_mode IN ('auto', 'hmac', 'secret', 'bearer', 'legacy', 'none')),
    vapi_webhook_secret     text,      -- write-only through the API
    vapi_default_persona_id text,
    updated_at              timestamptz NOT NULL DEFAULT now()
);

-- A phone number belongs to one org, and answers as one persona.
CREATE TABLE vapi_phone_numbers (
    phone_number text PRIMARY KEY,
    org_id       uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    persona_id   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX vapi_phone_numbers_org_idx ON vapi_phone_numbers (org_id);

ALTER TABLE organizations ENABLE ROW LEVEL SECURITY;
CREATE POLICY organizations_read ON organizations FOR SELECT
    USING (id = app_org_id());
CREATE POLICY organizations_create ON organizations FOR INSERT
    WITH CHECK (id = app_org_id());
CREATE POLICY organizations_admin ON organizations FOR UPDATE
    USING (id = app_org_id() AND app_role() IN ('admin', 'system'));
CREATE POLICY organizations_delete ON organizations FOR DELETE
    USING (id = app_org_id() AND app_role() IN ('admin', 'system'));

ALTER TABLE users ENABLE ROW LEVEL SECURITY;
CREATE POLICY users_read ON users FOR SELECT
    USING (id = app_user_id()
           OR EXISTS (SELECT 1 FROM memberships m WHERE m.user_id = users.id AND m.org_id = app_org_id()));
CREATE POLICY users_create ON users FOR INSERT
    WITH CHECK (id = app_user_id());
CREATE POLICY users_update ON users FOR UPDATE
    USING (id = app_user_id());
CREATE POLICY users_delete ON users FOR DELETE
    USING (id = app_user_id());

ALTER TABLE memberships ENABLE ROW LEVEL SECURITY;
CREATE POLICY memberships_read ON memberships FOR SELECT
    USING (org_id = app_org_id() OR user_id = app_user_id());
CREATE POLICY memberships_write ON memberships FOR ALL
    USING (org_id = app_org_id() AND app_role() IN ('admin', 'system'))
    WITH CHECK (org_id = app_org_id() AND app_role() IN ('admin', 'system'));

ALTER TABLE invites ENABLE ROW LEVEL SECURITY;
CREATE POLICY invites_org ON invites FOR ALL
    USING (org_id = app_org_id() AND app_role() IN ('coach', 'admin', 'system'))
    WITH CHECK (org_id = app_org_id() AND app_role() IN ('coach', 'admin', 'system'));

ALTER TABLE refresh_tokens ENABLE ROW LEVEL SECURITY;
CREATE POLICY refresh_tokens_own ON refresh_tokens FOR ALL
    USING (user_id = app_user_id() AND org_id = app_org_id())
    WITH CHECK (user_id = app_user_id() AND org_id = app_org_id());

ALTER TABLE org_settings ENABLE ROW LEVEL SECURITY;
CREATE POLICY org_settings_read ON org_settings FOR SELECT
    USING (org_id = app_org_id() AND app_is_staff());
CREATE POLICY org_settings_write ON org_settings FOR ALL
    USING (org_id = app_org_id() AND app_role() IN ('admin', 'system'))
    WITH CHECK (org_id = app_org_id() AND app_role() IN ('admin', 'system'));

ALTER TABLE vapi_phone_numbers ENABLE ROW LEVEL SECURITY;
CREATE POLICY vapi_phone_numbers_read ON vapi_phone_numbers FOR SELECT
    USING (org_id = app_org_id() AND app_is_staff());
CREATE POLICY vapi_phone_numbers_write ON vapi_phone_numbers FOR ALL
    USING (org_id = app_org_id() AND app_role() IN ('admin', 'system'))
    WITH CHECK (org_id = app_org_id() AND app_role() IN ('admin', 'system'));

GRANT SELECT, INSERT, UPDATE, DELETE ON
    organizations, users, memberships, invites, refresh_tokens, org_settings, vapi_phone_numbers
    TO sparring_app;
