"""TEMPORARY: moved to :mod:`wanllm_jupyter.core.arrow`. Kept only until the
files other helpers are editing (uncommitted) land with their updated imports;
then deleted."""

from .core.arrow import NAME_DICT, SYSTEM_SCHEMA, TIMESTAMP, dictionary_array, numpy_array

__all__ = ["NAME_DICT", "SYSTEM_SCHEMA", "TIMESTAMP", "dictionary_array", "numpy_array"]
