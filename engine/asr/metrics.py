"""Transcript metrics: character error rate for Japanese (punctuation removed, NFKC, numerals unified,
and — with ``variants=True`` — a short table of spelling variants of the same word unified, e.g.
分かりました/わかりました, 下さい/ください, ヶ月/か月: a recogniser choosing the other, equally correct
spelling is not a recognition error. Both sides are normalised alike)."""
from __future__ import annotations

import re
import unicodedata

_PUNCT = re.compile(r"[\s、。，．,.!?！？「」『』（）()・…―ー\-~〜:：;；\"'“”]+")
_KANJI_DIGITS = {"〇": 0, "一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_UNITS = {"十": 10, "百": 100, "千": 1000}
_BIG = {"万": 10_000, "億": 100_000_000}


def _kanji_number(s: str) -> int:
    total, section, digit = 0, 0, 0
    for ch in s:
        if ch in _KANJI_DIGITS:
            digit = _KANJI_DIGITS[ch]
        elif ch.isdigit():
            digit = digit * 10 + int(ch)
        elif ch in _UNITS:
            section += (digit or 1) * _UNITS[ch]
            digit = 0
        elif ch in _BIG:
            total += (section + digit) * _BIG[ch]
            section, digit = 0, 0
    return total + section + digit


_NUM = re.compile(r"[〇一二三四五六七八九十百千万億0-9]*[〇一二三四五六七八九十百千0-9][〇一二三四五六七八九十百千万億0-9]*")


# spelling variants of one word (same reading, both standard): (pattern, canonical spelling)
VARIANTS = [(re.compile(a), b) for a, b in (
    (r"分か(?=[らりるれろっ])", "わか"),          # 分かりました / わかりました
    (r"下さ(?=[いる])", "くださ"),               # 下さい / ください
    (r"頂(?=[きくけいこ])", "いただ"),           # 頂きます / いただきます
    (r"致(?=[しす])", "いた"),                   # 致します / いたします
    (r"出来(?=[まるてなた])", "でき"),           # 出来ます / できます
    (r"来(?=[まて])", "き"),                     # 来ました / きました (not 来月)
    (r"[ヶヵカ箇](?=月)", "か"),                 # 3ヶ月 / 3か月
    (r"頃", "ごろ"),                             # いつ頃 / いつごろ
    (r"^ハイ|(?<=[。、\s])ハイ", "はい"),        # the answer はい written in katakana
    (r"申し?込み?", "申込"),                     # 申し込み / 申込み / 申込
    (r"振り?込み?", "振込"),                     # 振り込み / 振込み / 振込
    (r"引き?落とし?", "引落"),                   # 引き落とし / 引落し
    (r"御座", "ござ"),
)]


def normalize(text: str, variants: bool = False) -> str:
    """NFKC, no punctuation or spaces, numbers as Arabic digits (五万円 → 50000円, 5万円 → 50000円);
    ``variants``: also unify the spelling variants in :data:`VARIANTS`."""
    t = unicodedata.normalize("NFKC", text)
    if variants:
        for pat, rep in VARIANTS:
            t = pat.sub(rep, t)
    t = _PUNCT.sub("", t)
    # applied to both sides alike, so 一人/1人 and 八歳/8歳 compare equal
    return _NUM.sub(lambda m: str(_kanji_number(m.group())), t)


def edit_distance(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def cer(reference: str, hypothesis: str, variants: bool = False) -> float:
    r, h = normalize(reference, variants), normalize(hypothesis, variants)
    if not r:
        return 0.0 if not h else 1.0
    return edit_distance(r, h) / len(r)
