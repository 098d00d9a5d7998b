"""The office's inquiry FAQ for the AI phone (My Number card questions to the 市民係 line).

The default ships in ``resources/phone/faq.toml``; the office edits its own copy in the data folder
(``<data>/phone/faq.toml``), which is written from the default the first time it is needed and read
from then on. Every answer the phone gives is an item's own ``answer`` text or one of the fixed
hand-off sentences of ``[handoff]`` — nothing is generated.

A file that cannot be used raises :class:`FaqError` naming the file, the item and the field (the
CLI prints it as one ``error:`` line, the desktop shows ``e.ja``). Answers are read aloud, so
times, dates and telephone numbers must be written as they are spoken (``午前8時30分``,
``ゼロイチニーゼロ``); forms a TTS voice misreads (``8:30``, ``0120-95-0178``) are refused.
"""
from __future__ import annotations

import hashlib
import re
import shutil
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import MadoguchiError

FILE_NAME = "faq.toml"
ID_RX = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
MAX_ANSWER = 240          # characters: about 40 s read aloud; a phone answer must stay short
# written forms a Japanese TTS voice misreads on the phone: clock times, digit-dash numbers, URLs
UNSPEAKABLE = [
    (re.compile(r"\d{1,2}\s*[:：]\s*\d{2}"), "a clock time such as 8:30 (write 午前8時30分)"),
    (re.compile(r"\d{2,}\s*[-‐－ー]\s*\d{2,}"), "a number written with dashes (write it as it is spoken, e.g. ゼロイチニーゼロ)"),
    (re.compile(r"https?://|www\.", re.I), "a web address (it cannot be read aloud)"),
    (re.compile(r"[~〜～]"), "a range with 〜 (write から … まで)"),
]


class FaqError(MadoguchiError):
    ja_default = "電話の問い合わせFAQ（faq.toml）の書き方に誤りがあります。"


@dataclass(frozen=True)
class FaqItem:
    id: str
    title: str
    answer: str                    # read aloud as it is
    follow_up: str                 # asked once after the answer (one follow-up question allowed)
    examples: tuple[str, ...] = ()


@dataclass(frozen=True)
class Handoff:
    transfer: str                  # said before a transfer to staff (office hours)
    callback: str                  # said outside office hours: a callback request
    not_understood: str            # nothing usable was heard
    person: tuple[str, ...] = ()   # phrases that ask for a person
    upset: tuple[str, ...] = ()    # phrases of an angry, urgent or distressed caller


@dataclass(frozen=True)
class Faq:
    items: tuple[FaqItem, ...]
    handoff: Handoff
    abbreviations: dict = field(default_factory=dict)
    synonym_groups: tuple[tuple[str, ...], ...] = ()
    hotwords: str = ""             # words the speech recogniser is primed with
    outside: tuple[str, ...] = ()  # example questions of other sections' business: never answered
    path: str = ""
    sha256: str = ""

    def item(self, item_id: str) -> FaqItem:
        for it in self.items:
            if it.id == item_id:
                return it
        raise KeyError(item_id)

    @property
    def ids(self) -> list[str]:
        return [it.id for it in self.items]


def default_path() -> Path:
    from ..models import app_root
    return app_root() / "resources" / "phone" / FILE_NAME


def office_path(data_dir: Path | str) -> Path:
    return Path(data_dir) / "phone" / FILE_NAME


def office_copy(data_dir: Path | str) -> Path:
    """The office's editable FAQ in the data folder, written from the shipped default if missing."""
    p = office_path(data_dir)
    if not p.exists():
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_suffix(".tmp")
        shutil.copyfile(default_path(), tmp)
        tmp.replace(p)
    return p


def load_office(data_dir: Path | str) -> Faq:
    """The FAQ the office's phone answers from (``<data>/phone/faq.toml``)."""
    return load(office_copy(data_dir))


def _fail(path: Path, where: str, msg: str, ja: str) -> FaqError:
    return FaqError(f"{path}: {where}: {msg}", ja=f"電話FAQ（{path.name}）の{where}: {ja}")


def _text(path: Path, raw: dict, key: str, where: str, required: bool = True) -> str:
    v = raw.get(key, "")
    if not isinstance(v, str):
        raise _fail(path, where, f"'{key}' must be text", f"「{key}」は文字で書いてください。")
    v = v.strip()
    if required and not v:
        raise _fail(path, where, f"'{key}' is missing or empty", f"「{key}」がありません。")
    return v


def _texts(path: Path, raw: dict, key: str, where: str) -> tuple[str, ...]:
    v = raw.get(key, [])
    if not isinstance(v, list) or not all(isinstance(x, str) and x.strip() for x in v):
        raise _fail(path, where, f"'{key}' must be a list of texts", f"「{key}」は文字の並び [\"…\", \"…\"] で書いてください。")
    return tuple(x.strip() for x in v)


def speakable(path: Path, where: str, text: str) -> None:
    """Refuse forms a TTS voice misreads on the phone."""
    for rx, what in UNSPEAKABLE:
        m = rx.search(text)
        if m:
            raise _fail(path, where, f"'{m.group(0)}' is {what}",
                        f"「{m.group(0)}」は電話で正しく読み上げられません。読みどおりに書いてください。")


def parse(text: str, path: Path) -> Faq:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise FaqError(f"{path} is not valid TOML: {e}", ja=f"電話FAQ（{path.name}）の書き方に誤りがあります: {e}") from e
    items_raw = raw.get("item")
    if not isinstance(items_raw, list) or not items_raw:
        raise _fail(path, "file", "no [[item]] entries", "[[item]] が一つもありません。")
    items, seen = [], set()
    for n, r in enumerate(items_raw, 1):
        if not isinstance(r, dict):
            raise _fail(path, f"item {n}", "not a table", "[[item]] の形になっていません。")
        iid = _text(path, r, "id", f"item {n}")
        where = f"item '{iid}'"
        if not ID_RX.match(iid):
            raise _fail(path, where, "id must be lower-case letters, digits and '-'",
                        "id は半角の英小文字・数字・ハイフンで書いてください。")
        if iid in seen:
            raise _fail(path, where, "the id is used twice", "同じ id が二つあります。")
        seen.add(iid)
        answer = _text(path, r, "answer", where)
        if len(answer) > MAX_ANSWER:
            raise _fail(path, where, f"the answer has {len(answer)} characters (at most {MAX_ANSWER}: it is read aloud)",
                        f"回答が長すぎます（{len(answer)}字。電話で読み上げるので{MAX_ANSWER}字までにしてください）。")
        follow = _text(path, r, "follow_up", where, required=False) or "ほかにご不明な点はありますか。"
        for field_name, t in (("answer", answer), ("follow_up", follow)):
            speakable(path, f"{where} {field_name}", t)
        items.append(FaqItem(iid, _text(path, r, "title", where), answer, follow, _texts(path, r, "examples", where)))
    h = raw.get("handoff")
    if not isinstance(h, dict):
        raise _fail(path, "[handoff]", "the [handoff] table is missing", "[handoff] がありません。")
    handoff = Handoff(_text(path, h, "transfer", "[handoff]"), _text(path, h, "callback", "[handoff]"),
                      _text(path, h, "not_understood", "[handoff]"),
                      _texts(path, h, "person", "[handoff]"), _texts(path, h, "upset", "[handoff]"))
    for name in ("transfer", "callback", "not_understood"):
        speakable(path, f"[handoff] {name}", getattr(handoff, name))
    syn = raw.get("synonyms", {})
    if not isinstance(syn, dict):
        raise _fail(path, "[synonyms]", "not a table", "[synonyms] の形になっていません。")
    abbr = syn.get("abbreviations", {})
    groups = syn.get("groups", [])
    if not isinstance(abbr, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in abbr.items()):
        raise _fail(path, "[synonyms] abbreviations", "must map text to text", "「略語 = \"言い換え\"」の形で書いてください。")
    if not isinstance(groups, list) or not all(isinstance(g, list) and all(isinstance(t, str) for t in g) for g in groups):
        raise _fail(path, "[synonyms] groups", "must be a list of lists of texts", "[[\"…\", \"…\"], …] の形で書いてください。")
    asr = raw.get("asr", {})
    hot = asr.get("hotwords", "") if isinstance(asr, dict) else ""
    if not isinstance(hot, str):
        raise _fail(path, "[asr] hotwords", "must be text", "文字で書いてください。")
    outside = raw.get("outside", {})
    if not isinstance(outside, dict):
        raise _fail(path, "[outside]", "not a table", "[outside] の形になっていません。")
    return Faq(tuple(items), handoff, dict(abbr), tuple(tuple(g) for g in groups), hot.strip(),
               _texts(path, outside, "examples", "[outside]"), str(path),
               hashlib.sha256(text.encode("utf-8")).hexdigest())


def load(path: Path | str | None = None) -> Faq:
    """Read and check one FAQ file (the shipped default when ``path`` is None)."""
    path = Path(path) if path is not None else default_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FaqError(f"{path}: no such file", ja=f"電話FAQ（{path}）が見つかりません。") from None
    except (OSError, UnicodeDecodeError) as e:
        raise FaqError(f"{path} cannot be read: {e}", ja=f"電話FAQ（{path.name}）を読み込めません（UTF-8 で保存してください）。") from e
    return parse(text, path)
