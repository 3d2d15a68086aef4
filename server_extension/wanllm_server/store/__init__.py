"""Storage backends behind one async interface (see :mod:`.base`)."""

from .base import *  # noqa: F403
