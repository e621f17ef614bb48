-- Call ownership across gateway instances, and the audit trail of coach whispers.

-- The fencing token of the instance that owns a live call. Taking a call over bumps it; event
-- appends check it under a share lock, so an instance that lost the call can never add a seq.
ALTER TABLE roleplay_sessions ADD COLUMN owner_fence bigint NOT NULL DEFAULT 0;

-- A coach's whisper is an event like any other; who said what to whom is also audited.
CREATE FUNCTION audit_whisper() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS
$$
DECLARE
    whisperer uuid := nullif(NEW.payload -> 'from' ->> 'id', '')::uuid;
BEGIN
    INSERT INTO audit_log (org_id, actor_id, actor_role, action, table_name, row_id, new_data)
    VALUES (NEW.org_id, whisperer,
            (SELECT m.role FROM memberships m WHERE m.user_id = whisperer AND m.org_id = NEW.org_id),
            'insert', 'session_events', NEW.session_id::text || ':' || NEW.seq::text,
            jsonb_build_object('type', 'whisper', 'session_id', NEW.session_id, 'seq', NEW.seq,
                               'text', NEW.payload ->> 'text'));
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION audit_whisper() FROM PUBLIC;

CREATE TRIGGER audit_whisper AFTER INSERT ON session_events
    FOR EACH ROW WHEN (NEW.type = 'whisper') EXECUTE FUNCTION audit_whisper();
