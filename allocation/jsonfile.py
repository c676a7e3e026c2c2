"""Shim: the strict JSON reader lives in :mod:`causal.jsonfile` (experiments may not import allocation).

Kept so that ``from allocation.jsonfile import read_json`` keeps working until the lead
removes it at merge.
"""

from causal.jsonfile import loads, read_json

__all__ = ["loads", "read_json"]
