"""The embedding cache: CLAP vectors kept per model, so nothing is embedded twice.

Layout under the cache root (any fsspec location every worker can reach):

    <model_id>/identity.json              what the model is (backend, checkpoint hash, random or not)
    <model_id>/audio/part-<key>.parquet   clip embeddings of one work unit; <key> hashes the unit's
                                          clip ids and audio digests, so the same clips find it again
    <model_id>/text/part-<key>.parquet    caption embeddings, written in chunks as captions first appear
    <model_id>/vocab/<name>-<version>.parquet   one vocabulary's matrix, rows in caption_id order

A new vocabulary embeds only its new captions and never the audio; a new corpus embeds
only its clips. Every file is EMBEDDING_SCHEMA and written atomically.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

import numpy as np
import pyarrow as pa

from curation.core.errors import UserError
from curation.core.storage import exists, join, list_files, read_json, read_table, write_json_atomic, write_table_atomic
from labeling.clap.backend import ClapIdentity
from labeling.labels.table import EMBEDDING_SCHEMA

# Rows per Arrow chunk: a list array's int32 offsets must stay below 2**31 values.
CHUNK_ROWS = 1 << 20


class CacheError(UserError):
    """An embedding cache that does not match the model or lacks a vector; names the folder."""


def embeddings_to_table(keys: Sequence[str], vectors: np.ndarray) -> pa.Table:
    vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(keys), -1)
    dim = vectors.shape[1]
    chunks = []
    for start in range(0, len(keys), CHUNK_ROWS):
        block = vectors[start : start + CHUNK_ROWS]
        offsets = pa.array(np.arange(len(block) + 1, dtype=np.int32) * dim)
        chunks.append(pa.ListArray.from_arrays(offsets, pa.array(block.reshape(-1))))
    column = pa.chunked_array(chunks, type=EMBEDDING_SCHEMA.field("embedding").type)
    return pa.Table.from_arrays([pa.array(list(keys), pa.string()), column], schema=EMBEDDING_SCHEMA)


def embeddings_from_table(table: pa.Table) -> tuple[list[str], np.ndarray]:
    keys = table["key"].to_pylist()
    if not keys:
        return [], np.zeros((0, 0), dtype=np.float32)
    flat = np.concatenate([chunk.flatten().to_numpy(zero_copy_only=False) for chunk in table["embedding"].chunks])
    return keys, flat.astype(np.float32, copy=False).reshape(len(keys), -1)


def content_key(*columns: Iterable[str]) -> str:
    """A short hash of aligned string columns: names a part after what it holds."""
    digest = hashlib.sha256()
    for row in zip(*columns, strict=True):
        digest.update("\t".join(row).encode() + b"\n")
    return digest.hexdigest()[:20]


class EmbeddingCache:
    def __init__(self, root: str, identity: ClapIdentity) -> None:
        self.root = join(root, identity.model_id)
        self.identity = identity

    def claim(self) -> None:
        """Record the model's identity once; a different model under the same id is an error."""
        url = join(self.root, "identity.json")
        if exists(url):
            found = read_json(url)
            if found.get("checkpoint_sha256") != self.identity.checkpoint_sha256:
                raise CacheError(f"{url}: cache of another model under the same id; delete it or choose another cache")
            return
        write_json_atomic(url, self.identity.to_dict())

    def audio_part(self, key: str) -> str:
        return join(self.root, "audio", f"part-{key}.parquet")

    def text_part(self, key: str) -> str:
        return join(self.root, "text", f"part-{key}.parquet")

    def vocab_matrix(self, name: str, version: str) -> str:
        return join(self.root, "vocab", f"{name}-{version}.parquet")

    def cached_caption_ids(self) -> set[str]:
        ids: set[str] = set()
        for part in list_files(join(self.root, "text"), ".parquet"):
            ids.update(read_table(part, columns=["key"])["key"].to_pylist())
        return ids

    def write_vocab_matrix(self, name: str, version: str, caption_ids: Sequence[str]) -> str:
        """Gather a vocabulary's caption vectors from the text parts, in caption_id order."""
        url = self.vocab_matrix(name, version)
        if exists(url):
            return url
        order = sorted(caption_ids)
        position = {c: i for i, c in enumerate(order)}
        matrix: np.ndarray | None = None
        found = np.zeros(len(order), dtype=bool)
        for part in list_files(join(self.root, "text"), ".parquet"):
            keys, vectors = embeddings_from_table(read_table(part))
            rows = [(position[k], i) for i, k in enumerate(keys) if k in position]
            if not rows:
                continue
            if matrix is None:
                matrix = np.zeros((len(order), vectors.shape[1]), dtype=np.float32)
            targets, sources = map(list, zip(*rows, strict=True))
            matrix[targets] = vectors[sources]
            found[targets] = True
        if matrix is None or not found.all():
            missing = order[int(np.argmin(found))] if len(order) else "?"
            raise CacheError(f"{self.root}: caption {missing} of vocabulary {name} has no text embedding in the cache")
        write_table_atomic(url, embeddings_to_table(order, matrix))
        return url


def read_vocab_matrix(url: str) -> tuple[list[str], np.ndarray]:
    return embeddings_from_table(read_table(url))
