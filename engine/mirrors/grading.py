"""Findings → grade (Ⅰ–Ⅳ) by the office-editable rule table ``resources/mirrors/grading.toml``.

The table's own comments document its reasoning. A copy at ``<data folder>/mirrors/grading.toml``
takes precedence over the shipped one (see :func:`table_path`).
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from ..errors import MadoguchiError
from .defects import DEFECTS, GRADES


class GradingTableError(MadoguchiError):
    ja_default = "判定表（grading.toml）に誤りがあります。管理者に修正を依頼してください。"


@dataclass
class GradingTable:
    rules: dict[str, list[str]]
    measures: dict[str, list[float]]
    min_confidence: float = 0.7
    possible_low: float = 0.3
    escalation: dict | None = None
    path: str = ""

    def grade_of(self, defect: str, severity: int) -> str:
        if severity <= 0:
            return "Ⅰ"
        return self.rules[defect][min(severity, 3) - 1]

    def severity_of(self, measure: str, value: float) -> int:
        return sum(1 for t in self.measures[measure] if value >= t)


@dataclass
class GradeResult:
    grade: str | None            # None = 要確認 (would be Ⅰ but something is uncertain)
    provisional_grade: str       # what the rules give, uncertain findings counted at face value
    needs_review: bool
    reasons: list[str] = field(default_factory=list)   # Japanese, for the overlay and the ledger


def default_table_path() -> Path:
    from ..models import app_root
    return app_root() / "resources" / "mirrors" / "grading.toml"


def table_path(data_dir: Path | str | None = None) -> Path:
    if data_dir is not None:
        p = Path(data_dir) / "mirrors" / "grading.toml"
        if p.is_file():
            return p
    return default_table_path()


def load_table(path: Path | str | None = None) -> GradingTable:
    path = Path(path) if path else default_table_path()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise GradingTableError(f"grading table {path} cannot be read: {e}") from e
    rules = raw.get("rules", {})
    for d in DEFECTS:
        g = rules.get(d)
        if not (isinstance(g, list) and len(g) == 3 and all(x in GRADES for x in g)):
            raise GradingTableError(f"grading table {path}: rules.\"{d}\" must be a list of 3 grades "
                                    f"from {', '.join(GRADES)}, got {g!r}")
    measures = {}
    for name in ("pole_tilt_deg", "mirror_deformation_pct"):
        t = raw.get("measures", {}).get(name, {}).get("thresholds")
        if not (isinstance(t, list) and len(t) == 3 and all(isinstance(x, (int, float)) for x in t)
                and sorted(t) == t):
            raise GradingTableError(f"grading table {path}: measures.{name}.thresholds must be 3 "
                                    f"increasing numbers, got {t!r}")
        measures[name] = [float(x) for x in t]
    review = raw.get("review", {})
    esc = raw.get("escalation")
    if esc is not None and not (isinstance(esc.get("count"), int) and esc.get("at_grade") in GRADES
                                and esc.get("to_grade") in GRADES):
        raise GradingTableError(f"grading table {path}: [escalation] needs count, at_grade, to_grade")
    return GradingTable(rules={d: rules[d] for d in DEFECTS}, measures=measures,
                        min_confidence=float(review.get("min_confidence", 0.7)),
                        possible_low=float(review.get("possible_low", 0.3)),
                        escalation=esc, path=str(path))


def _combine(grades: list[str], table: GradingTable) -> str:
    if not grades:
        return "Ⅰ"
    worst = max(GRADES.index(g) for g in grades)
    esc = table.escalation
    if esc:
        at = GRADES.index(esc["at_grade"])
        if worst == at and sum(1 for g in grades if GRADES.index(g) == at) >= esc["count"]:
            worst = max(worst, GRADES.index(esc["to_grade"]))
    return GRADES[worst]


def grade_severities(severities: dict[str, int], table: GradingTable) -> str:
    """Grade of a set of exact severities (used for synthetic ground truth)."""
    return _combine([table.grade_of(d, s) for d, s in severities.items() if s > 0], table)


def grade_findings(findings: Iterable, table: GradingTable) -> GradeResult:
    """``findings``: objects with ``member``, ``defect``, ``severity``, ``confidence`` and
    ``uncertain`` attributes (:class:`engine.mirrors.diagnose.Finding`)."""
    from .defects import label_ja
    grades, reasons, uncertain = [], [], False
    for f in findings:
        key = f"{f.member}.{f.defect}"
        if f.uncertain or f.confidence < table.min_confidence:
            uncertain = True
        if f.severity > 0 and not getattr(f, "possible", False):
            g = table.grade_of(key, f.severity)
            grades.append(g)
            reasons.append(f"{label_ja(key)}（重症度{f.severity}）→ {g}")
    provisional = _combine(grades, table)
    if uncertain and provisional == "Ⅰ":
        reasons.append("確信度の低い所見があるため、Ⅰ（健全）とせず要確認としました")
        return GradeResult(None, provisional, True, reasons)
    return GradeResult(provisional, provisional, uncertain, reasons)
