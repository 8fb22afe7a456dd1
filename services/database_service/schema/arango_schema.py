"""ArangoDB: the chain graph — services as vertices, calls between them as edges."""

from __future__ import annotations

from typing import Any

GRAPH = "service_chains"
SERVICES = "services"
CALLS = "calls"


def migrate(db: Any) -> list[str]:
    """Create collections and the named graph if missing; idempotent. Runs in a thread."""
    applied = []
    if not db.has_graph(GRAPH):
        db.create_graph(
            GRAPH,
            edge_definitions=[
                {
                    "edge_collection": CALLS,
                    "from_vertex_collections": [SERVICES],
                    "to_vertex_collections": [SERVICES],
                }
            ],
        )
        applied.append(f"arango graph {GRAPH}")
    calls = db.collection(CALLS)
    calls.add_persistent_index(fields=["chain_id"], name="calls_by_chain")
    return applied
