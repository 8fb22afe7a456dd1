"""Weaviate: the `ErrorGroup` collection, with vectors we compute (`error_vector`).

No vectoriser module and no model download: the collection is created with
`vectorizer=none` and cosine distance, and every object is inserted with its own vector.
"""

from __future__ import annotations

from typing import Any

COLLECTION = "ErrorGroup"


async def migrate(client: Any) -> list[str]:
    """Create the collection if it does not exist; idempotent."""
    from weaviate.classes.config import Configure, DataType, Property, VectorDistances

    if await client.collections.exists(COLLECTION):
        return []
    await client.collections.create(
        COLLECTION,
        vector_config=Configure.Vectors.self_provided(
            vector_index_config=Configure.VectorIndex.hnsw(distance_metric=VectorDistances.COSINE)
        ),
        properties=[
            Property(name="fingerprint", data_type=DataType.TEXT, skip_vectorization=True),
            Property(name="service", data_type=DataType.TEXT, skip_vectorization=True),
            Property(name="exception_type", data_type=DataType.TEXT, skip_vectorization=True),
            Property(name="category", data_type=DataType.TEXT, skip_vectorization=True),
            Property(name="message", data_type=DataType.TEXT, skip_vectorization=True),
        ],
    )
    return [f"weaviate collection {COLLECTION}"]
