"""A bounded cache of what a back end derives once per (params, plan) pair.

The pipeline keeps the params and plan objects of a call's static signature and hands the same
pair back on every call of that signature, so a GPU back end can prepare its launch constants
(table offsets, kernel arguments that depend on shapes only) once and look them up by identity
on the hot path. An entry holds the pair itself, so their ids are never reused while it lives.
"""
from __future__ import annotations

import threading
from typing import Callable


class PerPlanCache:
    def __init__(self, factory: Callable, size: int = 64):
        self._factory, self._size = factory, size
        self._entries: dict = {}
        self._lock = threading.Lock()

    def get(self, p, plan):
        hit = self._entries.get((id(p), id(plan)))
        if hit is not None and hit[0] is p and hit[1] is plan:
            return hit[2]
        value = self._factory(p, plan)
        with self._lock:
            self._entries[(id(p), id(plan))] = (p, plan, value)
            while len(self._entries) > self._size:
                del self._entries[next(iter(self._entries))]
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
