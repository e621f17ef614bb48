-- Full-text knowledge search that gives the same answer to the same question (#15).
--
-- 0018's gin_fuzzy_search_limit applied to every index scan in the function, the one for chunks
-- containing every query word too: when the words were common, the index returned a random part
-- of those chunks, and the same query ranked different chunks from one call to the next (138 of
-- 200 bench queries did). The conjunction now runs in its own function without the limit (the
-- index's fast scan skips through a common word's entries using the rarer ones'), so it is read
-- whole; the single-word probes keep the limit, which only decides whether a word is common.
-- When no chunk has every word and no word is rare, the chunks with all the words but one are the
-- candidates (read whole too); only when there are none either does the sample of the common
-- words' chunks decide, as before.
-- ts_rank_cd now runs on the picked candidates only, not on every probed row.

-- The chunks of `org` (and the shared ones) containing every word, in index order. Not granted to
-- the app: it takes the org as an argument, and only knowledge_text_hits (as owner) calls it.
CREATE FUNCTION knowledge_every_word_hits(every_word tsquery, filter_source text, org uuid)
RETURNS TABLE (id uuid)
LANGUAGE sql STABLE SECURITY DEFINER
ROWS 51  -- at most (the default estimate, 1,000, would have the caller scan the whole table)
SET search_path = public, pg_temp
SET gin_fuzzy_search_limit = 0
AS
$$
    SELECT k.id
    FROM knowledge_base k
    WHERE k.tsv @@ every_word AND (k.org_id IS NULL OR k.org_id = org)
      AND (filter_source IS NULL OR k.source = filter_source)
    LIMIT 51
$$;
REVOKE ALL ON FUNCTION knowledge_every_word_hits(tsquery, text, uuid) FROM PUBLIC;

CREATE OR REPLACE FUNCTION knowledge_text_hits(
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
    ), found AS (
        SELECT c.id, false AS every, count(*) OVER (PARTITION BY p.n) AS matches
        FROM words p,
             LATERAL (SELECT k.id
                      FROM knowledge_base k
                      WHERE k.tsv @@ p.q AND (k.org_id IS NULL OR k.org_id = app_org_id())
                        AND (filter_source IS NULL OR k.source = filter_source)
                      LIMIT 51) c
        UNION ALL
        SELECT e.id, true, 0
        FROM query, knowledge_every_word_hits(query.every_word, filter_source, app_org_id()) e
        WHERE query.words > 1
    ), most AS (
        -- no rare word and no chunk with every word: the chunks with all words but one
        SELECT e.id
        FROM words w, query,
             LATERAL knowledge_every_word_hits(
                 (SELECT string_agg(o.q::text, ' & ') FROM words o WHERE o.n <> w.n)::tsquery,
                 filter_source, app_org_id()) e
        WHERE query.words > 2 AND NOT EXISTS (SELECT 1 FROM found r WHERE r.every OR r.matches <= 50)
    ), picked AS (
        SELECT f.id FROM found f WHERE f.every OR f.matches <= 50
        UNION
        SELECT m.id FROM most m
        UNION
        -- nothing better: the common words' chunks (a sample of them, by the fuzzy limit)
        SELECT f.id FROM found f
        WHERE NOT EXISTS (SELECT 1 FROM found r WHERE r.every OR r.matches <= 50)
          AND NOT EXISTS (SELECT 1 FROM most)
    )
    SELECT k.id, k.document_id, k.chunk_index, k.source, k.title, k.content,
           ts_rank_cd(k.tsv, query.any_word) AS rank
    FROM picked p JOIN knowledge_base k ON k.id = p.id, query
    WHERE k.org_id IS NULL OR k.org_id = app_org_id()
    ORDER BY rank DESC, k.id
    LIMIT least(greatest(match_count, 0), 100)
$$;
