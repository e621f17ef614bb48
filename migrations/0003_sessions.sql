-- Personas, practice sessions and the durable event log of every call.
CREATE TABLE personas (
    id         text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9_-]{0,79}$'),
    org_id     uuid REFERENCES organizations (id) ON DELETE CASCADE,   -- NULL: built-in
    name       text NOT NULL,
    spec       jsonb NOT NULL,
    created_by uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz
);
CREATE INDEX personas_org_idx ON personas (org_id);

CREATE TABLE roleplay_sessions (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id            uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id           uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    persona_id        text NOT NULL,
    persona_snapshot  jsonb NOT NULL,  -- the persona exactly as this call used it
    transport         text NOT NULL DEFAULT 'websocket' CHECK (transport IN ('websocket', 'webrtc', 'vapi')),
    vapi_call_id      text UNIQUE,
    status            text NOT NULL DEFAULT 'created' CHECK (status IN ('created', 'live', 'ended')),
    end_reason        text,
    metadata          jsonb NOT NULL DEFAULT '{}',
    recording_blob_id uuid,
    created_at        timestamptz NOT NULL DEFAULT now(),
    started_at        timestamptz,
    ended_at          timestamptz,
    last_activity_at  timestamptz,
    deleted_at        timestamptz
);
CREATE INDEX roleplay_sessions_org_created_idx ON roleplay_sessions (org_id, created_at DESC);
CREATE INDEX roleplay_sessions_user_created_idx ON roleplay_sessions (user_id, created_at DESC);
CREATE INDEX roleplay_sessions_live_idx ON roleplay_sessions (org_id) WHERE status = 'live';

-- One row per event, seq gap-free per session, payload = the wire event (schema_version says which).
CREATE TABLE session_events (
    session_id     uuid NOT NULL REFERENCES roleplay_sessions (id) ON DELETE CASCADE,
    seq            bigint NOT NULL CHECK (seq > 0),
    org_id         uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    type           text NOT NULL,
    payload        jsonb NOT NULL,
    schema_version smallint NOT NULL DEFAULT 1,
    at             timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (session_id, seq)
);

CREATE TABLE call_uploads (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id       uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    filename     text NOT NULL,
    content_type text NOT NULL,
    size_bytes   bigint NOT NULL DEFAULT 0 CHECK (size_bytes >= 0),
    blob_id      uuid,
    status       text NOT NULL DEFAULT 'uploaded'
                 CHECK (status IN ('uploaded', 'transcribing', 'transcribed', 'scoring', 'scored', 'failed')),
    error        text,
    duration_ms  integer,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    deleted_at   timestamptz
);
CREATE INDEX call_uploads_org_created_idx ON call_uploads (org_id, created_at DESC);
CREATE INDEX call_uploads_user_idx ON call_uploads (user_id);

-- Transcript of a live session or of an uploaded recording (exactly one of the two).
CREATE TABLE transcript_segments (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id     uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    session_id uuid REFERENCES roleplay_sessions (id) ON DELETE CASCADE,
    upload_id  uuid REFERENCES call_uploads (id) ON DELETE CASCADE,
    segment_id text NOT NULL,
    speaker    text NOT NULL CHECK (speaker IN ('rep', 'persona', 'buyer', 'unknown')),
    text       text NOT NULL,
    start_ms   integer NOT NULL CHECK (start_ms >= 0),
    end_ms     integer NOT NULL CHECK (end_ms >= start_ms),
    seq        bigint,                 -- the transcript.final event it came from, for live sessions
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK (num_nonnulls(session_id, upload_id) = 1)
);
CREATE UNIQUE INDEX transcript_segments_session_key ON transcript_segments (session_id, segment_id)
    WHERE session_id IS NOT NULL;
CREATE UNIQUE INDEX transcript_segments_upload_key ON transcript_segments (upload_id, segment_id)
    WHERE upload_id IS NOT NULL;

-- Six dimensions, 0-100 each, plus the overall; evidence cites transcript segments.
CREATE TABLE session_scores (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id              uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id             uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    session_id          uuid REFERENCES roleplay_sessions (id) ON DELETE CASCADE,
    upload_id           uuid REFERENCES call_uploads (id) ON DELETE CASCADE,
    opening_rapport     smallint NOT NULL CHECK (opening_rapport BETWEEN 0 AND 100),
    discovery           smallint NOT NULL CHECK (discovery BETWEEN 0 AND 100),
    active_listening    smallint NOT NULL CHECK (active_listening BETWEEN 0 AND 100),
    value_articulation  smallint NOT NULL CHECK (value_articulation BETWEEN 0 AND 100),
    objection_handling  smallint NOT NULL CHECK (objection_handling BETWEEN 0 AND 100),
    closing_next_steps  smallint NOT NULL CHECK (closing_next_steps BETWEEN 0 AND 100),
    overall             numeric(5, 2) NOT NULL CHECK (overall BETWEEN 0 AND 100),
    evidence            jsonb NOT NULL DEFAULT '{}',
    scorer              text NOT NULL,     -- e.g. 'rules' or 'llm:gpt-4o'
    version             integer NOT NULL,  -- rubric version
    created_at          timestamptz NOT NULL DEFAULT now(),
    CHECK (num_nonnulls(session_id, upload_id) = 1)
);
CREATE INDEX session_scores_session_idx ON session_scores (session_id) WHERE session_id IS NOT NULL;
CREATE INDEX session_scores_upload_idx ON session_scores (upload_id) WHERE upload_id IS NOT NULL;
CREATE INDEX session_scores_user_idx ON session_scores (user_id, created_at DESC);

ALTER TABLE personas ENABLE ROW LEVEL SECURITY;
CREATE POLICY personas_read ON personas FOR SELECT
    USING (org_id IS NULL OR org_id = app_org_id());
CREATE POLICY personas_write ON personas FOR ALL
    USING ((org_id = app_org_id() AND app_role() IN ('coach', 'admin', 'system'))
           OR (org_id IS NULL AND app_role() = 'platform'))
    WITH CHECK ((org_id = app_org_id() AND app_role() IN ('coach', 'admin', 'system'))
                OR (org_id IS NULL AND app_role() = 'platform'));

-- Trainees see and write their own rows; coaches, admins and background work the org's.
ALTER TABLE roleplay_sessions ENABLE ROW LEVEL SECURITY;
CREATE POLICY roleplay_sessions_tenant ON roleplay_sessions FOR ALL
    USING (org_id = app_org_id() AND (app_is_staff() OR user_id = app_user_id()))
    WITH CHECK (org_id = app_org_id() AND (app_is_staff() OR user_id = app_user_id()));

ALTER TABLE session_events ENABLE ROW LEVEL SECURITY;
CREATE POLICY session_events_tenant ON session_events FOR ALL
    USING (org_id = app_org_id() AND (app_is_staff() OR EXISTS (
        SELECT 1 FROM roleplay_sessions s WHERE s.id = session_events.session_id)))
    WITH CHECK (org_id = app_org_id() AND (app_is_staff() OR EXISTS (
        SELECT 1 FROM roleplay_sessions s WHERE s.id = session_events.session_id)));

ALTER TABLE call_uploads ENABLE ROW LEVEL SECURITY;
CREATE POLICY call_uploads_tenant ON call_uploads FOR ALL
    USING (org_id = app_org_id() AND (app_is_staff() OR user_id = app_user_id()))
    WITH CHECK (org_id = app_org_id() AND (app_is_staff() OR user_id = app_user_id()));

ALTER TABLE transcript_segments ENABLE ROW LEVEL SECURITY;
CREATE POLICY transcript_segments_tenant ON transcript_segments FOR ALL
    USING (org_id = app_org_id() AND (app_is_staff()
           OR EXISTS (SELECT 1 FROM roleplay_sessions s WHERE s.id = transcript_segments.session_id)
           OR EXISTS (SELECT 1 FROM call_uploads u WHERE u.id = transcript_segments.upload_id)))
    WITH CHECK (org_id = app_org_id() AND (app_is_staff()
           OR EXISTS (SELECT 1 FROM roleplay_sessions s WHERE s.id = transcript_segments.session_id)
           OR EXISTS (SELECT 1 FROM call_uploads u WHERE u.id = transcript_segments.upload_id)));

ALTER TABLE session_scores ENABLE ROW LEVEL SECURITY;
CREATE POLICY session_scores_tenant ON session_scores FOR ALL
    USING (org_id = app_org_id() AND (app_is_staff() OR user_id = app_user_id()))
    WITH CHECK (org_id = app_org_id() AND (app_is_staff() OR user_id = app_user_id()));

GRANT SELECT, INSERT, UPDATE, DELETE ON
    personas, roleplay_sessions, session_events, call_uploads, transcript_segments, session_scores
    TO sparring_app;
