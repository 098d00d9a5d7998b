"""The content of a consultation record: sections of statements, each with its evidence
(transcript segment ``seq`` numbers) and its flags. Plain dataclasses, JSON round-trip."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

# Flag codes. Statement flags (要確認) come from the faithfulness check; draft flags from compliance.
FLAG_JA = {
    "no_evidence": "根拠となる発言が示されていません",
    "bad_evidence": "存在しない発言番号を根拠にしています",
    "number_mismatch": "数字・金額・日付・年齢が根拠の発言にありません",
    "name_mismatch": "固有名詞が根拠の発言にありません",
    "unsupported_content": "根拠の発言にない内容があります",
    "intent_unsupported": "申請意思を述べた相談者の発言が根拠にありません",
    "extractive": "自動抜粋（AI要約ではありません）",
    "intent_not_confirmed": "申請意思の確認が記録・発言にありません",
    "obstruction_phrase": "申請の妨げ（水際）と受け取られうる説明があります",
    "required_empty": "必須の項目が空です",
    "llm_failed": "AIによる下書きに失敗したため自動抜粋にしました",
}


@dataclass
class Flag:
    code: str
    message: str = ""          # Japanese, for the screen
    detail: str = ""           # what exactly (e.g. the number not found); no personal data in logs
    section: str = ""
    evidence: list[int] = field(default_factory=list)

    def __post_init__(self):
        if not self.message:
            self.message = FLAG_JA.get(self.code, self.code)


@dataclass
class Statement:
    text: str
    evidence: list[int] = field(default_factory=list)
    kind: str = "fact"         # fact (事実) | judgement (所見) | action (対応)
    source: str = "llm"        # llm | items | extractive | staff
    flags: list[Flag] = field(default_factory=list)

    @property
    def needs_review(self) -> bool:
        return any(f.code != "extractive" for f in self.flags)


@dataclass
class Section:
    key: str
    title: str
    required: bool = False
    statements: list[Statement] = field(default_factory=list)


@dataclass
class Segment:
    seq: int
    start: float
    end: float
    speaker: str
    text: str


@dataclass
class Draft:
    template: str
    title: str
    sections: list[Section]
    method: str = "llm"        # llm | items | extractive | mixed | manual
    model: str = ""
    flags: list[Flag] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    created_at: float = field(default_factory=time.time)

    def section(self, key: str) -> Section:
        for s in self.sections:
            if s.key == key:
                return s
        raise KeyError(key)

    def statements(self):
        for sec in self.sections:
            for st in sec.statements:
                yield sec, st

    def flagged(self) -> list[tuple[Section, Statement]]:
        return [(sec, st) for sec, st in self.statements() if st.needs_review]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Draft":
        d = dict(d)
        d["sections"] = [Section(**{**s, "statements": [
            Statement(**{**st, "flags": [Flag(**f) for f in st.get("flags", [])]})
            for st in s.get("statements", [])]}) for s in d.get("sections", [])]
        d["flags"] = [Flag(**f) for f in d.get("flags", [])]
        d["segments"] = [Segment(**g) for g in d.get("segments", [])]
        return cls(**d)
