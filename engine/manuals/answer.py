"""回答案: a short draft answer written by the local LLM from the top search hits only.

Every sentence ends with the number of the hit it rests on (``[1]``); sentences the model writes
without a valid citation are attributed to the hit they overlap most or dropped. When the search
finds nothing relevant the draft says so instead of answering. It is always marked as a draft.
"""
from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field

from ..errors import MadoguchiError
from .search import Hit, prepare, search
from .tokenize import terms

log = logging.getLogger(__name__)

DRAFT_LABEL = "【回答案（AIによる下書き・要確認）】"
NOTHING = "マニュアルの中に、この質問に当てはまる記述は見つかりませんでした。検索語を変えるか、係内で確認してください。"
MIN_SIMILARITY = 0.86        # a hit found only by meaning must be at least this close to count
PASSAGE_CHARS = 420

SYSTEM = ("あなたは福祉事務所の窓口職員を手伝う補助者です。与えられた資料だけを根拠に、質問への回答案を"
          "日本語で2〜3文で書いてください。各文の最後に、根拠にした資料の番号を[1]のように必ず付けてください。"
          "資料に書かれていないことは書かないでください。")


@dataclass
class Sentence:
    text: str
    sources: list[int]          # 1-based numbers into ``Answer.hits``


@dataclass
class Answer:
    question: str
    found: bool
    sentences: list[Sentence] = field(default_factory=list)
    hits: list[Hit] = field(default_factory=list)
    method: str = "none"        # llm | extractive | none
    model: str = ""
    seconds: float = 0.0
    draft: bool = True

    @property
    def text(self) -> str:
        if not self.found:
            return NOTHING
        return "".join(f"{s.text}" + "".join(f"[{n}]" for n in s.sources) for s in self.sentences)

    def format(self) -> str:
        lines = [DRAFT_LABEL, self.text]
        if self.found:
            lines += ["", "関連資料:"]
            for i, h in enumerate(self.hits, 1):
                page = f" p.{h.page}" if h.page else ""
                lines.append(f"[{i}] {h.citation}{page}  {h.heading}")
        return "\n".join(lines)

    def as_json(self) -> dict:
        return {"question": self.question, "draft": True, "found": self.found, "text": self.text,
                "method": self.method, "model": self.model,
                "sentences": [{"text": s.text, "sources": s.sources} for s in self.sentences],
                "hits": [h.as_json() for h in self.hits]}


MIN_COVERAGE = 0.5           # share of the question's content words a passage must contain


def relevant(question: str, hits: list[Hit]) -> list[Hit]:
    """Hits named by the question's citation, containing most of its words, or very close in meaning."""
    q = set(prepare(question).terms)
    out = []
    for h in hits:
        cover = len(q & set(terms(h.heading + " " + h.text))) / len(q) if q else 0.0
        if h.jump or cover >= MIN_COVERAGE or (h.similarity is not None and h.similarity >= MIN_SIMILARITY):
            out.append(h)
    return out


def _prompt(question: str, hits: list[Hit]) -> list[dict]:
    docs = "\n\n".join(f"[{i}] {h.citation}\n{h.text[:PASSAGE_CHARS]}" for i, h in enumerate(hits, 1))
    return [{"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"資料:\n{docs}\n\n質問: {question}\n\n回答案（各文末に[番号]）:"}]


def _overlap(a: str, b: str) -> float:
    ta, tb = set(terms(a)), set(terms(b))
    return len(ta & tb) / len(ta) if ta else 0.0


def attribute(raw: str, hits: list[Hit]) -> list[Sentence]:
    """Split the model's text into sentences and keep each with a valid citation."""
    out: list[Sentence] = []
    raw = re.sub(r"\s+", " ", raw).strip()
    for piece in re.findall(r"[^。！？]+[。！？]?(?:\s*\[\d+\])*", raw):
        nums = [int(n) for n in re.findall(r"\[(\d+)\]", piece)]
        text = re.sub(r"\s*\[\d+\]\s*", "", piece).strip()
        text = re.sub(r"^(?:回答案|回答)[:：]\s*", "", text)
        if len(text) < 6:
            continue
        nums = sorted({n for n in nums if 1 <= n <= len(hits)})
        if not nums:
            best = max(range(len(hits)), key=lambda i: _overlap(text, hits[i].text))
            if _overlap(text, hits[best].text) < 0.5:
                continue                                     # not grounded in any hit: dropped
            nums = [best + 1]
        if not text.endswith(("。", "！", "？")):
            text += "。"
        if any(s.text == text for s in out):
            continue                                         # small models repeat themselves
        out.append(Sentence(text, nums))
    return out[:4]


def extractive(hits: list[Hit]) -> list[Sentence]:
    """Fallback without the LLM: the first sentence of the top hit's answer part."""
    t = hits[0].text
    m = re.search(r"[(（]答[)）]\s*(.+?。)", t)
    first = m.group(1) if m else re.split(r"(?<=。)", re.sub(r"^\S+\s", "", t, count=1))[0]
    return [Sentence(first.strip(), [1])]


def answer(ctx, question: str, *, top: int = 3, config=None, embedder=None, llm=None,
           max_tokens: int = 220) -> Answer:
    """Draft an answer to ``question`` from the manual index in ``ctx.local``; ``config`` defaults
    to ``ctx.config``."""
    t0 = time.perf_counter()
    config = config if config is not None else ctx.config
    hits = relevant(question, search(ctx.local, question, top=max(top, 1), embedder=embedder))
    if not hits:
        return Answer(question, found=False, seconds=time.perf_counter() - t0)
    use_llm = config is None or config["llm.enabled"]
    model_name = config["llm.model"] if config is not None else "llm-default"
    sentences: list[Sentence] = []
    method = "extractive"
    if use_llm:
        try:
            if llm is None:
                from ..models import load_llm
                threads = config["llm.threads"] if config is not None else 2
                llm = load_llm(model_name, config, n_ctx=2048, threads=threads)
            out = llm.create_chat_completion(messages=_prompt(question, hits), temperature=0.0,
                                             max_tokens=max_tokens, seed=0)
            sentences = attribute(out["choices"][0]["message"]["content"] or "", hits)
            method = "llm"
        except MadoguchiError:
            raise
        except Exception as e:  # the model failing must not hide the hits
            log.warning("answer draft by LLM failed: %s", e.__class__.__name__)
    if not sentences:
        sentences, method = extractive(hits), "extractive"
    return Answer(question, True, sentences, hits, method, model_name if method == "llm" else "",
                  time.perf_counter() - t0)
