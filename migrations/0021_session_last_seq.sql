-- A session keeps the seq of its last stored event, written by the same statement that stores
-- the events. A transaction that locks the session row (FOR UPDATE) reads it with the lock: a
-- read-committed statement that waited for the lock gets the row as its previous holder left
-- it, so the seq needs no statement of its own after the lock (max(seq) over the events would:
-- that statement's snapshot predates the holder's commit).
ALTER TABLE roleplay_sessions ADD COLUMN last_seq bigint NOT NULL DEFAULT 0 CHECK (last_seq >= 0);
UPDATE roleplay_sessions s SET last_seq = e.seq
FROM (SELECT session_id, max(seq) AS seq FROM session_events GROUP BY session_id) e
WHERE e.session_id = s.id;

-- It changes with every event, like last_activity_at: not copied into the audit trail.
DROP TRIGGER audit ON roleplay_sessions;
DROP TRIGGER audit_status ON roleplay_sessions;
CREATE TRIGGER audit AFTER INSERT OR DELETE ON roleplay_sessions
    FOR EACH ROW EXECUTE FUNCTION audit_row('persona_snapshot', 'metadata', 'last_activity_at', 'last_seq');
CREATE TRIGGER audit_status AFTER UPDATE OF status, end_reason, deleted_at, user_id ON roleplay_sessions
    FOR EACH ROW EXECUTE FUNCTION audit_row('persona_snapshot', 'metadata', 'last_activity_at', 'last_seq');
