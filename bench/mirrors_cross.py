"""Cross-renderer curve-mirror benchmark → docs/benchmarks.md (section "mirrors-cross").

Photos drawn by renderer B (:mod:`engine.mirrors.renderb`, a ray-cast 3-D renderer written apart from
the generator the model was trained on), held-out seeds from ``renderb.BENCH_SEED``, grades balanced,
varied sizes and one photo in ten a 12-MP phone-size JPEG (4000×3000). Each is diagnosed from its
file by :func:`engine.mirrors.diagnose.diagnose` — the function ``madoguchi mirror diagnose --json``
calls — with the shipped model. The ground truth is renderer B's own (its drawn defects graded by
the rule table), never adjusted to the model's answers.

Usage: .venv/bin/python bench/mirrors_cross.py [--n 500] [--no-write] [--photos DIR]
Run under ``flock /work/bench.lock`` (one benchmark at a time on the machine).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from engine.mirrors import renderb  # noqa: E402
from engine.mirrors.defects import DEFECTS, GRADES, label_ja  # noqa: E402
from engine.mirrors.diagnose import diagnose  # noqa: E402
from engine.mirrors.grading import load_table  # noqa: E402
from engine.mirrors.model import load_model  # noqa: E402

TWELVE_MP = (4000, 3000)
TWELVE_MP_RENDER = (1600, 1200)


def is_12mp(seed: int) -> bool:
    """One photo in ten (whole groups of four consecutive seeds, so the grades stay balanced)."""
    return (seed // 4) % 10 == 0


def photo_set(folder: Path, n: int, first: int = renderb.BENCH_SEED) -> list[Path]:
    """Renderer-B photos of seeds ``first``… (generated once into ``folder``, reused after)."""
    seeds = range(first, first + n)
    paths = []
    for s in seeds:
        p = folder / f"B{s:08d}.jpg"
        if not (p.is_file() and p.with_suffix(".json").is_file()):
            if is_12mp(s):
                renderb.write_dataset(folder, [s], size=TWELVE_MP_RENDER, upscale_to=TWELVE_MP)
            else:
                renderb.write_dataset(folder, [s])
        paths.append(p)
    return paths


def measure(paths: list[Path], model, table) -> dict:
    diagnose(paths[0], table=table, model=model)   # warm-up (model load)
    rows = []
    for p in paths:
        lab = json.loads(p.with_suffix(".json").read_text(encoding="utf-8"))
        t0 = time.perf_counter()
        insp = diagnose(p, table=table, model=model)
        rows.append((lab, insp, time.perf_counter() - t0))
    return {"rows": rows}


def figures(rows) -> dict:
    truth = np.array([GRADES.index(l["grade"]) for l, _, _ in rows])
    prov = np.array([GRADES.index(i.provisional_grade) if i.provisional_grade else -9 for _, i, _ in rows])
    review = np.array([bool(i.needs_review) or i.grade is None for _, i, _ in rows])
    strict = np.array([GRADES.index(i.grade) if i.grade else -9 for _, i, _ in rows])
    big = np.array([l["size"][0] * l["size"][1] >= 12_000_000 for l, _, _ in rows])
    secs = np.array([t for _, _, t in rows])
    judged = np.array([i.quality.ok for _, i, _ in rows])
    iv = truth == 3
    m = {
        "n": len(rows), "grade_dist": dict(Counter(GRADES[t] for t in truth)),
        "exact": float((prov == truth).mean()),
        "within1": float((np.abs(prov - truth) <= 1).mean()),
        "iv_recall": float((prov[iv] == 3).mean()) if iv.any() else float("nan"),
        "iv_precision": float((truth[prov == 3] == 3).mean()) if (prov == 3).any() else float("nan"),
        "iv_as_i_ii": int(((prov == 0) | (prov == 1))[iv].sum()), "iv_n": int(iv.sum()),
        "iv_no_grade": int((prov[iv] < 0).sum()),
        "review": float(review.mean()),
        "not_review_n": int((~review).sum()),
        "exact_not_review": float((strict[~review] == truth[~review]).mean()) if (~review).any() else float("nan"),
        "unjudgeable": float(np.mean([not i.quality.ok for _, i, _ in rows])),
        "safety_net": int(sum(i.safety_net for _, i, _ in rows)),
        "median_s": float(np.median(secs[~big])) if (~big).any() else float("nan"),
        "median_12mp_s": float(np.median(secs[big])) if big.any() else float("nan"),
        "n_12mp": int(big.sum()),
        "median_12mp_judged_s": float(np.median(secs[big & judged])) if (big & judged).any() else float("nan"),
        "n_12mp_judged": int((big & judged).sum()),
    }
    conf = np.zeros((4, 5), int)
    for t, p in zip(truth, prov):
        conf[t, p if p >= 0 else 4] += 1
    m["confusion"] = conf.tolist()
    m["per_grade_exact"] = {GRADES[g]: float((prov[truth == g] == g).mean()) for g in range(4) if (truth == g).any()}
    # the findings the model reports on sound (Ⅰ) photos: what it takes for a defect
    sound = Counter()
    for l, i, _ in rows:
        if l["grade"] == "Ⅰ":
            for f in i.findings:
                if not f.possible:
                    sound[f"{f.key} {f.severity}"] += 1
    m["sound_findings"] = sound.most_common(6)
    m["quality_reasons"] = Counter(r for _, i, _ in rows for r in i.quality.reasons).most_common()
    ok = judged & iv
    m["iv_recall_judged"] = float((prov[ok] == 3).mean()) if ok.any() else float("nan")
    per = {}
    for d in DEFECTS:
        tp = fp = fn = 0
        for l, i, _ in rows:
            t = l["defects"][d]
            pr = next((f.severity for f in i.findings if f.key == d and not f.possible), 0)
            tp += t > 0 and pr > 0
            fp += t == 0 and pr > 0
            fn += t > 0 and pr == 0
        if tp + fn:
            per[d] = (tp + fn, tp / (tp + fp) if tp + fp else float("nan"), tp / (tp + fn))
    m["per_defect"] = per
    return m


def report(m: dict, model, la: tuple, wall: float, render: float, n: int, first: int) -> str:
    floors = [("exact ≥ 80 %", m["exact"] >= 0.80), ("within one ≥ 97 %", m["within1"] >= 0.97),
              ("Ⅳ recall ≥ 97 %", m["iv_recall"] >= 0.97), ("Ⅳ precision ≥ 70 %", m["iv_precision"] >= 0.70),
              ("no true Ⅳ graded Ⅰ/Ⅱ", m["iv_as_i_ii"] == 0), ("要確認 ≤ 15 %", m["review"] <= 0.15),
              ("exact among not-要確認 ≥ 90 %", m["exact_not_review"] >= 0.90),
              ("12-MP median ≤ 0.5 s", m["median_12mp_s"] <= 0.5)]
    failed = [f for f, ok in floors if not ok]
    dist = ", ".join(f"{g} {m['grade_dist'].get(g, 0)}" for g in GRADES)
    lines = [
        "## Curve mirrors across renderers (renderer B, today's model)",
        "",
        f"**{n} photos drawn by renderer B** (`engine/mirrors/renderb.py`: ray-cast 3-D scenes — perspective camera "
        "at 1.0–1.8 m, 4–8 m away, a leaning or upright cylinder pole, round or square convex face reflecting the "
        "scene, façades, trees, utility poles, sun/overcast light, barrel distortion, vignetting, motion blur, "
        "HDR look, JPEG q55–95 sometimes twice; none of `synth.py`/`scenery.py`'s drawing code), seeds "
        f"{first}–{first + n - 1} (held out: never used while writing the renderer), "
        f"grades {dist}; sizes 800×600 to 1600×1200 (a third rendered at ≤ 1024 px and enlarged 1.25× or 1.56×) "
        f"and {m['n_12mp']} at 4000×3000 (12 MP). Each photo diagnosed from its file with `diagnose()` — what "
        f"`madoguchi mirror diagnose --json` runs — and the shipped model `{model.version if model else 'none'}`, "
        "which was trained on renderer A (`synth.py`) only. Ground truth: the defects renderer B drew, graded by "
        "the rule table (Ⅳ: face missing or shattered, pole leaning 15–24°; Ⅲ: cracks, heavy clouding, heavy "
        "pole rust, vegetation over 28–70 % of the face, lean 8.5–11.5°; Ⅱ: light dirt, haze, light rust, a "
        "branch over 11–19 %, lean 4–6.5°; Ⅰ: sound).",
        "",
        "| measure (A → B: trained on A, tested on B) | value | floor (issue 30) |",
        "|---|---|---|",
        f"| exact grade (provisional grade of 要確認 photos counted) | {m['exact']:.1%} | ≥ 80 % |",
        f"| within one grade | {m['within1']:.1%} | ≥ 97 % |",
        f"| Ⅳ recall ({m['iv_n']} true Ⅳ) | {m['iv_recall']:.1%} | ≥ 97 % |",
        f"| Ⅳ precision | {m['iv_precision']:.1%} | ≥ 70 % |",
        f"| true Ⅳ graded Ⅰ or Ⅱ | {m['iv_as_i_ii']} | 0 |",
        f"| sent to 要確認 (needs review or no grade) | {m['review']:.1%} | ≤ 15 % |",
        f"| exact among photos not sent to 要確認 ({m['not_review_n']}) | {m['exact_not_review']:.1%} | ≥ 90 % |",
        f"| rejected by the quality gate (reasons: "
        + ", ".join(f"{k} {v}" for k, v in m["quality_reasons"]) + f") | {m['unjudgeable']:.1%} | |",
        f"| Ⅳ recall among photos that passed the quality gate | {m['iv_recall_judged']:.1%} | |",
        f"| raised to Ⅳ by the safety net | {m['safety_net']} | |",
        f"| median time per photo, ≤ 1600×1200 ({n - m['n_12mp']}) | {m['median_s']:.3f} s | |",
        f"| median time per 12-MP photo ({m['n_12mp']}) | {m['median_12mp_s']:.3f} s | ≤ 0.5 s |",
        f"| median time per 12-MP photo that passed the quality gate ({m['n_12mp_judged']}; a rejected photo "
        f"stops before the CNN) | {m['median_12mp_judged_s']:.3f} s | |",
        "",
        ("**All floors met.**" if not failed else "**Floors NOT met: " + "; ".join(failed) + ".**")
        + " In-distribution (renderer A held-out styles, section above): exact 89.4 %, Ⅳ recall 99.25 %.",
        "",
        "Per true grade, exact: " + ", ".join(f"{g} {v:.0%}" for g, v in m["per_grade_exact"].items()) + ".",
        "",
        "Confusion (rows = true grade, columns = AI provisional grade; — = no grade / not judgeable):",
        "",
        "| true \\ AI | Ⅰ | Ⅱ | Ⅲ | Ⅳ | — |",
        "|---|---|---|---|---|---|",
    ]
    for t in range(4):
        lines.append(f"| {GRADES[t]} | " + " | ".join(str(v) for v in m["confusion"][t]) + " |")
    lines += ["", "Per drawn defect (present = severity ≥ 1):", "", "| defect | drawn | precision | recall |",
              "|---|---|---|---|"]
    for d, (cnt, pr, rc) in m["per_defect"].items():
        lines.append(f"| {d} ({label_ja(d)}) | {cnt} | {pr:.0%} | {rc:.0%} |")
    if m["sound_findings"]:
        lines += ["", "Findings reported on sound (Ⅰ) photos, most frequent (defect severity: photos): "
                  + ", ".join(f"`{k}`: {v}" for k, v in m["sound_findings"]) + "."]
    lines += ["", "Only one direction is measured in this slice (A → B, today's model). B → A and a model trained "
              "on both renderers come with issue 30 (b); the floors apply to those cross-renderer figures. Real "
              "photos are still not measured.",
              "", f"Benchmark wall time {wall:.0f} s, of which rendering the photos {render:.0f} s (0 when they were "
              "rendered beforehand into `--photos DIR`, outside the benchmark lock), on a shared 2-core machine; 1-minute load "
              f"average {la[0]:.1f} at the start and {la[1]:.1f} at the end (timings are noisy)."]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--first-seed", type=int, default=renderb.BENCH_SEED,
                    help="first seed (default: the held-out benchmark seeds; a development seed below "
                         "renderb.DEV_SEEDS_END for trial runs, never written to the doc)")
    ap.add_argument("--photos", metavar="DIR", help="keep the rendered photos here and reuse them")
    a = ap.parse_args()
    table = load_table()
    model = load_model()
    work = Path(tempfile.mkdtemp(prefix="mirrors-cross-"))
    folder = Path(a.photos) if a.photos else work
    folder.mkdir(parents=True, exist_ok=True)
    try:
        la0 = os.getloadavg()[0]
        t0 = time.time()
        paths = photo_set(folder, a.n, a.first_seed)
        render = time.time() - t0
        rows = measure(paths, model, table)["rows"]
        m = figures(rows)
        md = report(m, model, (la0, os.getloadavg()[0]), time.time() - t0, render, a.n, a.first_seed)
        from bench._report import publish
        publish("mirrors-cross", md, write=not a.no_write and a.first_seed >= renderb.BENCH_SEED)
        print(json.dumps({k: v for k, v in m.items() if k not in ("per_defect",)}, ensure_ascii=False, default=str))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
