"""Record templates: TOML files with sections, their instructions and whether they are required.

Shipped templates live in ``resources/templates/``; an office adds its own (児童扶養手当, 介護保険,
マイナンバーカード …) by dropping a TOML file into ``<data folder>/templates/`` — no code.
A name may also be a path to a ``.toml`` file.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import MadoguchiError
from ..models import app_root

KINDS = ("fact", "judgement", "action")
# The record items a section may draw on (the catalogue of engine.records.items).
ITEM_KEYS = ("complaint", "household", "housing", "rent", "income", "savings", "debt", "health", "history", "urgency",
             "supporters", "other_measures", "explained", "intent", "next")


class TemplateError(MadoguchiError):
    ja_default = "記録のテンプレートを読み込めません。テンプレートの名前と内容を確認してください。"


@dataclass
class SectionSpec:
    key: str
    title: str
    instruction: str
    required: bool = False
    kind: str = "fact"
    keywords: list[str] = field(default_factory=list)
    items: list[str] = field(default_factory=list)   # catalogue items feeding it (engine.records.items)


@dataclass
class Template:
    name: str
    title: str
    sections: list[SectionSpec]
    description: str = ""
    intent_section: str = ""
    path: str = ""

    def section(self, key: str) -> SectionSpec:
        for s in self.sections:
            if s.key == key:
                return s
        raise KeyError(key)


def template_dirs(data_dir: Path | str | None = None) -> list[Path]:
    dirs = []
    if data_dir:
        dirs.append(Path(data_dir) / "templates")
    dirs.append(app_root() / "resources" / "templates")
    return dirs


def available(data_dir: Path | str | None = None) -> list[str]:
    names: list[str] = []
    for d in template_dirs(data_dir):
        for p in sorted(d.glob("*.toml")):
            if p.stem not in names:
                names.append(p.stem)
    return names


def parse(text: str, source: str = "<template>") -> Template:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise TemplateError(f"template {source} is not valid TOML: {e}") from e
    secs = raw.get("sections")
    if not isinstance(secs, list) or not secs:
        raise TemplateError(f"template {source} has no [[sections]]")
    out, seen = [], set()
    for i, s in enumerate(secs, 1):
        for k in ("key", "title", "instruction"):
            if not isinstance(s.get(k), str) or not s[k].strip():
                raise TemplateError(f"template {source}: section {i} needs a non-empty '{k}'")
        if s["key"] in seen:
            raise TemplateError(f"template {source}: section key '{s['key']}' appears twice")
        seen.add(s["key"])
        kind = s.get("kind", "fact")
        if kind not in KINDS:
            raise TemplateError(f"template {source}: section '{s['key']}' has kind '{kind}', "
                                f"expected one of {', '.join(KINDS)}")
        kw = s.get("keywords", [])
        if not isinstance(kw, list) or not all(isinstance(k, str) for k in kw):
            raise TemplateError(f"template {source}: section '{s['key']}' keywords must be a list of strings")
        items = s.get("items", [])
        if not isinstance(items, list) or not all(isinstance(k, str) for k in items):
            raise TemplateError(f"template {source}: section '{s['key']}' items must be a list of strings")
        unknown = [k for k in items if k not in ITEM_KEYS]
        if unknown:
            raise TemplateError(f"template {source}: section '{s['key']}' names unknown items {', '.join(unknown)}; "
                                f"known: {', '.join(ITEM_KEYS)}")
        out.append(SectionSpec(s["key"], s["title"], s["instruction"], bool(s.get("required", False)), kind, kw,
                               items))
    intent = raw.get("intent_section", "")
    if intent and intent not in seen:
        raise TemplateError(f"template {source}: intent_section '{intent}' is not a section key")
    return Template(name=raw.get("name") or Path(source).stem, title=raw.get("title") or "相談記録",
                    sections=out, description=raw.get("description", ""), intent_section=intent, path=source)


def load(name: str, data_dir: Path | str | None = None) -> Template:
    """Load a template by name (office folder first, then shipped) or from a ``.toml`` path."""
    p = Path(name)
    if p.suffix == ".toml" and p.is_file():
        return parse(p.read_text(encoding="utf-8"), str(p))
    for d in template_dirs(data_dir):
        f = d / f"{name}.toml"
        if f.is_file():
            return parse(f.read_text(encoding="utf-8"), str(f))
    raise TemplateError(f"no record template '{name}'; available: {', '.join(available(data_dir)) or 'none'}",
                        ja=f"記録のテンプレート「{name}」が見つかりません。")
