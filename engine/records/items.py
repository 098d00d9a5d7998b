"""The item drafter: a record built from *exchanges* and a fixed catalogue of record items.

An exchange is a staff question with the citizen's answer(s), so that 「はい」「5万です」 carry the
question's meaning. Each answer is cut into clauses; each clause is assigned to the catalogue items
whose cues it (or, for a short answer, the question) holds — 世帯員と続柄・年齢, 住居, 家賃, 収入の種類と額,
預貯金・所持金, 負債・滞納, 健康・就労, 困窮の経緯, 急迫の事情, 扶養義務者と援助の可否, 他法他施策,
説明した制度・助言, 申請意思, 次の予定 (and 主訴, the first answer). The template names which items feed
which section (``items = [...]`` per section), so an office edits TOML, not code.

Every value is a span of the exchange (the clause, cleaned: fillers dropped, numerals as digits,
polite endings in record register) — nothing is invented, which the content-support check
(:func:`engine.records.checks.support_flags`) verifies like for any other statement. A deterministic merge follows:
a spoken self-correction (「5万…いや4万8千円」) keeps the corrected value, a later amount for the same
item and topic supersedes the earlier one (kept as 訂正 in ``Draft.stats['corrections']``), a bare
denial (「いいえ」) is recorded as denied, duplicates are merged. No model runs here: the drafter costs
milliseconds, so batch and 停止→draft times are those of the checks.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field, replace

from ..errors import MadoguchiError
from . import checks
from .model import Draft, Section, Segment, Statement
from .template import ITEM_KEYS

DRAFTERS = ("llm", "items")


class DrafterError(MadoguchiError):
    ja_default = "記録の下書きの方式の設定が正しくありません。"


def drafter_name(config=None, drafter: str | None = None) -> str:
    """``items`` (exchanges → catalogue items, engine.records.items) or ``llm`` (a model call per
    section and stretch): the argument, else the configuration's ``records.drafter``. Callers that
    name a model (``model=``/``llm=``) ask for ``llm``."""
    name = drafter or (config.get("records.drafter", "items") if config is not None else "items")
    if name not in DRAFTERS:
        raise DrafterError(f"unknown drafter '{name}'; expected one of {', '.join(DRAFTERS)}",
                          ja="記録の下書きの方式の設定が正しくありません。")
    return name




# ----------------------------------------------------------------------------- catalogue


@dataclass(frozen=True)
class Item:
    key: str
    title: str
    cues: str             # regex on the normalised clause (or the question, for short answers)
    speaker: str = "citizen"   # whose clauses feed it: citizen | staff | any


_KIN = r"両親|親御|父|母|兄|姉|弟|妹|息子|娘|子ども|子供|お子さん|親戚|親族|叔父|叔母|おじ|おば|孫|元妻|元夫|前妻|前夫|姪|甥"
CATALOGUE = [
    Item("complaint", "主訴", r"(?!)"),  # the first answer to どうされましたか (see _complaint)
    Item("household", "世帯員と続柄・年齢", r"\d+歳|\d+才|お年|おいくつ|年齢|一人暮らし|お一人|一人で|ひとり|単身|世帯|同居|一緒に住|"
         r"妻|嫁|夫|主人|子ども|子供|お子さん|娘|息子|孫|家族|\d+人"),
    Item("housing", "住居", r"アパート|住ま|住ん|住居|借家|持ち家|公営住宅|市営|県営|マンション|大家|家主|部屋|寮|実家"),
    Item("rent", "家賃", r"家賃|賃料|共益費"),
    Item("income", "収入の種類と額", r"収入|給料|給与|月給|手取り|年金|手当|日雇い|パート|アルバイト|バイト|仕送り|養育費|稼|日給|"
         r"時給|一日いくら|入って|もらって|受給"),
    Item("savings", "預貯金・所持金", r"預金|貯金|預貯金|通帳|口座|所持金|手持ち|手元|財布|お金はいくら|残高|保険|車"),
    Item("debt", "負債・滞納", r"借金|ローン|消費者金融|サラ金|カード|滞納|たま(って|った)|ため(て|た)|払えて(い)?ない|未払|督促|延滞|借り"),
    Item("health", "健康・就労", r"病気|病院|通院|入院|体|具合|痛|薬|障害|治療|医者|先生|血圧|膝|腰|うつ|働け|仕事|働|職|求職|就職|勤め|"
         r"会社|工場|現場|けが|怪我|手術|目|足"),
    Item("history", "困窮の経緯", r"解雇|辞め|退職|倒産|閉鎖|失業|クビ|首に|減っ|なくなっ|離婚|別居|契約|更新|切られ|けがして|病気で|"
         r"入院して|亡くなって|から"),
    Item("urgency", "急迫の事情", r"今日|明日|今週|日曜|月曜|火曜|水曜|木曜|金曜|土曜|までに|追い出|出ていけ|出て行け|退去|立ち退|"
         r"止ま|止め|食べて(い)?ない|食べるもの|食料|食事|電気|ガス|水道|\d+月\d+日|取り壊し|野宿|ネットカフェ"),
    Item("supporters", "扶養義務者と援助の可否", _KIN + r"|援助|仕送り|頼|疎遠|音信|連絡"),
    Item("other_measures", "他法他施策", r"雇用保険|失業保険|失業給付|年金|手帳|障害|住居確保給付金|貸付|社協|社会福祉協議会|ハローワーク|"
         r"法テラス|介護|包括|児童扶養手当|医療券|国民健康保険|国保|労災|傷病手当|制度|年金事務所|養育費"),
    Item("explained", "説明した制度・助言", r"説明|制度|生活保護|保護|申請|権利|調査|訪問|14日|決定|支給|案内|紹介|相談でき|受けられ|"
         r"できます|なります|大丈夫|上限|必要|書類|法テラス|ハローワーク|窓口", speaker="staff"),
    Item("intent", "申請意思", r"(?!)"),   # by checks.INTENT / UNDECIDED on the citizen's own words (see _intent)
    Item("next", "次の予定", r"明日|明後日|あさって|来週|再来週|後日|今度|次回|曜日|曜|\d+日に|\d+時|伺い|訪問|来てください|"
         r"お持ちください|持ってきて|連絡します|電話します|お電話|予約", speaker="staff"),
]
ITEMS = {it.key: it for it in CATALOGUE}
assert tuple(ITEMS) == ITEM_KEYS, "the catalogue and template.ITEM_KEYS name the same items"
# Sections of a template without ``items``: guessed from these keys (the shipped templates name them).
DEFAULT_ITEMS = {
    "situation": ["household", "housing"], "complaint": ["complaint"], "hardship": ["history", "urgency", "health"],
    "income_assets": ["income", "savings", "rent", "debt"], "supporters": ["supporters"],
    "other_measures": ["other_measures"], "explanation": ["explained"], "intent": ["intent"], "next_steps": ["next"],
    "household": ["household", "housing"], "income": ["income", "savings"], "documents": ["explained"],
}

SMALLTALK = re.compile(r"^(ありがとう|すみません|お願いします|お願いする|助かる|助かります|わかりました|分かりました|そうなんですね|"
                       r"なるほど|よろしく|はい|ええ|そう)")
FILLERS = re.compile(r"(えーと|えっと|えー|ええと|あのう|あの|そのー|まあ|うーん|んー|なんか|ですね(?=[、,])|ちょっと待って)[、,…]*")
YES = re.compile(r"^(はい|ええ|うん|そうです|そうですね|そう|そうなんです|そうやね|そうっちゃ|あります)[、,。!！]*")
NO = re.compile(r"^(いいえ|いえ|いや(?!あ)|ないです|ありません|ないっちゃ|なか|ない|ございません|おりません)[、,。!！]*")
CORRECTION = re.compile(r"^.*?[0-9〇一二三四五六七八九十百千万月日]\s*(…|・・・|\.\.\.)*[、,]?\s*いや[、,]?\s*"
                        r"((ちがう|違う|違った|間違え?た?)(な|ちがう|違う)?[、,]?\s*)?")
ENDINGS = [(r"んですけど(も)?$", ""), (r"んですが$", ""), (r"んです(よ|ね|けど)?$", ""), (r"のです$", ""),
           (r"ています$", "ている"), (r"てます$", "ている"), (r"でいます$", "でいる"), (r"でます$", "でいる"),
           (r"ていません$", "ていない"), (r"てません$", "ていない"), (r"ありません$", "ない"), (r"いません$", "いない"),
           (r"できません$", "できない"), (r"ませんでした$", "なかった"), (r"ました$", "た"), (r"でした$", "だった"),
           (r"できます$", "できる"), (r"します$", "する"), (r"きます$", "く"), (r"ります$", "る"),
           (r"([えけげせぜてでねへべめれ])ます$", r"\1る"), (r"([^てで])います$", r"\1う"), (r"います$", "いる"), (r"きましょう$", "こう"),
           (r"([えけせてねめれ])ましょう$", r"\1よう"), (r"ないです$", "ない"), (r"たいです$", "たい"),
           (r"かったです$", "かった"), (r"いです$", "い"), (r"です(よ|ね|けど|が)?$", ""),
           # a final ん only after a dictionary form, た or な/の (しとるん, そうなん): after the a/e-row it is
           # a negative and stays (おらん, 頼まれん, 分かりません)
           (r"(よ|ね|わ|けど|けん|っちゃ|ばい|って|し|も|や|かね|かな|(?<=[うくぐすつぬぶむるただなの])ん)$", "")]
CLAUSE = re.compile(r"[^。！？!?]+[。！？!?]?")


def kana_numbers(text: str) -> str:
    return checks.kana_numbers_to_kanji(text)


def yen(v: float) -> str:
    """48000 → 4万8千円, 36000 → 3万6千円, 2000 → 2千円, 92500 → 9万2500円."""
    v = int(v)
    man, rest = divmod(v, 10000)
    out = f"{man}万" if man else ""
    if rest:
        out += f"{rest // 1000}千" if rest % 1000 == 0 else str(rest)
    return out + "円"


_AMOUNT = re.compile(r"([0-9.]+万[0-9.千百]*|[0-9.]+千|[0-9]+)(円)?")


def digits(text: str) -> str:
    """Numerals in digits (kana and kanji), amounts before 円 as 4万8千円; the rest unchanged."""
    from .checks import normalize, parse_number
    t = normalize(kana_numbers(normalize(text)))

    def conv(m: re.Match) -> str:
        v = parse_number(m.group(0))
        return str(int(v)) if v is not None and v == int(v) and v > 0 else m.group(0)
    t = re.sub(r"(?<=[0-9〇一二三四五六七八九十百千万])えん", "円", t)
    t = re.sub(r"(?<![0-9])[〇一二三四五六七八九十百千][〇一二三四五六七八九十百千万]*(?=[円歳才人日月年回時分件か週ヶカ])",
               conv, t)
    t = re.sub(r"(?<![0-9])([0-9]+)万([0-9]+)千(?=円|[^0-9])", lambda m: str(int(m.group(1)) * 10000 + int(m.group(2)) * 1000), t)

    def money(m: re.Match) -> str:
        v = parse_number(m.group(1))
        return yen(v) if v and v >= 1000 else m.group(0)
    return re.sub(r"([0-9]+(?:万[0-9]*)?)円", money, t)


@functools.lru_cache(maxsize=8192)
def clean(text: str) -> str:
    """A clause in record register: self-correction resolved, fillers out, numerals as digits,
    polite endings plain."""
    t = checks.normalize(text)
    t = CORRECTION.sub("", t)
    t = FILLERS.sub("", t)
    t = digits(t)
    t = re.sub(r"(くらい|ぐらい|ほど|ちょっと)(?=[、。]|$)", "", t)
    t = re.sub(r"[…・]+", "、", t).strip("、,。 ")
    for _ in range(2):
        for rx, rep in ENDINGS:
            t2 = re.sub(rx, rep, t)
            if t2 != t:
                t = t2.strip("、,。 ")
                break
    return t


def clauses(text: str) -> list[str]:
    """Sentences of an utterance in record register (an ASR line without punctuation: split at its
    pauses, the spaces whisper leaves). Cached: the extraction asks once per item, and the live
    checklist (engine.records.checklist) again for each new line of a session."""
    return list(_clauses(text or ""))


@functools.lru_cache(maxsize=8192)
def _clauses(text: str) -> tuple[str, ...]:
    out = []
    for part in re.split(r"[ 　]+", text.strip()):
        out += [c for c in (clean(m.group(0)) for m in CLAUSE.finditer(checks.normalize(part))) if c]
    return tuple(out)


TRIM_AT = 30       # characters (20 and 14 tried on dev: noisy verbatim 30 → 24 %, one critical fact lost on clean)


def trim(clause: str, item: Item) -> str:
    """A long sentence cut to its phrases that hold the item's cue or a number (less of a copy)."""
    if len(clause) <= TRIM_AT:
        return clause
    pieces = [p for p in clause.split("、") if p]
    kept = [p for p in pieces if re.search(item.cues, p) or re.search(r"[0-9]", p)]
    return "、".join(kept) if kept and len(kept) < len(pieces) else clause


# ----------------------------------------------------------------------------- exchanges

@dataclass
class Exchange:
    staff: list[Segment] = field(default_factory=list)
    citizen: list[Segment] = field(default_factory=list)


def exchanges(segments: list[Segment]) -> list[Exchange]:
    out: list[Exchange] = []
    for g in segments:
        if g.speaker == "citizen":
            if not out:
                out.append(Exchange())
            out[-1].citizen.append(g)
        else:
            if not out or out[-1].citizen:
                out.append(Exchange())
            out[-1].staff.append(g)
    return out


@dataclass
class Found:
    item: str
    text: str
    evidence: list[int]
    topic: str = ""
    amount: float | None = None
    seq: int = 0
    corrected: list[str] = field(default_factory=list)


def _cue(item: Item, text: str) -> str:
    m = re.search(item.cues, text)
    return m.group(0) if m else ""


def asks(question: str) -> bool:
    """The staff line is a question (「…ですか」「お年は。」「いくら」), not an explanation."""
    q = checks.normalize(question).rstrip("。 ")
    return bool(re.search(r"(か|\?|？|は|いくら|何|どう|どちら|いつ)$", q)) or bool(re.search(r"いくら|何|どう|いつ|どこ", q[-12:]))


def _last_sentence(question: str) -> str:
    parts = [p for p in re.split(r"(?<=[。？?])", checks.normalize(question)) if p.strip()]
    return parts[-1] if parts else ""


def _topic(question: str, item: Item) -> str:
    """The question's word for this item (家賃, 年金, お姉さん → 姉) — the subject of a short answer."""
    if not asks(question):
        return ""
    m = re.search(item.cues, digits(_last_sentence(question)))
    if not m:
        return ""
    t = re.sub(r"^[おご]", "", m.group(0))
    return "年齢" if t in ("年", "いくつ") else t


def _question_clause(question: str) -> str:
    q = clean(question.split("。")[-1] or question)
    q = re.sub(r"(されて|して)(い)?る(ん)?(です|でしょう)?か$", "している", q)
    q = re.sub(r"(ですか|ますか|でしょうか|か)$", "", q)
    return re.sub(r"^[おご]", "", q)


def _render(topic: str, body: str, item: Item) -> str:
    bare = re.fullmatch(r"[0-9〇一二三四五六七八九十百]+", body)
    if topic == "年齢" and bare:
        body += "歳"
    if topic and bare and re.fullmatch(r"[0-9]+歳", topic) and checks.parse_number(body) == checks.parse_number(topic[:-1]):
        return f"{topic}とのこと。"       # 「66歳ですか」「そうです、六十六です」
    if item.key == "next":
        return f"{body}予定。" if re.search(r"[うくすつぬむるぐぶ]$", body) else f"{body}（予定）。"
    if item.speaker == "staff":
        return f"{body}旨を説明。"
    if topic and topic not in body:
        return f"{topic}は{body}とのこと。"
    return f"{body}とのこと。"


def _complaint(ex: list[Exchange]) -> list[Found]:
    for e in ex[:4]:
        q = " ".join(g.text for g in e.staff)
        if e.citizen and (not e.staff or re.search(r"どうされ|どのような|どういった|ご用件|ご相談|どうしました|いかがされ", q)):
            cs = [c for g in e.citizen for c in clauses(g.text)]
            cs = [c for c in cs if len(c) > 4][:2]
            if cs:
                return [Found("complaint", "、".join(cs) + "とのこと。", [g.seq for g in e.citizen])]
    return []


UNDECIDED = re.compile(r"考えさせ|考えたい|考えてから|検討し|持ち帰|迷って|決めかね|決められ|保留|見送|"
                       r"申請(は|を)?(しない|しません|やめ)|今日は(いい|結構|やめ)")


def _intent(ex: list[Exchange]) -> list[Found]:
    out = []
    for e in ex:
        q = " ".join(g.text for g in e.staff)
        asked = bool(re.search(r"申請", checks.normalize(q)))
        for g in e.citizen:
            t = checks.normalize(g.text)
            bare = FILLERS.sub("", t)
            if checks.INTENT.search(t) or UNDECIDED.search(t) and asked:
                if UNDECIDED.search(t):
                    cs = [c for c in clauses(g.text) if re.search(r"申請|考え|検討|保留|見送|決め|やめ|持ち帰|迷", c)]
                    body = "、".join(cs) or clean(g.text)
                    text = f"{body}とのこと。" if "申請" in body else f"申請は{body}とのこと。"
                else:
                    raw = next((c for c in re.split(r"[。！？!?]", bare) if "申請" in c), bare).strip("、 ")
                    text = f"申請の意思あり（「{raw}」と述べた）。"
                out.append(Found("intent", text, [s.seq for s in e.staff[-1:]] + [g.seq]))
            elif asked and YES.match(bare) and re.search(r"申請(され|し)ます|申請を?希望|申請(の|する)(ご)?意思", q):
                out.append(Found("intent", f"申請の意思あり（申請の確認に「{clean(g.text)}」と述べた）。",
                                 [s.seq for s in e.staff[-1:]] + [g.seq]))
    return out


def extract(segments: list[Segment], wanted: set[str]) -> list[Found]:
    ex = exchanges(segments)
    found: list[Found] = []
    if "complaint" in wanted:
        found += _complaint(ex)
    if "intent" in wanted:
        found += _intent(ex)
    for e in ex:
        q = " ".join(g.text for g in e.staff)
        qn = checks.normalize(q)
        for item in CATALOGUE:
            if item.key not in wanted or item.key in ("complaint", "intent"):
                continue
            if item.speaker in ("staff", "any"):
                for g in e.staff:
                    for c in clauses(g.text):
                        if _cue(item, c) and len(c) > 6 and not c.endswith("か"):
                            found.append(Found(item.key, _render("", c, item), [g.seq], seq=g.seq))
            if item.speaker == "staff":
                continue
            for g in e.citizen:
                cs = clauses(g.text)
                short = len("".join(cs)) <= 12
                for c in cs:
                    if YES.fullmatch(c) or len(c) < 2 or SMALLTALK.match(c) and len(c) < 12:
                        continue
                    own = _cue(item, c)
                    if not own and item.key == "income" and re.search(r"[0-9]+万|[0-9]千円", c) and not any(
                            re.search(ITEMS[k].cues, c + _last_sentence(q)) for k in ("rent", "savings", "debt")):
                        own = "円"      # an amount no other item claims: income (「先月は5万円だった」)
                    has_num = bool(re.search(r"[0-9]", c))
                    if own == "円" or not own and (short or has_num):
                        topic = _topic(q, item)
                    else:
                        topic = ""
                    if not own and not topic:
                        continue
                    if NO.match(c) and short and topic:
                        body = re.sub(r"^(いいえ|いえ|いや)[、,]?", "", c) or "ない"
                        body = body if re.search("ない|無い|なし|ません", body) else "ない"
                    else:
                        body = trim(c, item) if own else c
                    text = _render(topic, body, item)
                    nums = [v for v in checks.numbers(body) if v >= 1000]
                    found.append(Found(item.key, text, sorted({g.seq} | ({e.staff[-1].seq} if topic and e.staff else set())),
                                       topic=topic or own, amount=nums[-1] if nums else None, seq=g.seq))
            if not e.citizen or item.speaker != "citizen":
                continue
            # 「はい」 alone: the question is the fact (「お一人ですか」「はい」 → 一人とのこと)
            whole = " ".join(g.text for g in e.citizen)
            if YES.match(checks.normalize(whole)) and len(clean(whole)) <= 6 and _cue(item, qn):
                qc = _question_clause(q)
                if qc and len(qc) <= 30:
                    found.append(Found(item.key, f"{qc}とのこと。", [e.staff[-1].seq] + [g.seq for g in e.citizen],
                                       topic=_cue(item, qn), seq=e.citizen[0].seq))
    return merge(found)


def merge(found: list[Found]) -> list[Found]:
    """A later amount for the same item and topic supersedes the earlier (kept as 訂正); identical
    statements of one item merged (evidence united)."""
    out: list[Found] = []
    for f in found:
        prev = next((o for o in out if o.item == f.item and o.amount is not None and f.amount is not None
                     and o.topic and o.topic == f.topic and o.amount != f.amount), None)
        if prev is not None and f.item in ("rent", "savings"):
            f.corrected = prev.corrected + [prev.text]
            f.evidence = sorted(set(prev.evidence) | set(f.evidence))
            out.remove(prev)
        same = next((o for o in out if o.item == f.item and o.text == f.text), None)
        if same is not None:
            same.evidence = sorted(set(same.evidence) | set(f.evidence))
            continue
        out.append(f)
    return out


def section_items(template) -> dict[str, list[str]]:
    return {s.key: (s.items or DEFAULT_ITEMS.get(s.key, [])) for s in template.sections}


def labelled(segments: list[Segment]) -> list[Segment]:
    """``segments`` as they are, or — without any citizen label (a transcript without speakers) —
    with the questions taken as staff's and the rest as answers."""
    if any(g.speaker == "citizen" for g in segments):
        return segments
    return [replace(g, speaker="staff" if g.speaker == "staff" or asks(g.text) else "citizen") for g in segments]


def draft_items(segments: list[Segment], template, incremental: bool = False) -> Draft:
    """The record drafted from exchanges and catalogue items (not yet checked); ``template``: a
    :class:`~engine.records.template.Template`."""
    d = Draft(template.name, template.title, [Section(s.key, s.title, s.required) for s in template.sections],
              method="items", segments=list(segments))
    plan = section_items(template)
    wanted = {k for ks in plan.values() for k in ks}
    found = extract(labelled(segments), wanted)
    corrections = []
    for spec, sec in zip(template.sections, d.sections):
        keys = plan[spec.key]
        if spec.kind == "judgement" or not keys:
            continue
        seen = set()
        for f in sorted((f for f in found if f.item in keys), key=lambda f: (min(f.evidence) if f.evidence else 0)):
            if f.text in seen:
                continue
            seen.add(f.text)
            sec.statements.append(Statement(f.text, f.evidence, kind=spec.kind, source="items"))
            corrections += [{"item": f.item, "superseded": c, "by": f.text} for c in f.corrected]
    d.stats = {"items": len(found), "exchanges": len(exchanges(segments)), "corrections": corrections}
    if incremental:
        d.stats["incremental"] = True
    return d
