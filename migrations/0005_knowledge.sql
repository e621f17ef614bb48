-- The coaching knowledge base: chunks with embeddings for retrieval, plus full-text search.
-- Embeddings are 1536-dimensional (text-embedding-3-small). Smaller local models are stored
-- zero-padded: padding changes neither norms nor dot products, so cosine similarity is exact.
-- embedding_model keeps vectors of different models from being compared with each other.
CREATE TABLE knowledge_base (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id          uuid REFERENCES organizations (id) ON DELETE CASCADE,   -- NULL: shared with every org
    source          text NOT NULL,
    title           text,
    content         text NOT NULL,
    chunk_index     integer NOT NULL DEFAULT 0,
    metadata        jsonb NOT NULL DEFAULT '{}',
    embedding       vector(1536),
    embedding_model text,
    tsv             tsvector GENERATED ALWAYS AS
                        (to_tsvector('english', coalesce(title, '') || ' ' || content)) STORED,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
-- HNSW needs no training data, so it can be built on an empty table.
CREATE INDEX knowledge_base_embedding_idx ON knowledge_base USING hnsw (embedding vector_cosine_ops);
CREATE INDEX knowledge_base_tsv_idx ON knowledge_base USING gin (tsv);
CREATE INDEX knowledge_base_org_source_idx ON knowledge_base (org_id, source);

-- The original service's retrieval function, same name and first four parameters. It runs as
-- the caller, so row-level security limits it to the caller's org and the shared rows.
CREATE FUNCTION match_knowledge(
    query_embedding vector(1536),
    match_threshold double precision DEFAULT 0.5,
    match_count integer DEFAULT 5,
    filter_source text DEFAULT NULL,
    filter_model text DEFAULT NULL
) RETURNS TABLE (id uuid, source text, title text, content text, metadata jsonb, similarity double precision)
LANGUAGE sql STABLE AS
$$
    SELECT k.id, k.source, k.title, k.content, k.metadata, 1 - (k.embedding <=> query_embedding) AS similarity
    FROM knowledge_base k
    WHERE k.embedding IS NOT NULL
      AND (filter_source IS NULL OR k.source = filter_source)
      AND (filter_model IS NULL OR k.embedding_model = filter_model)
      AND 1 - (k.embedding <=> query_embedding) >= match_threshold
    ORDER BY k.embedding <=> query_embedding
    LIMIT least(greatest(match_count, 0), 100)
$$;

ALTER TABLE knowledge_base ENABLE ROW LEVEL SECURITY;
CREATE POLICY knowledge_base_read ON knowledge_base FOR SELECT
    USING (org_id IS NULL OR org_id = app_org_id());
CREATE POLICY knowledge_base_write ON knowledge_base FOR ALL
    USING ((org_id = app_org_id() AND app_role() IN ('coach', 'admin', 'system'))
           OR (org_id IS NULL AND app_role() = 'platform'))
    WITH CHECK ((org_id = app_org_id() AND app_role() IN ('coach', 'admin', 'system'))
                OR (org_id IS NULL AND app_role() = 'platform'));

GRANT SELECT, INSERT, UPDATE, DELETE ON knowledge_base TO sparring_app;
