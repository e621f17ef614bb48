-- The only doors across tenants, for the moments before a tenant is known: login by email, a
-- federated login by external id, redeeming an invite, presenting a refresh token. Each returns
-- the least it can; the caller then sets the tenant context and works under row-level security.
CREATE FUNCTION auth_user_by_email(p_email text)
RETURNS TABLE (id uuid, name text, email text, password_hash text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS
$$
    SELECT u.id, u.name, u.email, u.password_hash FROM users u
    WHERE lower(u.email) = lower(p_email) AND u.deleted_at IS NULL
$$;

CREATE FUNCTION auth_user_by_external_id(p_external_id text)
RETURNS uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS
$$
    SELECT u.id FROM users u WHERE u.external_id = p_external_id AND u.deleted_at IS NULL
$$;

-- One organization per user in this version: the oldest membership is the active one.
CREATE FUNCTION auth_primary_membership(p_user_id uuid)
RETURNS TABLE (org_id uuid, role text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS
$$
    SELECT m.org_id, m.role FROM memberships m JOIN organizations o ON o.id = m.org_id
    WHERE m.user_id = p_user_id AND o.deleted_at IS NULL
    ORDER BY m.created_at, m.org_id LIMIT 1
$$;

-- Takes one use of a valid invite atomically (two sign-ups cannot both take the last use).
CREATE FUNCTION auth_claim_invite(p_code_hash text)
RETURNS TABLE (id uuid, org_id uuid, role text)
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS
$$
    UPDATE invites SET uses = uses + 1
    WHERE code_hash = p_code_hash AND revoked_at IS NULL AND expires_at > now() AND uses < max_uses
    RETURNING invites.id, invites.org_id, invites.role
$$;

CREATE FUNCTION auth_refresh_token(p_token_hash text)
RETURNS TABLE (id uuid, user_id uuid, org_id uuid, family_id uuid, expires_at timestamptz,
               used_at timestamptz, revoked_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS
$$
    SELECT t.id, t.user_id, t.org_id, t.family_id, t.expires_at, t.used_at, t.revoked_at
    FROM refresh_tokens t WHERE t.token_hash = p_token_hash
$$;

REVOKE ALL ON FUNCTION auth_user_by_email(text), auth_user_by_external_id(text), auth_primary_membership(uuid),
    auth_claim_invite(text), auth_refresh_token(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth_user_by_email(text), auth_user_by_external_id(text), auth_primary_membership(uuid),
    auth_claim_invite(text), auth_refresh_token(text) TO sparring_app;
