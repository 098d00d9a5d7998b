"""Deterministic checks run after the drafter (LLM or not).

Faithfulness: every statement must cite existing segments, and every number, amount, date, age
and proper noun in it must appear in the segments it cites. Numbers are compared by value after
normalisation (全角/半角 via NFKC, thousands separators, 漢数字, 万/億), so 「6万円」, 「六万円」 and
「60,000円」 are the same amount. Failing statements are kept and flagged 要確認 with the reason.

Compliance (flags for the supervisor, never blocks): the intention to apply (申請意思) not
confirmed in the transcript or not recorded; staff phrases that can amount to obstructing an
application (水際: contacting relatives or bringing bank books as a precondition …); required
sections left empty.
"""
from __future__ import annotations

import functools
import re
import unicodedata
from .model import Draft, Flag, Segment, Statement
from .template import Template

KANJI_DIGITS = {"〇": 0, "零": 0, "一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9,
                "壱": 1, "弐": 2, "参": 3}
SMALL_UNITS = {"十": 10, "百": 100, "千": 1000, "拾": 10}
BIG_UNITS = (("兆", 10 ** 12), ("億", 10 ** 8), ("万", 10 ** 4))
NUM_CHARS = "0-9.〇零一二三四五六七八九壱弐参十拾百千万億兆"
NUM_RUN = re.compile(f"[{NUM_CHARS}]+")
# A run written only in kanji is a number when a counter follows it (一緒, 万一 are not numbers).
COUNTERS = set("円歳才人月日年回件時分秒万千百ヶヵか箇カ名週階度割枚部本台番つ社軒世代")
EVIDENCE_MARK = re.compile(r"[\[［(（]\s*\d+(\s*[,、，]\s*\d+)*\s*[\]］)）]")


def normalize(text: str) -> str:
    """NFKC (全角→半角), no thousands separators, no spaces."""
    t = unicodedata.normalize("NFKC", text or "")
    t = re.sub(r"(?<=\d)[,，](?=\d{3})", "", t)
    return re.sub(r"\s+", "", t)


def _small(s: str) -> float:
    if re.fullmatch(r"\d+(\.\d+)?", s):
        return float(s)
    total, cur = 0.0, None
    i = 0
    while i < len(s):
        ch = s[i]
        m = re.match(r"\d+(\.\d+)?", s[i:])
        if m:
            cur = float(m.group(0))
            i += len(m.group(0))
            continue
        if ch in KANJI_DIGITS:
            cur = (cur or 0) * 10 + KANJI_DIGITS[ch]
        elif ch in SMALL_UNITS:
            total += (cur if cur is not None else 1) * SMALL_UNITS[ch]
            cur = None
        i += 1
    return total + (cur or 0)


def parse_number(s: str) -> float | None:
    """Value of a numeral: 「35000」「3万5千」「三万五千」「12万3000」「1.5万」「二〇二四」."""
    s = s.strip(".")
    if not s:
        return None
    total = 0.0
    for unit, value in BIG_UNITS:
        if unit in s:
            left, s = s.split(unit, 1)
            total += (_small(left) if left else 1) * value
    if s:
        total += _small(s)
    return total


def numbers(text: str) -> set[float]:
    """Every numeric value mentioned in ``text``."""
    t = normalize(text)
    out: set[float] = set()
    for m in NUM_RUN.finditer(t):
        run = m.group(0)
        if not re.search(r"\d", run):
            nxt = t[m.end():m.end() + 1]
            if run[0] in "万億兆" or (nxt not in COUNTERS and not re.search("[十百千万]", run[1:] or "")):
                continue
        v = parse_number(run)
        if v is not None:
            out.add(round(v, 3))
    return out


# ----------------------------------------------------------------------------- kana numerals

_KANA_NUM = [("きゅう", "九"), ("じゅう", "十"), ("ひゃく", "百"), ("びゃく", "百"), ("ぴゃく", "百"),
             ("せん", "千"), ("ぜん", "千"), ("まん", "万"), ("いち", "一"), ("いっ", "一"), ("さん", "三"),
             ("よん", "四"), ("ろく", "六"), ("ろっ", "六"), ("なな", "七"), ("はち", "八"), ("はっ", "八"),
             ("に", "二"), ("ご", "五"), ("く", "九")]
_KANA_ALT = "|".join(k for k, _ in _KANA_NUM)
# a run of kana numerals holding a unit (十百千万): よんまんはっせん, さんじゅう — not a lone に or ご
_KANA_RUN = re.compile(f"(?:{_KANA_ALT})+")
_UNITS = re.compile("じゅう|ひゃく|びゃく|ぴゃく|せん|ぜん|まん")

def kana_numbers_to_kanji(text: str) -> str:
    def conv(m: re.Match) -> str:
        s = m.group(0)
        lead = ""
        if s.startswith("に") and m.start() > 0 and re.match("[\u4e00-\u9fff\u30a1-\u30fa]", text[m.start() - 1]):
            lead, s = "に", s[1:]        # 財布にせんえん: the particle に, not 2
        if not _UNITS.search(s) or len(s) < 3:
            return lead + s
        for k, v in _KANA_NUM:
            s = s.replace(k, v)
        return lead + s
    return _KANA_RUN.sub(conv, text)


@functools.lru_cache(maxsize=1)
def _tokenizer():
    from sudachipy import Dictionary, SplitMode
    return Dictionary(dict="core").tokenizer(mode=SplitMode.C)


def proper_nouns(text: str) -> list[str]:
    """Proper nouns (固有名詞) by SudachiPy, normalised; numerals excluded (they are checked as numbers)."""
    out = []
    for m in _tokenizer().tokenize(normalize(text)):
        pos = m.part_of_speech()
        if pos[1] == "固有名詞" and not re.fullmatch(f"[{NUM_CHARS}]+", m.surface()):
            out.append(m.surface())
    return out


def strip_marks(text: str) -> str:
    return EVIDENCE_MARK.sub("", text or "").strip()


def check_statement(st: Statement, by_seq: dict[int, Segment]) -> list[Flag]:
    """Flags for one statement (empty list: faithful)."""
    if st.source == "staff":
        return [f for f in st.flags if f.code not in FAITHFULNESS_CODES]
    keep = [f for f in st.flags if f.code not in FAITHFULNESS_CODES]
    flags: list[Flag] = []
    if not st.evidence:
        flags.append(Flag("no_evidence"))
        return keep + flags
    missing = [e for e in st.evidence if e not in by_seq]
    if missing:
        flags.append(Flag("bad_evidence", detail=",".join(map(str, missing)), evidence=missing))
    cited = " ".join(by_seq[e].text for e in st.evidence if e in by_seq)
    text = strip_marks(st.text)
    have = numbers(cited) | numbers(kana_numbers_to_kanji(normalize(cited)))
    miss_n = sorted(v for v in numbers(text) if v not in have)
    if miss_n:
        flags.append(Flag("number_mismatch", detail=",".join(f"{v:g}" for v in miss_n)))
    ncited = normalize(cited)
    miss_p = [p for p in dict.fromkeys(proper_nouns(text)) if p not in ncited]
    if miss_p:
        flags.append(Flag("name_mismatch", detail=f"{len(miss_p)}"))
    return keep + flags


FAITHFULNESS_CODES = {"no_evidence", "bad_evidence", "number_mismatch", "name_mismatch", "unsupported_content",
                      "intent_unsupported"}

# ----------------------------------------------------------------------------- content support
# Every content word of a statement (SudachiPy nouns, verbs, adjectives — no numerals, pronouns,
# suffixes; numbers and proper nouns are the checks above) must be found in the segments it cites
# or be a word of the record's own register (with a small synonym list: a record says 単身 where the
# citizen said 一人暮らし), else the statement is flagged 要確認 naming the words. A statement
# claiming 申請意思 must cite a segment where the citizen expresses it.

# Words any record may use without finding them in the cited lines.
RECORD_VOCAB = set("""
相談 相談者 本人 職員 世帯 世帯員 記録 確認 説明 申請 意思 申し立て 申立て 申し出 述べる 話す 言う 申す 聞く 伺う
状況 有無 ある 無い ない いる 居る なる する 成る 為る 出来る できる 思う 考える とのこと 旨 こと 事 もの 物 ため 為 等 など
現在 今 今後 予定 内容 件 点 方 方法 必要 可能 不可 見込み 見込む 希望 求める 受ける 受理 同席 来所 所 様子 生活
あり なし 親族 年齢 月額 金額 制度 手続き 手続 案内 助言 伝える 示す 行う 持つ 続く 含む 及ぶ 対応 要 者 人 名 円 万 千
月 日 年 歳 週 回 頃 以上 以下 以内 程度 約 分
""".split())
SYNONYMS = [{"子", "子供", "子ども", "こども", "児童"}, {"貯金", "預金", "預貯金", "貯蓄"}, {"家賃", "賃料"},
            {"仕事", "就労", "勤務", "働く", "就職", "職"}, {"亡くなる", "死亡", "他界", "死去", "死ぬ"},
            {"一人暮らし", "単身", "独居", "一人"}, {"夫", "主人", "旦那"}, {"妻", "家内", "嫁"},
            {"母", "母親", "お母さん"}, {"父", "父親", "お父さん", "親父"}, {"兄", "お兄さん", "兄貴"},
            {"姉", "お姉さん"}, {"所持金", "手持ち", "財布", "手元"}, {"病院", "通院", "受診", "医療機関"},
            {"援助", "支援", "仕送り", "扶養", "助ける", "頼る"}, {"滞納", "未払い", "溜まる", "払えない"},
            {"退去", "立ち退き", "出る", "追い出す"}, {"訪問", "家庭訪問", "伺う"}, {"書く", "記入", "記載"},
            {"痛み", "痛い", "痛む"}, {"整形", "整形外科"}, {"薬", "服薬", "服用", "処方"}]
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


def support_flags(st: Statement, by_seq: dict[int, Segment], intent: bool = False) -> list[Flag]:
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


# ----------------------------------------------------------------------------- compliance

_REL = r"(親族|家族|親御|ご両親|両親|親に|父親|母親|兄弟|きょうだい|姉妹|お兄|お姉|弟さん|妹さん|息子|娘|お子さん|扶養義務者|身内|実家)"
OBSTRUCTION = [
    ("relatives_first", re.compile(
        _REL + r"[^。？?]{0,20}(連絡|相談|頼|照会|援助|お願い|話)[^。？?]{0,15}"
        r"(てから|ないと|なければ|なきゃ|が先|が条件|でないと|が前提)")),
    ("documents_first", re.compile(
        r"(通帳|預金通帳|賃貸借契約書|契約書|給与明細|源泉徴収票|書類|証明書|印鑑|資料)[^。？?]{0,20}"
        r"(持って|揃え|そろえ|用意|準備|そろって|揃って|集め)[^。？?]{0,12}"
        r"(からでないと|ないと|なければ|なきゃ|てから(また|もう一度|改めて|再度|来|申請|受け))")),
    ("refusal", re.compile(
        r"(申請|申し込み)(は|を|書は|書を)?[^。？?]{0,6}(できません|出来ません|受け付けられません|受け付けできません|"
        r"受付できません|お受けできません|させられません|無理です|渡せません|お渡しできません)")),
    ("work_first", re.compile(
        r"(まず|先に|若いん?だから|働けるん?だから|若いので|働けるので)[^。？?]{0,20}"
        r"(仕事|就職|ハローワーク|求職|働い|働く|働け)[^。？?]{0,15}(てから|でないと|ないと|なければ|なきゃ|無理|難しい)")),
]
# 「…ないということですね」「…ないと思う」 restate the citizen; they set no precondition
OBSTRUCTION = [(code, re.compile(rx.pattern.replace("ないと", "ないと(?!いう|言う|思|考)"))) for code, rx in OBSTRUCTION]
OBSTRUCTION_JA = {
    "relatives_first": "親族への連絡・援助依頼を申請の前提としている可能性",
    "documents_first": "通帳・契約書などの持参を申請の前提としている可能性",
    "refusal": "申請を受け付けない趣旨の説明",
    "work_first": "就労・求職を申請の前提としている可能性",
}
INTENT = re.compile(
    r"(申請(を|は)?(したい|します(?!た)|し(とき|てお?き)(ます|たい)|させて|お願い|を?希望|されます|されますか|なさいますか|しますか|されたい|"
    r"のご?意思|する意思|するお気持ち|されるお気持ち)|申請書を(書|出|お渡し|提出|受け付|受理)|"
    r"申請(は|を)?(しません|しない|見送|やめ)|今日はやめ)")


def obstruction_hits(text: str) -> list[str]:
    t = normalize(text)
    return [code for code, rx in OBSTRUCTION if rx.search(t)]


def compliance(draft: Draft, template: Template) -> list[Flag]:
    flags: list[Flag] = []
    segs = draft.segments
    intent_segs = [g.seq for g in segs if INTENT.search(normalize(g.text))]
    sec_key = template.intent_section
    recorded = False
    if sec_key:
        try:
            recorded = bool(draft.section(sec_key).statements)
        except KeyError:
            recorded = False
    if sec_key and not intent_segs:
        flags.append(Flag("intent_not_confirmed", detail="transcript", section=sec_key))
    elif sec_key and not recorded:
        flags.append(Flag("intent_not_confirmed", detail="record", section=sec_key, evidence=intent_segs[:5]))
    for g in segs:
        if g.speaker == "citizen":
            continue
        for code in obstruction_hits(g.text):
            flags.append(Flag("obstruction_phrase", message=f"{OBSTRUCTION_JA[code]}（発言{g.seq}）",
                              detail=code, evidence=[g.seq]))
    for sec, st in draft.statements():
        if st.source == "extractive":
            continue  # a quoted transcript line: already flagged above
        for code in obstruction_hits(st.text):
            flags.append(Flag("obstruction_phrase", message=f"{OBSTRUCTION_JA[code]}（記録「{sec.title}」）",
                              detail=code, section=sec.key, evidence=list(st.evidence)))
    for sec in draft.sections:
        if sec.required and not sec.statements:
            flags.append(Flag("required_empty", message=f"必須の項目「{sec.title}」が空です", section=sec.key))
    return flags


def check(draft: Draft, template: Template) -> Draft:
    """Run every check on ``draft`` in place (statement flags + draft flags) and return it."""
    by_seq = {g.seq: g for g in draft.segments}
    for sec, st in draft.statements():
        st.flags = check_statement(st, by_seq)
        if st.source not in ("staff", "extractive"):
            st.flags += support_flags(st, by_seq, intent=sec.key == template.intent_section)
    draft.flags = compliance(draft, template)
    return draft
