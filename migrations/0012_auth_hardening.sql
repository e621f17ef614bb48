-- Revocation that reaches every instance: a denylist of access tokens (by `jti`) and of logins
-- (by refresh-token family, whose access tokens carry `fam`), kept only until those tokens expire.
-- The app role neither reads nor writes the table directly: the functions below are its doors.
CREATE TABLE revoked_tokens (
    id         text PRIMARY KEY,      -- 'jti:<hex>' or 'family:<uuid>'
    expires_at timestamptz NOT NULL   -- when the last token it denies expires; the row goes after that
);
CREATE INDEX revoked_tokens_expires_idx ON revoked_tokens (expires_at);
ALTER TABLE revoked_tokens ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON revoked_tokens FROM PUBLIC;

CREATE FUNCTION auth_revoke_tokens(p_ids text[], p_expires_at timestamptz)
RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS
$$
    DELETE FROM revoked_tokens WHERE expires_at < now();
    INSERT INTO revoked_tokens (id, expires_at) SELECT unnest(p_ids), p_expires_at
    ON CONFLICT (id) DO UPDATE SET expires_at = greatest(revoked_tokens.expires_at, EXCLUDED.expires_at);
$$;

CREATE FUNCTION auth_token_revoked(p_ids text[])
RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS
$$
    SELECT EXISTS (SELECT 1 FROM revoked_tokens WHERE id = ANY (p_ids) AND expires_at > now())
$$;

-- Which of an instance's open sockets are still allowed, in one query: the user and the org still
-- exist, the membership too (with a staff role where `p_staff`), and neither the socket's token
-- nor its login was revoked. Returns the ordinals (1-based) of the allowed entries.
CREATE FUNCTION auth_sockets_allowed(p_user_ids uuid[], p_org_ids uuid[], p_token_ids text[], p_staff boolean[])
RETURNS SETOF bigint
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS
$$
    SELECT s.i FROM unnest(p_user_ids, p_org_ids, p_staff) WITH ORDINALITY AS s (user_id, org_id, staff, i)
    WHERE EXISTS (
        SELECT 1 FROM memberships m
        JOIN users u ON u.id = m.user_id AND u.deleted_at IS NULL
        JOIN organizations o ON o.id = m.org_id AND o.deleted_at IS NULL
        WHERE m.user_id = s.user_id AND m.org_id = s.org_id AND (NOT s.staff OR m.role IN ('coach', 'admin')))
    AND NOT EXISTS (
        SELECT 1 FROM revoked_tokens r
        WHERE r.expires_at > now() AND r.id IN (
            SELECT unnest(string_to_array(p_token_ids[s.i], ' '))))
$$;

REVOKE ALL ON FUNCTION auth_revoke_tokens(text[], timestamptz), auth_token_revoked(text[]),
    auth_sockets_allowed(uuid[], uuid[], text[], boolean[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth_revoke_tokens(text[], timestamptz), auth_token_revoked(text[]),
    auth_sockets_allowed(uuid[], uuid[], text[], boolean[]) TO sparring_app;
