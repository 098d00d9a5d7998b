"""Content-support check: every content word of a statement must be found in the segments it
cites (or be a word of the record's own register), else the statement is flagged 要確認 naming the
words. A statement claiming 申請意思 must cite a segment where the citizen expresses it.

Content words are SudachiPy nouns, verbs and adjectives (no numerals, pronouns, suffixes; numbers
and proper nouns are the number/name checks' job), compared by surface and normalised form, with a
small synonym list (a record says 単身 where the citizen said 一人暮らし).
"""
from __future__ import annotations

import re

from .checks import INTENT, _tokenizer, kana_numbers_to_kanji, normalize, strip_marks
from .model import Flag, Segment, Statement

# Words any record may use without finding them in the cited lines.
RECORD_VOCAB = set("""
相談 相談者 本人 職員 世帯 世帯員 記録 確認 説明 申請 意思 申し立て 申立て 申し出 述べる 話す 言う 申す 聞く 伺う
状況 有無 ある 無い ない いる 居る なる する 成る 為る 出来る できる 思う 考える とのこと 旨 こと 事 もの 物 ため 為 等 など
現在 今 今後 予定 内容 件 点 方 方法 必要 可能 不可 見込み 見込む 希望 受ける 来所 所 生活
あり なし 年齢 月額 金額 制度 手続き 手続 案内 助言 伝える 行う 持つ 対応 要 者 人 名 円 万 千 月 日 年 歳 週 回 頃
以上 以下 以内 程度 約 分
""".split())
SYNONYMS = [{"子", "子供", "子ども", "こども", "児童"}, {"貯金", "預金", "預貯金", "貯蓄"}, {"家賃", "賃料"},
            {"仕事", "就労", "勤務", "働く", "就職"}, {"亡くなる", "死亡", "他界", "死去", "死ぬ"},
            {"一人暮らし", "単身", "独居", "一人"}, {"夫", "主人", "旦那"}, {"妻", "家内", "嫁"},
            {"母", "母親", "お母さん"}, {"父", "父親", "お父さん", "親父"}, {"兄", "お兄さん", "兄貴"},
            {"姉", "お姉さん"}, {"所持金", "手持ち", "財布", "手元"}, {"病院", "通院", "受診"},
            {"援助", "支援", "仕送り", "扶養"}, {"滞納", "未払い", "溜まる"}, {"退去", "立ち退き", "出る"},
            {"訪問", "家庭訪問", "伺う"}, {"書く", "記入", "記載"}]
_SYN = {w: grp for grp in SYNONYMS for w in grp}
YES = re.compile(r"(はい|ええ|お願いします|そうです)")
INTENT_CLAIM = re.compile(r"申請(し(とき|てお?き)?たい|しと?きます|します|する(?!か)|を希望|させて|をお願い|意思|の意思)")


def content_words(text: str) -> list[tuple[str, str]]:
    """(surface, normalised form) of the nouns, verbs and adjectives of ``text``."""
    out = []
    for m in _tokenizer().tokenize(normalize(text)):
        pos = m.part_of_speech()
        if pos[0] not in ("名詞", "動詞", "形容詞") or pos[1] in ("数詞", "代名詞", "固有名詞") \
                or pos[2] == "助数詞可能" or pos[1] == "非自立可能":
            continue
        s = m.surface()
        if re.fullmatch(r"[0-9.〇一二三四五六七八九十百千万億]+", s) or re.fullmatch(r"[ぁ-ん]", s):
            continue
        out.append((s, m.normalized_form()))
    return out


def unsupported(statement: str, cited: str) -> list[str]:
    """Content words of ``statement`` found neither in ``cited`` nor in the record vocabulary."""
    ncited = normalize(kana_numbers_to_kanji(normalize(cited)))
    have = set()
    for s, n in content_words(cited):
        have |= {s, n}
    missing = []
    for s, n in content_words(strip_marks(statement)):
        if s in ncited or n in have or s in RECORD_VOCAB or n in RECORD_VOCAB:
            continue
        if any(w in have or w in ncited for w in _SYN.get(n, _SYN.get(s, ()))):
            continue
        missing.append(s)
    return list(dict.fromkeys(missing))


def flags(st: Statement, by_seq: dict[int, Segment], intent: bool = False) -> list[Flag]:
    """要確認 flags for content the cited segments do not hold, and for a 申請意思 claim without the
    citizen's own words behind it."""
    cited = [by_seq[e] for e in st.evidence if e in by_seq]
    out = []
    if cited:
        words = unsupported(st.text, " ".join(g.text for g in cited))
        if words:
            out.append(Flag("unsupported_content", message=f"根拠の発言にない語: {'、'.join(words[:5])}",
                            detail=",".join(words[:5])))
    asked = any(g.speaker != "citizen" and INTENT.search(normalize(g.text)) for g in cited)
    if intent and INTENT_CLAIM.search(normalize(st.text)) and not any(
            g.speaker == "citizen" and (INTENT.search(normalize(g.text)) or asked and YES.search(normalize(g.text)))
            for g in cited):
        out.append(Flag("intent_unsupported"))
    return out
