"""UnlearningConfig and FisherUnlearner: forget whole classes by Fisher-guided weight edits.

(Work in progress: the methods are being filled in; the public names and signatures below are fixed.)
"""

from __future__ import annotations

from .report import UnlearningReport

__all__ = ["UnlearningReport"]
