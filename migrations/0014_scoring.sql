-- Scoring: jobs any instance runs (claimed across organizations, worked inside one), their live
-- progress, the whole scorecard kept with each score, and the job a rep may follow for their call.

ALTER TABLE jobs
    ADD COLUMN session_id uuid,
    ADD COLUMN progress jsonb NOT NULL DEFAULT '{}',
    ADD CONSTRAINT jobs_session_org_fk FOREIGN KEY (session_id, org_id)
        REFERENCES roleplay_sessions (id, org_id) ON DELETE CASCADE;
CREATE INDEX jobs_session_idx ON jobs (session_id, created_at DESC) WHERE session_id IS NOT NULL;
UPDATE jobs SET session_id = (payload ->> 'session_id')::uuid
    WHERE kind = 'score_session' AND payload ? 'session_id'
      AND EXISTS (SELECT 1 FROM roleplay_sessions s WHERE s.id = (payload ->> 'session_id')::uuid AND s.org_id = jobs.org_id);

-- A rep follows (reads) the jobs of the sessions they can see; staff and background work see all.
CREATE POLICY jobs_read_own_session ON jobs FOR SELECT
    USING (org_id = app_org_id() AND session_id IS NOT NULL
           AND EXISTS (SELECT 1 FROM roleplay_sessions s WHERE s.id = jobs.session_id));

ALTER TABLE session_scores
    ADD COLUMN scorecard jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN passed boolean,
    ADD COLUMN pass_mark smallint CHECK (pass_mark BETWEEN 0 AND 100),
    ADD COLUMN fallback_reason text,
    ADD COLUMN job_id uuid REFERENCES jobs (id) ON DELETE SET NULL;
CREATE INDEX session_scores_session_latest_idx ON session_scores (session_id, created_at DESC)
    WHERE session_id IS NOT NULL;

-- Claims up to p_limit runnable jobs of the given kinds for one worker: queued ones whose time has
-- come, and running ones whose worker stopped renewing (their lease ran out). Skips rows another
-- worker is claiming. Jobs out of attempts whose worker died are failed here, once.
CREATE FUNCTION claim_jobs(p_kinds text[], p_worker text, p_lease interval, p_limit integer)
RETURNS TABLE (id uuid, org_id uuid, kind text, payload jsonb, attempts integer, max_attempts integer)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS
$$
BEGIN
    UPDATE jobs j SET status = 'failed', finished_at = now(), updated_at = now(), locked_by = NULL,
                      locked_until = NULL,
                      last_error = coalesce(j.last_error, 'the worker running it stopped') || ' (no attempts left)'
    WHERE j.status = 'running' AND j.locked_until < now() AND j.attempts >= j.max_attempts
      AND j.kind = ANY (p_kinds);
    RETURN QUERY
    UPDATE jobs j SET status = 'running', attempts = j.attempts + 1, locked_by = p_worker,
                      locked_until = now() + p_lease, updated_at = now()
    WHERE j.id IN (
        SELECT c.id FROM jobs c
        WHERE c.kind = ANY (p_kinds)
          AND ((c.status = 'queued' AND c.run_after <= now())
               OR (c.status = 'running' AND c.locked_until < now() AND c.attempts < c.max_attempts))
        ORDER BY c.run_after
        LIMIT p_limit
        FOR UPDATE SKIP LOCKED)
    RETURNING j.id, j.org_id, j.kind, j.payload, j.attempts, j.max_attempts;
END
$$;
REVOKE ALL ON FUNCTION claim_jobs(text[], text, interval, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION claim_jobs(text[], text, interval, integer) TO sparring_app;
