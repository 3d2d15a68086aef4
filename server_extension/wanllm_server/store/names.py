"""Readable generated run names, e.g. ``brisk-otter-7``."""

from __future__ import annotations

import secrets

ADJECTIVES = (
    "amber", "bold", "brave", "brisk", "calm", "clever", "cosmic", "crisp", "daring", "dawn",
    "eager", "fancy", "fierce", "gentle", "golden", "happy", "hidden", "icy", "jolly", "keen",
    "lively", "lucky", "mellow", "misty", "nimble", "noble", "quiet", "rapid", "rustic", "silent",
    "smooth", "snowy", "solar", "steady", "stellar", "sunny", "swift", "tidy", "vivid", "wild",
)
ANIMALS = (
    "badger", "bear", "beaver", "bison", "crane", "deer", "dolphin", "eagle", "falcon", "ferret",
    "finch", "fox", "gecko", "heron", "ibis", "jaguar", "koala", "lemur", "lynx", "marten",
    "moose", "newt", "otter", "owl", "panda", "puffin", "quail", "raven", "robin", "seal",
    "sparrow", "stoat", "swan", "tapir", "tiger", "toucan", "vole", "walrus", "wolf", "yak",
)


def generate_run_name() -> str:
    """``adjective-animal-N`` with N in 1..999 (64,000 × 999 combinations)."""
    return f"{secrets.choice(ADJECTIVES)}-{secrets.choice(ANIMALS)}-{secrets.randbelow(999) + 1}"
