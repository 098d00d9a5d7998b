"""The vocabulary of curve-mirror (道路反射鏡) inspection: members, defects and their Japanese names.

One place for the keys used by the synthetic generator's labels, the CNN heads, the grading table
and the overlay. A defect key is ``"<member>.<defect>"``.
"""
from __future__ import annotations

MEMBERS_JA = {
    "mirror": "鏡面",
    "hood": "フード・鏡体",
    "pole": "支柱",
    "bracket": "取付金具",
    "view": "視界",
}

DEFECTS_JA = {
    "mirror.dirt": "汚れ",
    "mirror.clouding": "くもり",
    "mirror.crack": "割れ・破損",
    "mirror.missing": "鏡面欠落",
    "mirror.deformation": "変形",
    "hood.damage": "損傷",
    "pole.rust": "さび・腐食",
    "pole.paint": "塗装はがれ",
    "pole.dent": "へこみ",
    "pole.bend": "曲がり",
    "pole.tilt": "傾き",
    "bracket.rust": "さび",
    "bracket.deformation": "変形",
    "view.vegetation": "支障木",
}

DEFECTS = list(DEFECTS_JA)

# Defects judged by the CNN (one head each, classes = severity 0..3). ``pole.tilt`` is measured
# by geometry only; ``mirror.deformation`` by both (ellipse-fit residual and the CNN).
CNN_DEFECTS = [d for d in DEFECTS if d != "pole.tilt"]

SEVERITY_JA = {0: "なし", 1: "軽度", 2: "中度", 3: "重度"}

GRADES = ["Ⅰ", "Ⅱ", "Ⅲ", "Ⅳ"]
GRADES_JA = {"Ⅰ": "Ⅰ 健全", "Ⅱ": "Ⅱ 予防保全段階", "Ⅲ": "Ⅲ 早期措置段階", "Ⅳ": "Ⅳ 緊急措置段階"}


def label_ja(member_or_key: str, defect: str | None = None) -> str:
    """``label_ja("pole.rust")`` or ``label_ja("pole", "rust")`` → ``"支柱 さび・腐食"``."""
    key = f"{member_or_key}.{defect}" if defect else member_or_key
    member = key.split(".", 1)[0]
    return f"{MEMBERS_JA.get(member, member)} {DEFECTS_JA.get(key, key.split('.', 1)[-1])}"


def grade_index(grade: str | None) -> int | None:
    return GRADES.index(grade) if grade in GRADES else None
