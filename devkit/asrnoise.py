"""An ASR-noisy version of a clean transcript, with the error kinds whisper-base makes on Japanese
counter speech. Deterministic: the same text and seed give the same noise.

The kinds come from whisper-base's own output on this set (synthesized speech of dev lines,
see docs/benchmarks.md) and from the issue (求職→給食, 先月→天月, 預貯金→4貯金). Applied to each
line in this order:

1. Homophones and near-homophones (HOMOPHONES, each with its probability): 求職→給食, 先月→天月,
   預貯金→4貯金, 国民年金→国民燃金, 厚生年金→高生年金, 電気代→電気台, 郵便局→有名曲, 借家→尺屋,
   兄弟→強大, 扶養→不要, 申請→神聖, 障害→生涯, 解雇→介護 …
2. Words in kana: a word holding kanji (not a numeral or counter) is written as its reading with
   probability P_KANA (hiragana; katakana for proper nouns, at P_KANA_NAME): 家賃→やちん, 預金→よきん,
   戸畑→トバタ, 亡くなった→なくなった. P_KANA = 0.4 brings the generator's character error rate on
   the dev lines checked against whisper-base to about 0.14 (whisper-base itself: about 0.20 there;
   ``bench/records.py --whisper-check`` redoes that check, resources/eval/records/facts/whisper_check.jsonl).
3. Numerals: a kanji numeral with a counter written in digits with probability P_DIGITS
   (三万八千円→3万8000円, 二か月→2ヶ月; the value stays); then 円 after a number heard as 年 with
   probability P_YEN_NEN (3万円→3万年: the value is kept, the unit is not).
4. Fillers: えーと / えっと written 「Aと」 with probability P_FILLER_A, otherwise dropped with
   probability P_FILLER; あのー / うーん / まあ dropped with probability P_FILLER.
5. Particles dropped: は / が / を / に between two kanji or katakana words (or before a digit),
   with probability P_PARTICLE.
6. Punctuation: with probability P_NO_PUNCT a line loses all of it (、。？！ → nothing / a space);
   otherwise 。 becomes 、 except at the end (whisper-base runs sentences together).

Segment boundaries, speakers and timing are kept (evidence ids stay comparable).
"""
from __future__ import annotations

import random
import re
import zlib

from engine.records.checks import parse_number
from engine.records.model import Segment

P_HOMOPHONE = 0.7
P_KANA = 0.4
P_KANA_NAME = 0.5
P_DIGITS = 0.9
P_YEN_NEN = 0.08
P_FILLER = 0.6
P_FILLER_A = 0.3
P_PARTICLE = 0.2
P_NO_PUNCT = 0.5

# (clean, as whisper-base writes it, probability)
HOMOPHONES = [
    ("預貯金", "4貯金", P_HOMOPHONE), ("求職", "給食", P_HOMOPHONE), ("先月", "天月", P_HOMOPHONE),
    ("国民年金", "国民燃金", 0.5), ("厚生年金", "高生年金", 0.5), ("電気代", "電気台", 0.5),
    ("郵便局", "有名曲", 0.4), ("借家", "尺屋", 0.5), ("兄弟", "強大", 0.5), ("病気", "冒気", 0.3),
    ("扶養", "不要", 0.4), ("申請", "神聖", 0.3), ("障害", "生涯", 0.4), ("解雇", "介護", 0.4),
    ("受給", "需給", 0.4), ("通帳", "通常", 0.3), ("就労", "終了", 0.3), ("支給", "至急", 0.3),
    ("滞納", "対納", 0.3), ("大家", "大屋", 0.4),
]
FILLER_ETO = re.compile(r"(?:^|(?<=[、。…\s]))(えー+と|えっと)[、,…]?")
FILLERS = re.compile(r"(?:^|(?<=[、。…\s]))(えー+|あのー*|うーん|まあ)[、,…]?")
KANJI_NUM = re.compile(r"[〇一二三四五六七八九十百千万]+(?=[円歳人日月年回時分件か週])")
PARTICLE = re.compile(r"(?<=[\u4e00-\u9fff\u30a1-\u30fa])([はがをに])(?=[\u4e00-\u9fff\u30a1-\u30fa0-9])")
HAS_KANJI = re.compile(r"[\u4e00-\u9fff]")


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


def _hira(kata: str) -> str:
    return "".join(chr(ord(c) - 0x60) if "ァ" <= c <= "ヶ" else c for c in kata)


def _kana_words(text: str, rng: random.Random) -> str:
    from engine.records.checks import _tokenizer
    out = []
    for m in _tokenizer().tokenize(text):
        s = m.surface()
        pos = m.part_of_speech()
        if HAS_KANJI.search(s) and pos[1] != "数詞" and pos[2] != "助数詞可能" \
                and not re.search(r"[〇一二三四五六七八九十百千万]", s):
            reading = m.reading_form()
            if pos[1] == "固有名詞" and rng.random() < P_KANA_NAME:
                s = reading
            elif rng.random() < P_KANA:
                s = _hira(reading)
        out.append(s)
    return "".join(out)


def noisy_text(text: str, rng: random.Random) -> str:
    t = text
    for clean, wrong, p in HOMOPHONES:
        t = re.sub(re.escape(clean), lambda m: wrong if rng.random() < p else m.group(0), t)
    t = _kana_words(t, rng)
    t = KANJI_NUM.sub(lambda m: _digits(m.group(0)) if rng.random() < P_DIGITS else m.group(0), t)
    t = t.replace("か月", "ヶ月") if rng.random() < P_DIGITS else t
    t = re.sub(r"(?<=[0-9万千百])円", lambda m: "年" if rng.random() < P_YEN_NEN else "円", t)
    t = FILLER_ETO.sub(lambda m: "Aと" if rng.random() < P_FILLER_A else
                       ("" if rng.random() < P_FILLER else m.group(0)), t)
    t = FILLERS.sub(lambda m: "" if rng.random() < P_FILLER else m.group(0), t)
    t = PARTICLE.sub(lambda m: "" if rng.random() < P_PARTICLE else m.group(0), t)
    if rng.random() < P_NO_PUNCT:
        t = re.sub(r"[、・,…]", "", t)
        t = re.sub(r"[。？！?!]+", " ", t)
    else:
        t = re.sub(r"。(?=.)", "、", t)
    return re.sub(r"\s+", " ", t).strip() or text


def noisy(segments: list[Segment], seed: str) -> list[Segment]:
    """The noisy version of ``segments`` (seed: e.g. the case id)."""
    rng = random.Random(zlib.crc32(seed.encode("utf-8")))
    return [Segment(g.seq, g.start, g.end, g.speaker, noisy_text(g.text, rng)) for g in segments]


def cer(ref: str, hyp: str) -> tuple[int, int]:
    """Character edits from ``ref`` to ``hyp`` and the length of ``ref`` (engine.asr.metrics'
    normalisation: no punctuation or spaces, numerals in digits)."""
    from engine.asr.metrics import edit_distance, normalize as asr_normalize
    a = asr_normalize(ref)
    return edit_distance(a, asr_normalize(hyp)), len(a)
