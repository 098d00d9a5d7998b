"""An ASR-noisy version of a clean transcript, with the error kinds whisper-base makes on Japanese
counter speech. Deterministic: the same text and seed give the same noise.

The rules, applied to each line in this order:

1. Homophones and near-homophones (HOMOPHONES): each occurrence replaced with its probability —
   the kanji whisper-base picks for the same sound: 求職→給食, 先月→天月, 預貯金→4貯金 (seen in
   this project's runs, P_HOMOPHONE) and same-reading words at 0.2–0.4 (扶養→不要, 申請→神聖,
   障害→生涯, 解雇→介護 …).
2. Fillers dropped: えー / えっと / あのー / うーん / まあ as a separate phrase, with probability P_FILLER
   (whisper-base leaves most of them out).
3. Numerals: a kanji numeral with a counter (三万八千円, 十五日) written in digits (3万8000円,
   15日), with probability P_DIGITS (the value stays the same).
4. Particles dropped: は / が / を / に between two kanji or katakana words (or before a digit), with probability P_PARTICLE.
5. No punctuation: 、 and ・ removed, 。？！ become a space (whisper-base often emits none); the
   line is stripped.

Segment boundaries, speakers and timing are kept (evidence ids stay comparable).
"""
from __future__ import annotations

import random
import re
import zlib

from engine.records.checks import parse_number
from engine.records.model import Segment

P_HOMOPHONE = 0.7
P_FILLER = 0.6
P_DIGITS = 0.6
P_PARTICLE = 0.35

# (clean, as whisper-base writes it, probability): the three the issue saw at P_HOMOPHONE, the rest
# (homophones of the same reading) less often
HOMOPHONES = [
    ("預貯金", "4貯金", P_HOMOPHONE), ("求職", "給食", P_HOMOPHONE), ("先月", "天月", P_HOMOPHONE),
    ("扶養", "不要", 0.4), ("申請", "神聖", 0.3), ("障害", "生涯", 0.4), ("解雇", "介護", 0.4),
    ("受給", "需給", 0.4), ("通帳", "通常", 0.3), ("就労", "終了", 0.3), ("亡くなって", "泣くなって", 0.3),
    ("保護", "補語", 0.2), ("支給", "至急", 0.3), ("滞納", "対納", 0.3),
]
FILLERS = re.compile(r"(?:^|(?<=[、。\s]))(えー+と?|えっと|あのー*|うーん|まあ)[、,]?")
KANJI_NUM = re.compile(r"[〇一二三四五六七八九十百千万]+(?=[円歳人日月年回時分件か週])")
PARTICLE = re.compile(r"(?<=[\u4e00-\u9fff\u30a1-\u30fa])([はがをに])(?=[\u4e00-\u9fff\u30a1-\u30fa0-9])")


def _digits(kanji: str) -> str:
    v = parse_number(kanji)
    if v is None or v != int(v):
        return kanji
    v = int(v)
    man, rest = divmod(v, 10000)
    if man and rest:
        return f"{man}万{rest}"
    if man:
        return f"{man}万"
    return str(rest)


def noisy_text(text: str, rng: random.Random) -> str:
    t = text
    for clean, wrong, p in HOMOPHONES:
        t = re.sub(re.escape(clean), lambda m: wrong if rng.random() < p else m.group(0), t)
    t = FILLERS.sub(lambda m: "" if rng.random() < P_FILLER else m.group(0), t)
    t = KANJI_NUM.sub(lambda m: _digits(m.group(0)) if rng.random() < P_DIGITS else m.group(0), t)
    t = PARTICLE.sub(lambda m: "" if rng.random() < P_PARTICLE else m.group(0), t)
    t = re.sub(r"[、・,]", "", t)
    t = re.sub(r"[。？！?!]+", " ", t)
    return re.sub(r"\s+", " ", t).strip() or text


def noisy(segments: list[Segment], seed: str) -> list[Segment]:
    """The noisy version of ``segments`` (seed: e.g. the case id)."""
    rng = random.Random(zlib.crc32(seed.encode("utf-8")))
    return [Segment(g.seq, g.start, g.end, g.speaker, noisy_text(g.text, rng)) for g in segments]
