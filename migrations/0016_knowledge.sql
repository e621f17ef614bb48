-- The knowledge base as documents of chunks, each chunk's vector kept in its own model's space
-- (384-d all-MiniLM-L6-v2 locally, 1536-d text-embedding-3-small with a key), and the coaching
-- chat's conversations.

CREATE TABLE knowledge_documents (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id      uuid REFERENCES organizations (id) ON DELETE CASCADE,   -- NULL: shared with every org
    title       text NOT NULL,
    source      text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('text', 'markdown', 'pdf', 'docx')),
    size_bytes  integer NOT NULL CHECK (size_bytes >= 0),
    chunk_count integer NOT NULL DEFAULT 0,
    created_by  uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX knowledge_documents_org_idx ON knowledge_documents (org_id, created_at DESC);
-- The starter playbook is loaded once: its global row is unique by source.
CREATE UNIQUE INDEX knowledge_documents_global_source_key ON knowledge_documents (source) WHERE org_id IS NULL;

ALTER TABLE knowledge_documents ENABLE ROW LEVEL SECURITY;
CREATE POLICY knowledge_documents_read ON knowledge_documents FOR SELECT
    USING (org_id IS NULL OR org_id = app_org_id());
CREATE POLICY knowledge_documents_write ON knowledge_documents FOR ALL
    USING ((org_id = app_org_id() AND app_role() IN ('coach', 'admin', 'system'))
           OR (org_id IS NULL AND app_role() = 'platform'))
    WITH CHECK ((org_id = app_org_id() AND app_role() IN ('coach', 'admin', 'system'))
                OR (org_id IS NULL AND app_role() = 'platform'));
GRANT SELECT, INSERT, UPDATE, DELETE ON knowledge_documents TO sparring_app;

-- Vectors of any length: one HNSW index per model over a cast to its dimension, limited to that
-- model's rows, so a query compares like with like and never scans the other model's graph.
DROP FUNCTION match_knowledge(vector, double precision, integer, text, text);
DROP INDEX knowledge_base_embedding_idx;
ALTER TABLE knowledge_base
    ADD COLUMN document_id uuid REFERENCES knowledge_documents (id) ON DELETE CASCADE,
    ALTER COLUMN embedding TYPE vector;
-- Rows of 0005 were zero-padded to 1536: re-embedded in the background (their model differs).
UPDATE knowledge_base SET embedding = NULL, embedding_model = NULL WHERE embedding IS NOT NULL;
CREATE INDEX knowledge_base_document_idx ON knowledge_base (document_id, chunk_index);
CREATE INDEX knowledge_base_minilm_idx ON knowledge_base USING hnsw ((embedding::vector(384)) vector_cosine_ops)
    WHERE embedding_model = 'all-MiniLM-L6-v2';
CREATE INDEX knowledge_base_te3s_idx ON knowledge_base USING hnsw ((embedding::vector(1536)) vector_cosine_ops)
    WHERE embedding_model = 'text-embedding-3-small';

-- The original service's retrieval function, same name and first four parameters; filter_model
-- picks the vector space (the query's own model). It runs as the caller, so row-level security
-- limits it to the caller's org and the shared rows; iterative index scans keep returning rows
-- when that filter drops some of the nearest ones. The SQL is built with the model and its
-- dimension as literals so that the planner can use that model's partial index.
CREATE FUNCTION match_knowledge(
    query_embedding vector,
    match_threshold double precision DEFAULT 0.5,
    match_count integer DEFAULT 5,
    filter_source text DEFAULT NULL,
    filter_model text DEFAULT 'all-MiniLM-L6-v2'
) RETURNS TABLE (id uuid, document_id uuid, chunk_index integer, source text, title text, content text,
                 metadata jsonb, similarity double precision)
LANGUAGE plpgsql STABLE
SET hnsw.ef_search = 100
SET hnsw.iterative_scan = 'relaxed_order'
AS
$$
DECLARE
    dims integer := vector_dims(query_embedding);
BEGIN
    RETURN QUERY EXECUTE format(
        'SELECT r.id, r.document_id, r.chunk_index, r.source, r.title, r.content, r.metadata, r.similarity
         FROM (SELECT k.id, k.document_id, k.chunk_index, k.source, k.title, k.content, k.metadata,
                      1 - (k.embedding::vector(%1$s) <=> $1::vector(%1$s)) AS similarity
               FROM knowledge_base k
               WHERE k.embedding_model = %2$L AND ($2::text IS NULL OR k.source = $2)
               ORDER BY k.embedding::vector(%1$s) <=> $1::vector(%1$s)
               LIMIT $3) r
         WHERE r.similarity >= $4
         ORDER BY r.similarity DESC',
        dims, filter_model)
    USING query_embedding, filter_source, least(greatest(match_count, 0), 100), match_threshold;
END
$$;
GRANT EXECUTE ON FUNCTION match_knowledge(vector, double precision, integer, text, text) TO sparring_app;

-- Background re-embedding: which orgs (NULL: the shared rows) have chunks not in `p_model`'s space.
CREATE FUNCTION knowledge_stale_orgs(p_model text)
RETURNS TABLE (org_id uuid, chunks bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS
$$
    SELECT k.org_id, count(*) FROM knowledge_base k
    WHERE k.embedding_model IS DISTINCT FROM p_model GROUP BY k.org_id
$$;
REVOKE ALL ON FUNCTION knowledge_stale_orgs(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION knowledge_stale_orgs(text) TO sparring_app;

-- Coaching chat: each user's own conversations (not even staff read another's).
CREATE TABLE chat_conversations (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id     uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title      text NOT NULL,
    session_id uuid,   -- the call it asks about; not a key: the call may be deleted, the chat stays
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (id, org_id)
);
CREATE INDEX chat_conversations_user_idx ON chat_conversations (user_id, updated_at DESC);

CREATE TABLE chat_messages (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    conversation_id uuid NOT NULL,
    org_id          uuid NOT NULL,
    role            text NOT NULL CHECK (role IN ('user', 'assistant')),
    content         text NOT NULL,
    sources         jsonb NOT NULL DEFAULT '[]',
    created_at      timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (conversation_id, org_id) REFERENCES chat_conversations (id, org_id) ON DELETE CASCADE
);
CREATE INDEX chat_messages_conversation_idx ON chat_messages (conversation_id, id);

ALTER TABLE chat_conversations ENABLE ROW LEVEL SECURITY;
CREATE POLICY chat_conversations_own ON chat_conversations FOR ALL
    USING (org_id = app_org_id() AND user_id = app_user_id())
    WITH CHECK (org_id = app_org_id() AND user_id = app_user_id());
ALTER TABLE chat_messages ENABLE ROW LEVEL SECURITY;
CREATE POLICY chat_messages_own ON chat_messages FOR ALL
    USING (org_id = app_org_id()
           AND EXISTS (SELECT 1 FROM chat_conversations c WHERE c.id = chat_messages.conversation_id))
    WITH CHECK (org_id = app_org_id()
                AND EXISTS (SELECT 1 FROM chat_conversations c WHERE c.id = chat_messages.conversation_id));
GRANT SELECT, INSERT, UPDATE, DELETE ON chat_conversations, chat_messages TO sparring_app;
