-- VAPI-hosted calls: finding the session a webhook belongs to, and keeping deliveries that
-- belong to no organization yet.

-- A delivery for a call no session claims, on the endpoint without an organization, is still kept.
ALTER TABLE webhook_inbox ALTER COLUMN org_id DROP NOT NULL;
CREATE POLICY webhook_inbox_platform ON webhook_inbox FOR ALL
    USING (org_id IS NULL AND app_role() = 'platform')
    WITH CHECK (org_id IS NULL AND app_role() = 'platform');

-- Webhooks arrive without a user: find the session (by id, else by VAPI call id) and its org.
CREATE FUNCTION vapi_find_session(p_session_id uuid, p_call_id text)
RETURNS TABLE (session_id uuid, org_id uuid, vapi_call_id text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS
$$
    SELECT s.id, s.org_id, s.vapi_call_id FROM roleplay_sessions s
    WHERE s.deleted_at IS NULL AND ((p_session_id IS NOT NULL AND s.id = p_session_id)
                                    OR (p_call_id IS NOT NULL AND s.vapi_call_id = p_call_id))
    ORDER BY (s.id = p_session_id) DESC NULLS LAST
    LIMIT 1
$$;
REVOKE ALL ON FUNCTION vapi_find_session(uuid, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION vapi_find_session(uuid, text) TO sparring_app;

-- The org a VAPI phone number answers for (assistant-request on the endpoint without an org).
CREATE FUNCTION vapi_phone_org(p_phone_number text)
RETURNS TABLE (org_id uuid, persona_id text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS
$$
    SELECT org_id, persona_id FROM vapi_phone_numbers WHERE phone_number = p_phone_number
$$;
REVOKE ALL ON FUNCTION vapi_phone_org(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION vapi_phone_org(text) TO sparring_app;
