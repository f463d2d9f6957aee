"""Deterministic synthetic Vietnamese population: facilities, doctors, citizens and their records.

No I/O beyond reading the package's own data files. See docs/demo-data.md.
"""

from __future__ import annotations

from vnehr.demo.bundles import facilities, population
from vnehr.demo.chart import TODAY

__all__ = ["TODAY", "facilities", "population"]
