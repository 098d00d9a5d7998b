"""Transcript metrics: character error rate for Japanese (punctuation removed, NFKC, numerals unified)."""
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


def normalize(text: str) -> str:
    """NFKC, no punctuation or spaces, numbers as Arabic digits (五万円 → 50000円, 5万円 → 50000円)."""
    t = unicodedata.normalize("NFKC", text)
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


def cer(reference: str, hypothesis: str) -> float:
    r, h = normalize(reference), normalize(hypothesis)
    if not r:
        return 0.0 if not h else 1.0
    return edit_distance(r, h) / len(r)
