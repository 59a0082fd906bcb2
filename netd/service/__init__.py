"""The orchestration: attach, detach, list, inspect (core.py), and keeping
the kernel as netd left it (upkeep.py), with rollback."""

from netd.service.core import Inspection, Service
from netd.service.locks import Busy, KeyedLocks
from netd.service.upkeep import Problem

__all__ = ["Busy", "Inspection", "KeyedLocks", "Problem", "Service"]
