"""Japanese tokenisation for the manual index: NFKC (全角/半角), SudachiPy, normalized forms.

Both the index and the queries go through :func:`terms`, so 子ども/子供/こども, 申込み/申し込み,
國民/国民 and ｹｰｽﾜｰｶｰ/ケースワーカー meet on the same token. Split mode and form were chosen by
measurement (``bench/manuals.py --tokenizers``, figures in docs/benchmarks.md): SplitMode A splits
compounds (生活保護費 → 生活/保護/費, 介護保険料 → 介護/保険/料) so partial words match, and
``normalized_form`` unifies okurigana and kana/kanji variants (取り下げ/取下げ, 振込/振り込み,
障がい/障害, こども/子供) that surface forms miss; the 表記ゆれ questions of the evaluation set decide it.
"""
from __future__ import annotations

import re
import threading
import unicodedata
from dataclasses import dataclass

from sudachipy import Dictionary, SplitMode

MODES = {"A": SplitMode.A, "B": SplitMode.B, "C": SplitMode.C}
DEFAULT_MODE = "A"
DEFAULT_FORM = "normalized"        # or "surface" / "dictionary"

# Parts of speech that carry no meaning for search.
_DROP_POS = {"助詞", "助動詞", "補助記号", "記号", "空白"}
# Content-poor words counter staff put in questions (normalized forms).
STOPWORDS = frozenset("""
する 為る ある 有る いる 居る なる 成る できる 出来る れる られる せる させる ない 無い
こと 事 もの 物 よう 様 ため 為 とき 時 場合 など 等 これ それ あれ どれ この その あの どの
ここ そこ どこ 何 なん なに 幾ら いくら どう どうして どんな どの位 くらい 位 方 かた
ください 下さる くださる 良い よい いい 思う 言う 云う 聞く 教える 分かる わかる 知る
大丈夫 本当 ちょっと 一寸 実際 結局 今 さん 人 ん ね よ か かな っけ
""".split())

_local = threading.local()
_MAX_BYTES = 40000  # SudachiPy refuses inputs above ~49 kB


# 旧字 → 新字 (one character each, so offsets stay valid). SudachiPy's normalized_form already knows
# some (國, 險); these are the ones it leaves as they are.
_KYUJI = str.maketrans(
    "醫證學國險濟實壽條將屬應價假會圖團壓廣據擴舊廳縣權勞當黨營經輕齡禮戀兩參單收從處"
    "邊變辯關氣歸舉區驗檢險顯權澤擇稅總聽藝讓譯圍餘與豫絲顏惠恆徑僞歷龍號絕續賣讀數轉發體點齒爲來圓榮",
    "医証学国険済実寿条将属応価仮会図団圧広拠拡旧庁県権労当党営経軽齢礼恋両参単収従処"
    "辺変弁関気帰挙区験検険顕権沢択税総聴芸譲訳囲余与予糸顔恵恒径偽歴竜号絶続売読数転発体点歯為来円栄")


def normalize(text: str) -> str:
    """NFKC (全角英数→半角, 半角カナ→全角), 旧字→新字, unified dashes/spaces; keeps offsets."""
    t = unicodedata.normalize("NFKC", text).translate(_KYUJI)
    t = re.sub(r"[‐‑‒–—―ー−－](?=\d)", "-", t)  # 問１－１ / 問1ー1 → 問1-1 (only before digits)
    return t.replace("\u3000", " ")


def _tokenizer():
    tok = getattr(_local, "tok", None)
    if tok is None:
        d = Dictionary(dict="core")
        tok = d.tokenizer() if hasattr(d, "tokenizer") else d.create()   # SudachiPy ≥0.7 / 0.6
        _local.tok = tok
    return tok


@dataclass(frozen=True)
class Token:
    surface: str
    form: str        # the search form (normalized_form by default)
    begin: int       # offsets in the (normalized) text
    end: int
    pos: str
    content: bool    # False for particles, auxiliaries, symbols, stopwords


def _pieces(text: str):
    """Split long text into Sudachi-sized pieces at line/sentence ends, with their offsets."""
    if len(text.encode("utf-8")) <= _MAX_BYTES:
        yield 0, text
        return
    start = 0
    while start < len(text):
        end = min(len(text), start + _MAX_BYTES // 4)
        if end < len(text):
            cut = max(text.rfind("。", start, end), text.rfind("\n", start, end))
            if cut > start:
                end = cut + 1
        yield start, text[start:end]
        start = end


def tokens(text: str, mode: str | None = None, form: str | None = None,
           normalized: bool = False) -> list[Token]:
    """Tokens of ``text`` (NFKC-normalised first unless ``normalized``)."""
    mode, form = mode or DEFAULT_MODE, form or DEFAULT_FORM
    if not normalized:
        text = normalize(text)
    tok = _tokenizer()
    out: list[Token] = []
    for off, piece in _pieces(text):
        for m in tok.tokenize(piece, MODES[mode]):
            s = m.surface()
            if not s.strip():
                continue
            pos = m.part_of_speech()[0]
            if form == "normalized":
                f = m.normalized_form()
            elif form == "dictionary":
                f = m.dictionary_form()
            else:
                f = s
            f = f.lower()
            content = pos not in _DROP_POS and f not in STOPWORDS and s not in STOPWORDS
            out.append(Token(s, f, off + m.begin(), off + m.end(), pos, content))
    return out


def terms(text: str, mode: str | None = None, form: str | None = None) -> list[str]:
    """Search terms of ``text``: the forms of its content tokens, in order (duplicates kept)."""
    return [t.form for t in tokens(text, mode, form) if t.content]


def index_text(text: str, mode: str | None = None, form: str | None = None) -> str:
    """Space-joined terms, for an FTS5 column with the ``unicode61`` tokenizer."""
    return " ".join(_fts_safe(t) for t in terms(text, mode, form))


def _fts_safe(term: str) -> str:
    # unicode61 splits on punctuation; keep each Sudachi term one FTS token
    return re.sub(r"[^\w]", "", term) or "_"
