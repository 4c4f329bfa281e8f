"""The shard and publish stage's configuration: one validated model, every field described.

`soundry shard` and `soundry publish` take the same config: shard writes a version's shards,
publish writes them (or finds them written) and commits the version with its manifest.
"""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator

from curation.core.strict_model import StrictModel

# A split's name is the first part of its shard names ({split}-{n:06d}.tar): no dash, no dot.
SPLIT_NAME = re.compile(r"[a-z][a-z0-9_]*")
# A version is a folder name that every filesystem and object store takes as is.
VERSION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class Splits(StrictModel):
    fractions: dict[str, float] = Field(
        default_factory=lambda: {"train": 0.9, "valid": 0.05, "test": 0.05},
        description="Share of sources per split. A source's split is drawn from a hash of its id, so all its "
        "clips land in one split and it keeps that split in every later version of a growing corpus",
    )
    salt: str = Field("soundry", description="Mixed into the split hash; changing it redraws every source's split")
    assignments: str | None = Field(
        None,
        description="CSV file with columns source,split fixing the split of the sources it lists "
        "(source: a source_id, source_uri or file name); it wins over hints and fractions",
    )
    use_split_hints: bool = Field(
        True, description="Honour the split_hint that curation recorded from a location or sidecar"
    )

    @field_validator("fractions")
    @classmethod
    def _check_fractions(cls, fractions: dict[str, float]) -> dict[str, float]:
        if not fractions:
            raise ValueError("name at least one split")
        for name, share in fractions.items():
            if not SPLIT_NAME.fullmatch(name):
                raise ValueError(
                    f"split name {name!r} must be lower case letters, digits and _ (it starts shard names)"
                )
            if share < 0:
                raise ValueError(f"split {name}: fraction {share} is negative")
        if abs(sum(fractions.values()) - 1) > 1e-6:
            raise ValueError(f"fractions add up to {sum(fractions.values()):g}, not 1")
        return fractions


class Exclusions(StrictModel):
    sources: list[str] = Field(
        default_factory=list,
        description="Files listing sources to leave out, one per line (source_id, source_uri "
        "or file name; # starts a comment), e.g. the audio of an evaluation set",
    )
    captions: list[str] = Field(
        default_factory=list,
        description="Files listing captions (text or caption_id, one per line) removed from "
        "every clip's labels and prompts, e.g. an evaluation set's captions",
    )
    vocabularies: list[str] = Field(
        default_factory=list,
        description="Vocabularies whose labels stay out of the prompts "
        "(Noise2Music left its rater captions out because they overlap the MusicCaps evaluation set)",
    )


class ShardSize(StrictModel):
    max_bytes: int = Field(
        256 * 2**20, ge=2**16, description="Target bytes per shard (webdataset advises 100 MB to 1 GB)"
    )
    max_samples: int = Field(5000, ge=1, description="Most samples per shard")
    min_shards: int = Field(
        8,
        ge=1,
        description="Fewest shards a split is cut into (when it has that many clips), so a small version "
        "still spreads over every node and loader worker",
    )


class ShardConfig(StrictModel):
    clips: str = Field(description="Curated folder (the output of `soundry curate`) whose clip table is published")
    labels: str | None = Field(
        None, description="Label folder (the output of `soundry label`); empty publishes without labels"
    )
    root: str = Field(description="Folder (or fsspec URL) holding the dataset versions")
    version: str = Field(
        description="The version's folder name under root, e.g. v1; a published version is never overwritten"
    )
    name: str = Field("soundry", description="Dataset name shown in the manifest and the card")
    description: str = Field("", description="A paragraph for the dataset card")
    seed: int = Field(0, description="Seed of the global shuffle before sharding")
    splits: Splits = Field(default_factory=Splits, description="How sources are divided into splits")
    exclude: Exclusions = Field(default_factory=Exclusions, description="Sources and captions kept out of the version")
    licenses: list[str] | None = Field(
        None,
        description="Licenses a clip may carry to be published (e.g. [CC0-1.0, CC-BY-4.0]); 'unknown' admits "
        "clips without one; empty admits every clip. The rule is recorded in the manifest",
    )
    shards: ShardSize = Field(default_factory=ShardSize, description="How big shards are")

    @field_validator("version")
    @classmethod
    def _check_version(cls, version: str) -> str:
        if not VERSION_NAME.fullmatch(version):
            raise ValueError("use letters, digits, '.', '_' and '-' only, starting with a letter or digit")
        return version

    @model_validator(mode="after")
    def _check_labels(self) -> ShardConfig:
        if self.exclude.vocabularies and not self.labels:
            raise ValueError("exclude.vocabularies needs a label folder (labels)")
        return self
