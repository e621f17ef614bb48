-- Recorded calls: what an upload is (title, channels, who is on which channel, how its speakers
-- were found), the jobs that transcribe and score it (followed by the rep who uploaded it), and a
-- voice summary per transcript segment (mean log-mel, no audio, no words) for speaker clustering.

ALTER TABLE call_uploads
    ADD COLUMN title text,
    ADD COLUMN channels smallint CHECK (channels BETWEEN 1 AND 8),
    ADD COLUMN rep_channel text CHECK (rep_channel IN ('left', 'right')),
    ADD COLUMN speakers text CHECK (speakers IN ('channels', 'inferred', 'confirmed')),
    ADD COLUMN speaker_method text;  -- e.g. 'channels', 'voice-clustering', 'pauses'

ALTER TABLE transcript_segments ADD COLUMN voice real[];

ALTER TABLE jobs
    ADD COLUMN upload_id uuid,
    ADD CONSTRAINT jobs_upload_org_fk FOREIGN KEY (upload_id, org_id)
        REFERENCES call_uploads (id, org_id) ON DELETE CASCADE;
CREATE INDEX jobs_upload_idx ON jobs (upload_id, created_at DESC) WHERE upload_id IS NOT NULL;

-- A rep follows (reads) the jobs of the uploads they can see; staff and background work see all.
CREATE POLICY jobs_read_own_upload ON jobs FOR SELECT
    USING (org_id = app_org_id() AND upload_id IS NOT NULL
           AND EXISTS (SELECT 1 FROM call_uploads u WHERE u.id = jobs.upload_id));

CREATE INDEX session_scores_upload_latest_idx ON session_scores (upload_id, created_at DESC)
    WHERE upload_id IS NOT NULL;
