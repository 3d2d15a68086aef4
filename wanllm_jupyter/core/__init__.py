"""The shared core: rules both processes (the kernel client and the server) import.

This package is public API for the server extension: it must stay importable
with the kernel side's dependencies only (no tornado, asyncpg or Redis), and
each rule lives here once.
"""
