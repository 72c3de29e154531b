"""Fixtures for generation tests: a small catalogue (structured and text-only items), a cheap encoder."""
from __future__ import annotations

import pytest
from gen_helpers import structured_items, text_items

from recbole_neggen.encoders import HashingTextEncoder
from recbole_neggen.generation.records import ItemRecord


@pytest.fixture
def catalogue() -> list[ItemRecord]:
    return structured_items() + text_items()


@pytest.fixture
def encoder() -> HashingTextEncoder:
    return HashingTextEncoder(dim=16)
