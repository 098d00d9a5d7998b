"""Records benchmark on the older evaluation set (resources/eval/records/case_*.json, template-built
dialogues): figures written into docs/benchmarks.md, section ``records-legacy``. The fact-level
benchmark on the hand-written dev/test consultations is bench/records.py.

Figures: time from 停止 to complete draft (incremental on: the session is replayed at its own
pace — or ``--speed`` times faster — while the drafter runs; off: the whole draft after 停止),
share of statements with valid evidence, numbers in unflagged statements found in the transcript,
planted contradictions flagged, section coverage against the hand-written reference records,
prompt/generation tokens per second and peak RAM, for ``llm-default`` and the 0.5B ``llm-small``.
Each model runs in its own process so peak RAM is its own.

    .venv/bin/python bench/records_legacy.py                 # everything (long: tens of minutes)
    .venv/bin/python bench/records_legacy.py --limit 3 --incremental-cases 1
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench._report import publish  # noqa: E402
EVAL = ROOT / "resources" / "eval" / "records"


CASE_FILTER: list[str] = []


def cases(limit: int | None = None) -> list[Path]:
    cs = sorted(p for p in EVAL.glob("case_*.json") if not p.name.endswith(".ref.json"))
    if CASE_FILTER:
        cs = [p for p in cs if any(p.stem.startswith(c) for c in CASE_FILTER)]
    return cs[:limit] if limit is not None else cs


def fact_present(terms: list[str], statements: list[str]) -> bool:
    from engine.records.checks import normalize, numbers
    for st in statements:
        ok = True
        for t in terms:
            nums = numbers(t)
            if nums:
                ok &= nums <= numbers(st)
            else:
                ok &= normalize(t) in normalize(st)
        if ok:
            return True
    return False


def score(d, ref: dict) -> dict:
    from engine.records.checks import numbers
    by = {g.seq: g for g in d.segments}
    all_nums = numbers(" ".join(g.text for g in d.segments))
    sts = list(d.statements())
    valid = sum(1 for _s, st in sts if st.evidence and all(e in by for e in st.evidence))
    unflagged = [st for _s, st in sts if not st.needs_review]
    num_ok = sum(1 for st in unflagged if numbers(st.text) <= numbers(" ".join(by[e].text for e in st.evidence)))
    invented = [st for _s, st in sts if numbers(st.text) - all_nums]
    invented_flagged = sum(1 for st in invented if st.needs_review)
    traps_ok = []
    for trap in ref["traps"]:
        sec = d.section(trap["section"])
        tempted = [st for st in sec.statements if trap["topic"] in st.text and numbers(st.text) - all_nums]
        traps_ok.append(all(st.needs_review for st in tempted))
    cov = {}
    for key, facts in ref["sections"].items():
        texts = [st.text for st in d.section(key).statements]
        cov[key] = (sum(fact_present(f, texts) for f in facts), len(facts))
    return {"statements": len(sts), "valid_evidence": valid, "unflagged": len(unflagged),
            "unflagged_numbers_ok": num_ok, "invented_numbers": len(invented),
            "invented_flagged": invented_flagged, "traps": len(traps_ok), "traps_flagged": sum(traps_ok),
            "coverage": cov, "flagged": len(d.flagged()),
            "compliance": sorted({f.code for f in d.flags})}


def run_worker(model: str, limit: int | None, inc_cases: int, speed: float, threads: int,
               skip_batch: bool = False) -> dict:
    from engine.config import load
    from engine.records import draft, template
    from bench.records import replay
    cfg = load({"data_dir": "/tmp/madoguchi-bench-records"})
    cfg.values["llm.threads"] = threads
    tpl = template.load("seikatsu_hogo")
    out = {"model": model, "batch": [], "incremental": []}
    for p in ([] if skip_batch else cases(limit)):
        ref = json.loads(p.with_suffix(".ref.json").read_text(encoding="utf-8"))
        segs = draft.segments_from_file(p)
        if model == "extractive":
            t0 = time.perf_counter()
            d = draft.draft(segs, tpl, cfg, use_llm=False)
            out["batch"].append({"case": p.stem, "seconds": time.perf_counter() - t0, **score(d, ref)})
            continue
        t0 = time.perf_counter()
        d = draft.draft(segs, tpl, cfg, model=model)
        out["batch"].append({"case": p.stem, "seconds": time.perf_counter() - t0, "stats": d.stats,
                             "minutes": segs[-1].end / 60, **score(d, ref)})
        print(f"{model} {p.stem}: {out['batch'][-1]['seconds']:.0f} s", file=sys.stderr, flush=True)
        print(json.dumps({"partial": out["batch"][-1]}), file=sys.stderr, flush=True)
    for p in (cases(inc_cases) if model != "extractive" else []):
        ref = json.loads(p.with_suffix(".ref.json").read_text(encoding="utf-8"))
        segs = draft.segments_from_file(p)
        inc = draft.IncrementalDrafter(tpl, cfg, model=model)
        replay(inc, segs, speed)
        pending = inc.undrafted
        t0 = time.perf_counter()
        d = inc.finish()
        out["incremental"].append({"case": p.stem, "stop_to_draft_s": time.perf_counter() - t0, "stats": d.stats,
                                   "llm_statements": sum(st.source == "llm" for _s, st in d.statements()),
                                   "quoted_statements": sum(st.source == "extractive" for _s, st in d.statements()),
                                   "pending_at_stop": pending, "speed": speed, "minutes": segs[-1].end / 60,
                                   **score(d, ref)})
        print(f"{model} incremental {p.stem}: {out['incremental'][-1]['stop_to_draft_s']:.1f} s after stop",
              file=sys.stderr, flush=True)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def pct(a: int, b: int) -> str:
    return f"{100 * a / b:.0f} % ({a}/{b})" if b else "n/a"


def report(results: list[dict], args) -> str:
    from engine.records.template import load
    tpl = load("seikatsu_hogo")
    lines = [f"Evaluation set: {len(cases())} transcripts in `resources/eval/records/` (5–11 min each, "
             f"hand-written reference records, 3 planted contradictions, 2 obstruction cases, 1 without "
             f"申請意思). Template `seikatsu_hogo`; LLM threads {args.threads}; the cases column says how many "
             "transcripts each model drafted. The machine was shared with other jobs while measuring: times are "
             "upper bounds.", ""]
    lines += ["| model | cases | median draft after 停止, incremental off | median 停止→draft, incremental on "
              "| valid evidence | numbers in unflagged statements match | invented numbers flagged "
              "| planted traps flagged | prompt tok/s | gen tok/s | peak RAM |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        inc = r["incremental"]
        b = r["batch"] or inc        # incremental-only runs: quality figures from the incremental drafts
        if not b:
            continue
        st = sum(x["statements"] for x in b)
        ve = sum(x["valid_evidence"] for x in b)
        un = sum(x["unflagged"] for x in b)
        no = sum(x["unflagged_numbers_ok"] for x in b)
        inv = sum(x["invented_numbers"] for x in b)
        invf = sum(x["invented_flagged"] for x in b)
        tr = sum(x["traps"] for x in b)
        trf = sum(x["traps_flagged"] for x in b)
        med = statistics.median(x["seconds"] for x in r["batch"]) if r["batch"] else float("nan")
        inc_s = (f"{statistics.median(x['stop_to_draft_s'] for x in inc):.1f} s "
                 f"(n={len(inc)}, replay ×{inc[0]['speed']:g})") if inc else "—"
        pms = sum(x.get("stats", {}).get("prompt_ms", 0) for x in b)
        gms = sum(x.get("stats", {}).get("gen_ms", 0) for x in b)
        ptk = sum(x.get("stats", {}).get("prompt_tokens", 0) for x in b)
        gtk = sum(x.get("stats", {}).get("completion_tokens", 0) for x in b)
        med_s = f"{med:.1f} s" if r["batch"] else "—"
        lines.append(f"| {r['model']} | {len(b)} | {med_s} | {inc_s} | {pct(ve, st)} | {pct(no, un)} | "
                     f"{pct(invf, inv)} | {pct(trf, tr)} | {ptk / (pms / 1000):.0f} | "
                     f"{gtk / (gms / 1000):.1f} | {r['peak_rss_mb']:.0f} MB |" if pms else
                     f"| {r['model']} | {len(b)} | {med:.2f} s | — | {pct(ve, st)} | {pct(no, un)} | "
                     f"{pct(invf, inv)} | {pct(trf, tr)} | — | — | {r['peak_rss_mb']:.0f} MB |")
    incs = [(r["model"], x) for r in results for x in r["incremental"]]
    if incs:
        lines += ["", "Incremental runs (the session replayed at its own pace while the drafter works in the "
                  "background at low priority (nice +10, both threads); after 停止 the rest is drafted with all threads "
                  "within `records.finish_budget`, lines not reached are quoted as labelled extracts):", "",
                  "| model | case | minutes | 停止→draft | lines not drafted at 停止 | section calls after 停止: "
                  "model / quoted | statements: model / quoted | LLM busy during the session |",
                  "|---|---|---|---|---|---|---|---|"]
        for model, x in incs:
            st = x.get("stats", {})
            fin, ext = st.get("finish_tasks", 0), st.get("finish_tasks_extractive", 0)
            busy = st.get("wall_s", 0) / (x["minutes"] * 60) if x.get("minutes") else 0
            lines.append(f"| {model} | {x['case']} | {x['minutes']:.1f} | {x['stop_to_draft_s']:.1f} s | "
                         f"{x['pending_at_stop']} | {fin - ext} / {ext} | "
                         f"{x.get('llm_statements', '?')} / {x.get('quoted_statements', '?')} | {100 * busy:.0f} % |")
    lines += ["", "Section coverage (share of reference facts present in the section's statements):", "",
              "| section | " + " | ".join(r["model"] for r in results if r["batch"] or r["incremental"]) + " |",
              "|---|" + "---|" * len([r for r in results if r["batch"] or r["incremental"]])]
    for s in tpl.sections:
        row = [s.title]
        for r in results:
            rb = r["batch"] or r["incremental"]
            if not rb:
                continue
            got = sum(x["coverage"].get(s.key, (0, 0))[0] for x in rb)
            tot = sum(x["coverage"].get(s.key, (0, 0))[1] for x in rb)
            row.append(pct(got, tot) if tot else "—")
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "The extractive column is the no-LLM fallback (transcript lines under each heading): it "
              "quotes, so its numbers always match; it is the floor an LLM draft must beat."]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="extractive,llm-default,llm-small")
    ap.add_argument("--limit", type=int, default=None, help="cases per model (default: all)")
    ap.add_argument("--incremental-cases", type=int, default=1)
    ap.add_argument("--speed", type=float, default=1.0, help="replay speed of the live session")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--worker", default=None)
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--cases", default="", help="comma-separated case name prefixes (default: all)")
    ap.add_argument("--skip-batch", action="store_true", help="incremental figures only")
    ap.add_argument("--combine", nargs="*", default=None, help="worker JSON outputs to report on")
    ap.add_argument("--note", default="", help="a paragraph added under the figures (conditions of the run)")
    args = ap.parse_args()
    CASE_FILTER[:] = [c for c in args.cases.split(",") if c]
    if args.combine:   # report from worker outputs saved earlier (workers run separately / in parallel)
        results = [json.loads(Path(f).read_text().strip().splitlines()[-1]) for f in args.combine]
        publish("records-legacy", report(results, args) + ("\n\n" + args.note if args.note else ""),
                write=not args.no_write)
        return 0
    if args.worker:
        print(json.dumps(run_worker(args.worker, args.limit, args.incremental_cases, args.speed, args.threads,
                                    args.skip_batch)))
        return 0
    results = []
    for m in args.models.split(","):
        cmd = [sys.executable, __file__, "--worker", m, "--incremental-cases", str(args.incremental_cases),
               "--speed", str(args.speed), "--threads", str(args.threads), "--cases", args.cases]
        if args.skip_batch:
            cmd.append("--skip-batch")
        if args.limit:
            cmd += ["--limit", str(args.limit)]
        p = subprocess.run(cmd, capture_output=True, text=True)
        sys.stderr.write(p.stderr[-3000:])
        if p.returncode != 0:
            print(f"{m}: failed", file=sys.stderr)
            continue
        results.append(json.loads(p.stdout.strip().splitlines()[-1]))
    publish("records-legacy", report(results, args), write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
