"""The knowledge base and the coaching chat: ingest, retrieval, the starter playbook, answers."""
