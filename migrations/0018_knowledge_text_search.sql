-- Full-text knowledge search with bounded work (#15).
--
-- Row-level security keeps the GIN index on `tsv` out of the app's queries: `@@` is not
-- leakproof, so the planner may not evaluate it (as an index condition) before the policy's
-- quals, and every search read each chunk the org may see (a sequential scan, or one over the
-- org_id index) and ranked every chunk containing any query word: over 100,000 chunks with a
-- common word, hundreds of milliseconds. This function runs as its owner with the read policy
-- written out (the caller's org and the shared rows, `app_org_id()` of the caller's transaction),
-- so the index is usable, and it ranks a bounded set of candidates:
--   * each query word fetches the chunks containing it, at most 51 of them, and so does the
--     conjunction of all the words (when there are two or more);
--   * a word found in more than 50 chunks is too common to pick candidates itself (its matches
--     are an arbitrary few of many); it still counts in the ranking. gin_fuzzy_search_limit
--     makes the index return a random ~150 of such a word's chunks instead of all of them (a word
--     in at most 150 is read whole, so the count decides the same), which keeps a word found in
--     most chunks from costing milliseconds;
--   * candidates are the chunks of the words under that bound plus those containing every word;
--     when there are none, the capped matches of the common words are ranked instead.
-- Ranking is as before: `ts_rank_cd` against any of the words, best first, ties by id.
CREATE FUNCTION knowledge_text_hits(
    query text,
    filter_source text DEFAULT NULL,
    match_count integer DEFAULT 10
) RETURNS TABLE (id uuid, document_id uuid, chunk_index integer, source text, title text, content text,
                 rank real)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = public, pg_temp
SET jit = off
SET gin_fuzzy_search_limit = 150
AS
$$
    WITH words AS (
        -- the query's distinct lexemes (stemmed, stop words dropped), each quoted as a tsquery
        SELECT n, ('''' || replace(replace(w, '\', '\\'), '''', '''''') || '''')::tsquery AS q
        FROM unnest(tsvector_to_array(to_tsvector('english', query))) WITH ORDINALITY AS t (w, n)
    ), query AS (
        SELECT string_agg(q::text, ' | ')::tsquery AS any_word, string_agg(q::text, ' & ')::tsquery AS every_word,
               count(*) AS words
        FROM words
    ), probes AS (
        SELECT n, q, false AS every FROM words
        UNION ALL
        SELECT 0, every_word, true FROM query WHERE words > 1
    ), found AS (
        SELECT c.id, c.rank, p.every, count(*) OVER (PARTITION BY p.n) AS matches
        FROM probes p, query,
             LATERAL (SELECT k.id, ts_rank_cd(k.tsv, query.any_word) AS rank
                      FROM knowledge_base k
                      WHERE k.tsv @@ p.q AND (k.org_id IS NULL OR k.org_id = app_org_id())
                        AND (filter_source IS NULL OR k.source = filter_source)
                      LIMIT 51) c
    ), picked AS (
        SELECT f.id, max(f.rank) AS rank
        FROM found f
        WHERE f.every OR f.matches <= 50
           OR NOT EXISTS (SELECT 1 FROM found r WHERE r.every OR r.matches <= 50)
        GROUP BY f.id
        ORDER BY rank DESC, f.id
        LIMIT least(greatest(match_count, 0), 100)
    )
    SELECT k.id, k.document_id, k.chunk_index, k.source, k.title, k.content, p.rank
    FROM picked p JOIN knowledge_base k ON k.id = p.id
    WHERE k.org_id IS NULL OR k.org_id = app_org_id()
    ORDER BY p.rank DESC, k.id
$$;
REVOKE ALL ON FUNCTION knowledge_text_hits(text, text, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION knowledge_text_hits(text, text, integer) TO sparring_app;
