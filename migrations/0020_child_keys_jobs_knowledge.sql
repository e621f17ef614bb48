-- The last child rows that named a tenant row by its id alone: a score's job and a knowledge
-- chunk's document. With a single-column key, staff of one org could point their own row at
-- another org's job or document (row-level security checks only the child's org_id); the
-- composite keys tie each child to its parent's organization, as 0013 did for the others.

-- A score names the job that produced it, of its own org. Deleting the job clears only job_id.
ALTER TABLE jobs ADD CONSTRAINT jobs_id_org_key UNIQUE (id, org_id);
UPDATE session_scores c SET job_id = NULL FROM jobs j WHERE j.id = c.job_id AND j.org_id <> c.org_id;
ALTER TABLE session_scores DROP CONSTRAINT session_scores_job_id_fkey,
    ADD CONSTRAINT session_scores_job_org_fk FOREIGN KEY (job_id, org_id)
        REFERENCES jobs (id, org_id) ON DELETE SET NULL (job_id);

-- An org's chunk belongs to a document of that org. Shared chunks (org_id NULL) are not matched
-- by a composite key (MATCH SIMPLE skips a row with a NULL column), so the single-column key
-- stays beside it: every chunk's document exists, and deleting a shared document removes its chunks.
ALTER TABLE knowledge_documents ADD CONSTRAINT knowledge_documents_id_org_key UNIQUE (id, org_id);
DELETE FROM knowledge_base k USING knowledge_documents d
WHERE d.id = k.document_id AND k.org_id IS NOT NULL AND d.org_id IS DISTINCT FROM k.org_id;
ALTER TABLE knowledge_base ADD CONSTRAINT knowledge_base_document_org_fk FOREIGN KEY (document_id, org_id)
    REFERENCES knowledge_documents (id, org_id) ON DELETE CASCADE;
