"""A small two-line record draft with one statement (flagged or not) for workflow tests and
the office-server benchmark."""
from __future__ import annotations

from engine.records.model import Draft, Flag, Section, Segment, Statement


def make_draft(flagged=False):
    st = Statement("家賃は月5万円。", [2], flags=[Flag("number_mismatch", detail="5")] if flagged else [])
    return Draft("seikatsu_hogo", "面接相談記録",
                 [Section("income", "収入・資産", True, [st]), Section("next", "今後の対応", False, [])],
                 segments=[Segment(1, 0.0, 3.0, "staff", "家賃はいくらですか。"),
                           Segment(2, 3.0, 6.0, "citizen", "月5万円です。")])
