-- The audit trail, written by triggers so no code path can forget it. The app role can read
-- its org's rows (admins) but can neither write nor change them.
CREATE TABLE audit_log (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id     uuid,                   -- no foreign keys: the trail outlives what it describes
    actor_id   uuid,
    actor_role text,
    action     text NOT NULL CHECK (action IN ('insert', 'update', 'delete')),
    table_name text NOT NULL,
    row_id     text,
    old_data   jsonb,
    new_data   jsonb,
    at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_org_idx ON audit_log (org_id, id DESC);

-- Trigger arguments name the columns never to copy (secrets and personal data); what is left
-- says what changed. Runs as the table owner so the app role needs no INSERT on audit_log.
CREATE FUNCTION audit_row() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS
$$
DECLARE
    old_j jsonb;
    new_j jsonb;
    row_org uuid;
    hidden text[] := CASE WHEN TG_NARGS > 0 THEN TG_ARGV ELSE '{}'::text[] END;  -- TG_ARGV is NULL without arguments
BEGIN
    IF TG_OP <> 'INSERT' THEN old_j := to_jsonb(OLD) - hidden; END IF;
    IF TG_OP <> 'DELETE' THEN new_j := to_jsonb(NEW) - hidden; END IF;
    IF TG_OP = 'UPDATE' AND old_j IS NOT DISTINCT FROM new_j THEN
        RETURN NULL;
    END IF;
    IF TG_TABLE_NAME = 'organizations' THEN
        row_org := coalesce(new_j ->> 'id', old_j ->> 'id')::uuid;
    ELSE
        row_org := coalesce(new_j ->> 'org_id', old_j ->> 'org_id', app_org_id()::text)::uuid;
    END IF;
    INSERT INTO audit_log (org_id, actor_id, actor_role, action, table_name, row_id, old_data, new_data)
    VALUES (row_org, app_user_id(), app_role(), lower(TG_OP), TG_TABLE_NAME,
            coalesce(new_j ->> 'id', old_j ->> 'id',
                     new_j ->> 'user_id', old_j ->> 'user_id',
                     new_j ->> 'phone_number', old_j ->> 'phone_number'),
            old_j, new_j);
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION audit_row() FROM PUBLIC;

CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON organizations
    FOR EACH ROW EXECUTE FUNCTION audit_row();
CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION audit_row('email', 'name', 'password_hash', 'external_id');
CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON memberships
    FOR EACH ROW EXECUTE FUNCTION audit_row();
CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON invites
    FOR EACH ROW EXECUTE FUNCTION audit_row('code_hash');
CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON org_settings
    FOR EACH ROW EXECUTE FUNCTION audit_row('vapi_webhook_secret');
CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON vapi_phone_numbers
    FOR EACH ROW EXECUTE FUNCTION audit_row();
CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON personas
    FOR EACH ROW EXECUTE FUNCTION audit_row('spec');
-- Sessions change last_activity_at all the time: only what a reviewer cares about is recorded.
CREATE TRIGGER audit AFTER INSERT OR DELETE ON roleplay_sessions
    FOR EACH ROW EXECUTE FUNCTION audit_row('persona_snapshot', 'metadata', 'last_activity_at');
CREATE TRIGGER audit_status AFTER UPDATE OF status, end_reason, deleted_at, user_id ON roleplay_sessions
    FOR EACH ROW EXECUTE FUNCTION audit_row('persona_snapshot', 'metadata', 'last_activity_at');
CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON session_scores
    FOR EACH ROW EXECUTE FUNCTION audit_row('evidence');
CREATE TRIGGER audit AFTER INSERT OR DELETE ON call_uploads
    FOR EACH ROW EXECUTE FUNCTION audit_row('filename');
CREATE TRIGGER audit_status AFTER UPDATE OF status, deleted_at ON call_uploads
    FOR EACH ROW EXECUTE FUNCTION audit_row('filename');

ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY;
CREATE POLICY audit_log_admin ON audit_log FOR SELECT
    USING (org_id = app_org_id() AND app_role() IN ('admin', 'system'));
GRANT SELECT ON audit_log TO sparring_app;
