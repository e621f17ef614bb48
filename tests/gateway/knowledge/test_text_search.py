"""Full-text search at the SQL level (`knowledge_text_hits`, migration 0018): it runs as its owner
so that the GIN index is usable, so its own filter must keep to the read policy; and it ranks a
bounded set of candidates when a word is common."""

from __future__ import annotations

import uuid

from storage import knowledge as store
from storage.tenancy import Tenant, tenant_tx


async def _org(db, name: str) -> uuid.UUID:
    org = uuid.uuid4()
    await db.execute("INSERT INTO organizations (id, name) VALUES ($1, $2)", org, name)
    return org


async def _chunk(db, org: uuid.UUID | None, content: str, source: str = "playbook") -> None:
    await db.execute("INSERT INTO knowledge_base (org_id, source, content) VALUES ($1, $2, $3)", org, source, content)


async def test_text_search_reads_the_callers_org_and_the_shared_rows_only(db, app_pool):
    a, b = await _org(db, "A"), await _org(db, "B")
    await _chunk(db, a, "renewal discount for org A")
    await _chunk(db, None, "renewal discount shared guide")
    await _chunk(db, b, "renewal discount secret of org B")
    for role in ("trainee", "coach", "system"):
        async with tenant_tx(app_pool, Tenant(org_id=a, role=role)) as conn:
            found = {h.text for h in await store.text_hits(conn, "renewal discount", source=None, limit=10)}
        assert found == {"renewal discount for org A", "renewal discount shared guide"}, role
    async with tenant_tx(app_pool, Tenant(org_id=None, role="platform")) as conn:
        found = {h.text for h in await store.text_hits(conn, "renewal discount", source=None, limit=10)}
    assert found == {"renewal discount shared guide"}
    async with tenant_tx(app_pool, Tenant(org_id=None, role="trainee")) as conn:  # no org: shared only
        found = {h.text for h in await store.text_hits(conn, "secret", source=None, limit=10)}
    assert found == set()


async def test_a_common_word_ranks_but_a_rare_one_picks_the_chunk(db, app_pool):
    org = await _org(db, "A")
    for i in range(120):  # "pipeline" is in more than 50 chunks: too common to pick candidates
        await _chunk(db, org, f"pipeline review number {i}")
    await _chunk(db, org, "pipeline escalation path for stalled deals")
    await _chunk(db, org, "escalation without the other word", source="other")
    async with tenant_tx(app_pool, Tenant(org_id=org, role="coach")) as conn:
        both = await store.text_hits(conn, "pipeline escalation", source=None, limit=5)
        sourced = await store.text_hits(conn, "pipeline escalation", source="other", limit=5)
        common = await store.text_hits(conn, "pipeline", source=None, limit=5)
        nothing = await store.text_hits(conn, "the and of", source=None, limit=5)  # stop words only
        odd = await store.text_hits(conn, "o'brien \\ back\\slash 'quoted' & | !", source=None, limit=5)
    assert both[0].text == "pipeline escalation path for stalled deals"
    assert "escalation without the other word" in {h.text for h in both}
    assert [h.text for h in sourced] == ["escalation without the other word"]
    assert len(common) == 5 and all("pipeline" in h.text for h in common)
    assert nothing == [] and odd == []


async def test_the_same_question_over_common_words_finds_the_same_chunks_every_time(db, app_pool):
    """Words each in hundreds of chunks (past the index's sampling limit), never all together:
    the chunks with all the words but one are the answer, read whole, not a sample."""
    org = await _org(db, "A")
    await db.copy_records_to_table("knowledge_base", columns=["org_id", "source", "content"], records=[
        (org, "playbook", f"{a} {b} note {i}") for i in range(1000)
        for a, b in [("budget", "timeline"), ("timeline", "stakeholder"), ("budget", "stakeholder")]])
    # Into the index's tree, as (auto)vacuum does: rows still in its pending list are read whole.
    await db.execute("SELECT gin_clean_pending_list('knowledge_base_tsv_idx')")
    await db.execute("ANALYZE knowledge_base")
    question = "budget timeline stakeholder"
    async with tenant_tx(app_pool, Tenant(org_id=org, role="coach")) as conn:
        answers = [[h.id for h in await store.text_hits(conn, question, source=None, limit=10)] for _ in range(8)]
    assert len(answers[0]) == 10
    assert all(answer == answers[0] for answer in answers), "one question, one answer"
