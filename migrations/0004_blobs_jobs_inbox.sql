-- Blobs stored in Postgres in chunks, the durable job queue, and the provider webhook inbox.
CREATE TABLE blobs (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id       uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    owner_id     uuid REFERENCES users (id) ON DELETE CASCADE,
    content_type text NOT NULL,
    status       text NOT NULL DEFAULT 'writing' CHECK (status IN ('writing', 'complete', 'aborted')),
    size_bytes   bigint NOT NULL DEFAULT 0 CHECK (size_bytes >= 0),
    chunk_count  integer NOT NULL DEFAULT 0 CHECK (chunk_count >= 0),
    sha256       text CHECK (sha256 ~ '^[0-9a-f]{64}$'),   -- set when complete
    created_at   timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz
);
CREATE INDEX blobs_org_idx ON blobs (org_id);
CREATE INDEX blobs_owner_idx ON blobs (owner_id);

-- Chunks are appended as they arrive, so a recording is readable while the call still runs.
CREATE TABLE blob_chunks (
    blob_id uuid NOT NULL REFERENCES blobs (id) ON DELETE CASCADE,
    idx     integer NOT NULL CHECK (idx >= 0),
    org_id  uuid NOT NULL,
    data    bytea NOT NULL,
    PRIMARY KEY (blob_id, idx)
);
ALTER TABLE blob_chunks ALTER COLUMN data SET STORAGE EXTERNAL;  -- audio does not compress

ALTER TABLE roleplay_sessions
    ADD CONSTRAINT roleplay_sessions_recording_fk FOREIGN KEY (recording_blob_id) REFERENCES blobs (id) ON DELETE SET NULL;
ALTER TABLE call_uploads
    ADD CONSTRAINT call_uploads_blob_fk FOREIGN KEY (blob_id) REFERENCES blobs (id) ON DELETE SET NULL;

CREATE TABLE jobs (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id       uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    kind         text NOT NULL,        -- e.g. 'score_session', 'transcribe_upload'
    payload      jsonb NOT NULL DEFAULT '{}',
    status       text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'done', 'failed')),
    attempts     integer NOT NULL DEFAULT 0,
    max_attempts integer NOT NULL DEFAULT 5 CHECK (max_attempts > 0),
    run_after    timestamptz NOT NULL DEFAULT now(),
    locked_by    text,
    locked_until timestamptz,
    last_error   text,
    dedupe_key   text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz
);
CREATE INDEX jobs_ready_idx ON jobs (run_after) WHERE status = 'queued';
CREATE INDEX jobs_running_idx ON jobs (locked_until) WHERE status = 'running';
CREATE UNIQUE INDEX jobs_dedupe_key ON jobs (kind, dedupe_key) WHERE dedupe_key IS NOT NULL;

-- Every accepted provider delivery, for deduplication and replay.
CREATE TABLE webhook_inbox (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id       uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    provider     text NOT NULL,        -- 'vapi'
    dedupe_key   text NOT NULL,
    message_type text NOT NULL,
    payload      jsonb NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    processed_at timestamptz,
    attempts     integer NOT NULL DEFAULT 0,
    error        text,
    UNIQUE (provider, dedupe_key)
);
CREATE INDEX webhook_inbox_unprocessed_idx ON webhook_inbox (received_at) WHERE processed_at IS NULL;

ALTER TABLE blobs ENABLE ROW LEVEL SECURITY;
CREATE POLICY blobs_tenant ON blobs FOR ALL
    USING (org_id = app_org_id() AND (app_is_staff() OR owner_id = app_user_id()))
    WITH CHECK (org_id = app_org_id() AND (app_is_staff() OR owner_id = app_user_id()));

ALTER TABLE blob_chunks ENABLE ROW LEVEL SECURITY;
CREATE POLICY blob_chunks_tenant ON blob_chunks FOR ALL
    USING (org_id = app_org_id() AND EXISTS (SELECT 1 FROM blobs b WHERE b.id = blob_chunks.blob_id))
    WITH CHECK (org_id = app_org_id() AND EXISTS (SELECT 1 FROM blobs b WHERE b.id = blob_chunks.blob_id));

ALTER TABLE jobs ENABLE ROW LEVEL SECURITY;
CREATE POLICY jobs_tenant ON jobs FOR ALL
    USING (org_id = app_org_id() AND app_is_staff())
    WITH CHECK (org_id = app_org_id());

ALTER TABLE webhook_inbox ENABLE ROW LEVEL SECURITY;
CREATE POLICY webhook_inbox_tenant ON webhook_inbox FOR ALL
    USING (org_id = app_org_id() AND app_role() IN ('admin', 'system'))
    WITH CHECK (org_id = app_org_id() AND app_role() IN ('admin', 'system'));

GRANT SELECT, INSERT, UPDATE, DELETE ON blobs, blob_chunks, jobs, webhook_inbox TO sparring_app;
