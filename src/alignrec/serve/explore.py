"""What the web page asks besides recommendations: find users and items, a history, an item's neighbours.

Codes come from the run's ``tokens/`` (the LLM's item tokenizer); a run
without one (SASRec only) is explored all the same, and every answer says why
the codes are missing instead of failing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from alignrec.data.dataset import SequenceDataset
from alignrec.errors import AlignrecError
from alignrec.rundir import RunDir
from alignrec.tokenize.inspect import CodeSpace


class ItemSummary(BaseModel):
    item_id: str
    title: str
    interactions: int = Field(description="how often the item occurs in the dataset")
    codes: list[int] | None = Field(description="one code per level; null when the run has no tokens/")
    tokens: list[str] | None = Field(description="the LLM tokens of the codes, e.g. <a_12>")


class Neighbour(ItemSummary):
    shared_prefix: int = Field(description="leading codes shared with the item")
    distance: float = Field(description="between the two items' reconstructed code vectors")


class ItemDetail(ItemSummary):
    neighbours: list[Neighbour] = Field(description="longest shared code prefix first, then the closest")
    codes_note: str | None = Field(description="why codes are unavailable, if they are")


class UserSummary(BaseModel):
    user_id: str
    history_length: int


class UserHistory(BaseModel):
    user_id: str
    items: list[ItemSummary] = Field(description="the user's items, oldest first")


class ExploreInfo(BaseModel):
    dataset: str
    users: int
    items: int
    interactions: int
    codes: bool = Field(description="whether items have codes (the run has tokens/)")
    codes_note: str | None
    levels: int | None


def load_code_space(run_dir: Path, dataset: SequenceDataset) -> tuple[CodeSpace | None, str | None]:
    """The run's item codes, or None and the reason (no tokens/, unreadable, made for other items)."""
    from alignrec.tokenize.artifacts import load_artifact

    folder = RunDir(run_dir).tokens
    if not folder.is_dir():
        return None, f"codes unavailable: {folder} does not exist (a run without the LLM's item tokenizer)"
    try:
        artifact = load_artifact(folder)
    except AlignrecError as exc:
        return None, f"codes unavailable: {exc}"
    if [str(i) for i in artifact.item_ids] != [str(i) for i in dataset.item_ids]:
        return None, f"codes unavailable: {folder} was made for other items than {RunDir(run_dir).data}"
    return CodeSpace(artifact), None


def _matches(texts: list[str], query: str, limit: int, order: np.ndarray) -> list[int]:
    """Rows whose text equals ``query``, then starts with it, then contains it; each group in ``order``."""
    exact, prefix, inside = [], [], []
    for row in order.tolist():
        text = texts[row]
        if text == query:
            exact.append(row)
        elif text.startswith(query):
            prefix.append(row)
        elif query in text:
            inside.append(row)
    return (exact + prefix + inside)[:limit]


class Explorer:
    """Search and detail answers over one run's dataset; read-only, shared by every request."""

    def __init__(self, dataset: SequenceDataset, titles: list[str], counts: np.ndarray,
                 code_space: CodeSpace | None, codes_note: str | None) -> None:
        self.dataset = dataset
        self.item_ids = [str(i) for i in dataset.item_ids]
        self.user_ids = [str(u) for u in dataset.user_ids]
        self.titles = titles
        self.counts = counts.astype(np.int64)
        self.code_space = code_space
        self.codes_note = codes_note
        self.item_index = dataset.item_index()
        self.user_index = dataset.user_index()
        self._folded_titles = [t.casefold() for t in titles]
        self._folded_users = [u.casefold() for u in self.user_ids]
        self._by_popularity = np.lexsort((np.arange(len(titles)), -self.counts))
        self._lengths = dataset.lengths

    def info(self) -> ExploreInfo:
        space = self.code_space
        return ExploreInfo(dataset=self.dataset.name, users=self.dataset.num_users, items=self.dataset.num_items,
                           interactions=self.dataset.num_interactions, codes=space is not None,
                           codes_note=self.codes_note, levels=space.artifact.levels if space else None)

    def summary(self, item: int) -> ItemSummary:
        codes, tokens = self._codes(item)
        return ItemSummary(item_id=self.item_ids[item], title=self.titles[item],
                           interactions=int(self.counts[item]), codes=codes, tokens=tokens)

    def _codes(self, item: int) -> tuple[list[int] | None, list[str] | None]:
        if self.code_space is None:
            return None, None
        artifact = self.code_space.artifact
        return artifact.codes[item].tolist(), artifact.item_tokens(item)

    def search_users(self, query: str, limit: int) -> list[UserSummary]:
        """Users by id (exact, prefix, substring, case-insensitive); the first ``limit`` users for an empty query."""
        order = np.arange(len(self.user_ids))
        rows = _matches(self._folded_users, query.strip().casefold(), limit, order)
        return [UserSummary(user_id=self.user_ids[u], history_length=int(self._lengths[u])) for u in rows]

    def search_items(self, query: str, limit: int) -> list[ItemSummary]:
        """Items by title or id (exact, prefix, substring, case-insensitive), most interacted first."""
        query = query.strip()
        by_id = self.item_index.get(query)
        rows = _matches(self._folded_titles, query.casefold(), limit, self._by_popularity)
        if by_id is not None:
            rows = [by_id, *(r for r in rows if r != by_id)][:limit]
        return [self.summary(r) for r in rows]

    def history(self, user_id: str) -> UserHistory | None:
        user = self.user_index.get(user_id)
        if user is None:
            return None
        return UserHistory(user_id=user_id, items=[self.summary(int(i)) for i in self.dataset.sequence(user)])

    def item(self, item_id: str, neighbours: int) -> ItemDetail | None:
        row = self.item_index.get(item_id)
        if row is None:
            return None
        found = []
        if self.code_space is not None and neighbours > 0:
            for n in self.code_space.nearest(row, neighbours):
                other = self.item_index[n.item_id]
                found.append(Neighbour(**self.summary(other).model_dump(), shared_prefix=n.shared_prefix,
                                       distance=n.distance))
        return ItemDetail(**self.summary(row).model_dump(), neighbours=found, codes_note=self.codes_note)
