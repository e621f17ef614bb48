-- Keys scoped to the tenant that owns them: VAPI call ids and inbox dedupe keys per endpoint/org,
-- child rows tied to their parent's org by composite foreign keys, and VAPI calls that never end.

-- --- VAPI call ids: one per org, and bound by the endpoint that verified the delivery ----------
ALTER TABLE roleplay_sessions DROP CONSTRAINT roleplay_sessions_vapi_call_id_key;
ALTER TABLE roleplay_sessions ADD CONSTRAINT roleplay_sessions_org_vapi_call_key UNIQUE (org_id, vapi_call_id);
-- true: the call id was bound by a delivery the platform endpoint verified (the platform secret);
-- false: by an organization's own endpoint, whose lookups stay inside that organization.
ALTER TABLE roleplay_sessions ADD COLUMN vapi_call_platform boolean NOT NULL DEFAULT false;
-- true: the webhook created the session for the org's first admin (no person started it), so it
-- never counts against anyone's live-call limit.
ALTER TABLE roleplay_sessions ADD COLUMN vapi_webhook_created boolean NOT NULL DEFAULT false;
-- Calls bound before this migration: kept reachable from the platform endpoint unless their org
-- accepts unsigned deliveries (who bound those cannot be known).
UPDATE roleplay_sessions s SET vapi_call_platform = true
WHERE s.vapi_call_id IS NOT NULL AND NOT EXISTS (
    SELECT 1 FROM org_settings o WHERE o.org_id = s.org_id AND o.vapi_auth_mode = 'none');

-- The inbox deduplicates per endpoint: 'platform' or the organization id of the org endpoint.
ALTER TABLE webhook_inbox ADD COLUMN endpoint text NOT NULL DEFAULT 'platform';
ALTER TABLE webhook_inbox DROP CONSTRAINT webhook_inbox_provider_dedupe_key_key;
ALTER TABLE webhook_inbox ADD CONSTRAINT webhook_inbox_endpoint_dedupe_key UNIQUE (provider, endpoint, dedupe_key);

DROP FUNCTION vapi_find_session(uuid, text);
-- The session by id (any org when p_endpoint_org is NULL: the platform endpoint, whose callers
-- prove the id with a signed token), else by call id: among platform-bound calls for the platform
-- endpoint, among the org's own sessions for an org endpoint. An org endpoint never sees another org.
CREATE FUNCTION vapi_find_session(p_session_id uuid, p_call_id text, p_endpoint_org uuid)
RETURNS TABLE (session_id uuid, org_id uuid, vapi_call_id text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS
$$
    SELECT s.id, s.org_id, s.vapi_call_id FROM roleplay_sessions s
    WHERE s.deleted_at IS NULL
      AND (p_endpoint_org IS NULL OR s.org_id = p_endpoint_org)
      AND ((p_session_id IS NOT NULL AND s.id = p_session_id)
           OR (p_call_id IS NOT NULL AND s.vapi_call_id = p_call_id
               AND (p_endpoint_org IS NOT NULL OR s.vapi_call_platform)))
    ORDER BY (s.id = p_session_id) DESC NULLS LAST, s.created_at
    LIMIT 1
$$;
REVOKE ALL ON FUNCTION vapi_find_session(uuid, text, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION vapi_find_session(uuid, text, uuid) TO sparring_app;

-- VAPI calls whose `ended` never arrived, across organizations (each is then ended inside its org).
CREATE FUNCTION stale_vapi_sessions(p_started_before interval)
RETURNS TABLE (session_id uuid, org_id uuid)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS
$$
    SELECT id, org_id FROM roleplay_sessions
    WHERE status = 'live' AND transport = 'vapi' AND deleted_at IS NULL
      AND coalesce(started_at, created_at) < now() - p_started_before
    ORDER BY started_at
    LIMIT 100
$$;
REVOKE ALL ON FUNCTION stale_vapi_sessions(interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION stale_vapi_sessions(interval) TO sparring_app;

-- --- Child rows belong to their parent's organization ----------------------------------------
-- Row-level security checks a child's own org_id only; these keys make the parent's org the
-- child's. Rows that already point across organizations can only have been planted there, and
-- would shadow the parent's real rows: they are removed (links cleared) before the keys go on.
ALTER TABLE roleplay_sessions ADD CONSTRAINT roleplay_sessions_id_org_key UNIQUE (id, org_id);
ALTER TABLE call_uploads ADD CONSTRAINT call_uploads_id_org_key UNIQUE (id, org_id);
ALTER TABLE blobs ADD CONSTRAINT blobs_id_org_key UNIQUE (id, org_id);

DELETE FROM session_events e USING roleplay_sessions s WHERE s.id = e.session_id AND s.org_id <> e.org_id;
DELETE FROM transcript_segments t USING roleplay_sessions s WHERE s.id = t.session_id AND s.org_id <> t.org_id;
DELETE FROM transcript_segments t USING call_uploads u WHERE u.id = t.upload_id AND u.org_id <> t.org_id;
DELETE FROM session_scores c USING roleplay_sessions s WHERE s.id = c.session_id AND s.org_id <> c.org_id;
DELETE FROM session_scores c USING call_uploads u WHERE u.id = c.upload_id AND u.org_id <> c.org_id;
DELETE FROM blob_chunks c WHERE NOT EXISTS (SELECT 1 FROM blobs b WHERE b.id = c.blob_id AND b.org_id = c.org_id);
UPDATE roleplay_sessions s SET recording_blob_id = NULL FROM blobs b
WHERE b.id = s.recording_blob_id AND b.org_id <> s.org_id;
UPDATE call_uploads u SET blob_id = NULL FROM blobs b WHERE b.id = u.blob_id AND b.org_id <> u.org_id;

ALTER TABLE session_events DROP CONSTRAINT session_events_session_id_fkey,
    ADD CONSTRAINT session_events_session_org_fk FOREIGN KEY (session_id, org_id)
        REFERENCES roleplay_sessions (id, org_id) ON DELETE CASCADE;
ALTER TABLE transcript_segments DROP CONSTRAINT transcript_segments_session_id_fkey,
    DROP CONSTRAINT transcript_segments_upload_id_fkey,
    ADD CONSTRAINT transcript_segments_session_org_fk FOREIGN KEY (session_id, org_id)
        REFERENCES roleplay_sessions (id, org_id) ON DELETE CASCADE,
    ADD CONSTRAINT transcript_segments_upload_org_fk FOREIGN KEY (upload_id, org_id)
        REFERENCES call_uploads (id, org_id) ON DELETE CASCADE;
ALTER TABLE session_scores DROP CONSTRAINT session_scores_session_id_fkey,
    DROP CONSTRAINT session_scores_upload_id_fkey,
    ADD CONSTRAINT session_scores_session_org_fk FOREIGN KEY (session_id, org_id)
        REFERENCES roleplay_sessions (id, org_id) ON DELETE CASCADE,
    ADD CONSTRAINT session_scores_upload_org_fk FOREIGN KEY (upload_id, org_id)
        REFERENCES call_uploads (id, org_id) ON DELETE CASCADE;
ALTER TABLE blob_chunks DROP CONSTRAINT blob_chunks_blob_id_fkey,
    ADD CONSTRAINT blob_chunks_blob_org_fk FOREIGN KEY (blob_id, org_id)
        REFERENCES blobs (id, org_id) ON DELETE CASCADE;
-- A deleted blob clears the link only (SET NULL of one column: PostgreSQL 15+).
ALTER TABLE roleplay_sessions DROP CONSTRAINT roleplay_sessions_recording_fk,
    ADD CONSTRAINT roleplay_sessions_recording_org_fk FOREIGN KEY (recording_blob_id, org_id)
        REFERENCES blobs (id, org_id) ON DELETE SET NULL (recording_blob_id);
ALTER TABLE call_uploads DROP CONSTRAINT call_uploads_blob_fk,
    ADD CONSTRAINT call_uploads_blob_org_fk FOREIGN KEY (blob_id, org_id)
        REFERENCES blobs (id, org_id) ON DELETE SET NULL (blob_id);
