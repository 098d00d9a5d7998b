"""The committed defect CNN: ONNX, small, runs without torch, metadata complete, detects severe
defects on scenes of styles never used in training; fine-tuning from the ledger's confirmed grades."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine.mirrors import synth
from engine.mirrors.diagnose import diagnose_array
from engine.mirrors.model import default_model_path, load_model

ROOT = Path(__file__).resolve().parent.parent


def test_model_is_committed_small_and_documented():
    p = default_model_path()
    assert p.is_file(), "resources/mirrors/mirror_cnn.onnx is missing (run `madoguchi mirror train`)"
    assert p.stat().st_size < 5_000_000
    meta = json.loads(p.with_suffix(".json").read_text(encoding="utf-8"))
    for k in ("seed", "trained_at", "heads", "validation", "train_samples", "styles"):
        assert k in meta
    assert not set(meta["styles"]) & set(synth.HELDOUT_STYLES)
    assert meta["validation"]["samples"] > 100
    # thresholds come from the validation split, and the Ⅳ safety net met its recall target there
    cal = meta["calibration"]
    assert cal["split"] == "validation" and cal["samples"] > 100
    assert set(meta["none_scale"]) == set(meta["heads"])
    assert set(meta["safety_net"]) == {"iv_finding", "iv_grade_head", "p_iv", "grade_from_distribution",
                                       "grade_head_weight"}
    assert meta["tta"] in ("none", "flip")
    assert [p["iv_recall_at_least"] for p in cal["operating_points"]] == sorted(
        p["iv_recall_at_least"] for p in cal["operating_points"])
    liks = meta["measure_likelihoods"]
    assert {k: v["measure"] for k, v in liks.items()} == {"bracket.deformation": "mirror_offset_pct",
                                                          "pole.bend": "pole_bend_pct"}
    for lik in liks.values():
        assert len(lik["p"]) == 4
        assert all(len(row) == len(lik["edges"]) + 1 and abs(sum(row) - 1) < 1e-3 for row in lik["p"])
    assert cal["after_safety_net"]["iv_recall"] >= cal["before_safety_net"]["iv_recall"]


def test_inference_needs_no_torch(tmp_path):
    photo = tmp_path / "KM-7001.jpg"
    photo.write_bytes(synth.encode_jpeg(synth.generate(990001, defects={"mirror.missing": 3}).image))
    code = (
        "import sys; sys.modules['torch'] = None\n"       # any `import torch` now fails
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from engine.mirrors.diagnose import diagnose\n"
        f"i = diagnose({str(photo)!r})\n"
        "assert i.model, 'no model used'\n"
        "print(i.grade, i.model)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "synthetic" in r.stdout or "office" in r.stdout


# Vegetation at severity 3 (> 50 % of the face hidden) usually hides the rim too: the quality gate
# then says "mirror not found", so the CNN is checked at severity 2 for it (and a partly hidden
# *square* face is not localised at all yet: round faces here).
@pytest.mark.parametrize("defect,sev,seed", [("mirror.missing", 3, 990101), ("mirror.clouding", 3, 990102),
                                             ("pole.rust", 3, 990103), ("view.vegetation", 2, 990104)])
def test_cnn_finds_severe_defects_on_unseen_styles(defect, sev, seed):
    model = load_model()
    hits = 0
    for k in range(3):
        sc = synth.generate(seed + 1000 * k, style=synth.HELDOUT_STYLES[k], defects={defect: sev}, distractor=0,
                            shape="round")
        insp = diagnose_array(sc.image, model=model)
        f = [x for x in insp.findings if x.key == defect and not x.possible]
        hits += bool(f) and f[0].severity >= sev - 1
    assert hits >= 2, f"{defect} severe found in {hits}/3 scenes"


def _prediction(**severe):
    """A CNN prediction: every head confident of 'none' except the given defects' P(severity 3)."""
    import numpy as np

    from engine.mirrors.defects import CNN_DEFECTS
    from engine.mirrors.model import Prediction
    probs = {}
    for k in CNN_DEFECTS:
        p3 = severe.get(k.replace(".", "_"), 0.0)
        probs[k] = np.array([0.97 - p3, 0.02, 0.01, p3])
    return Prediction(probs, np.array([0.7, 0.2, 0.08, 0.02]))


def test_safety_net_raises_a_possible_emergency_to_iv_for_review():
    from engine.mirrors import geometry
    from engine.mirrors.diagnose import judge, MirrorInspection
    from engine.mirrors.grading import load_table
    from engine.mirrors.intake import Quality
    table = load_table()
    g = geometry.analyse(synth.generate(990500, defects={}, distractor=0, shape="round").image)
    assert g.face is not None and g.pole is not None

    def run(pred, safety):
        insp = MirrorInspection("", "", None, None, True, [], Quality(True), g.size)
        judge(insp, g, pred, table, safety)
        return insp
    safety = {"iv_finding": 0.2, "iv_grade_head": 0.6}
    # a crack that is most likely absent, but 30 % likely to be a shattered face (Ⅳ)
    crack = _prediction(mirror_crack=0.3)
    assert run(crack, None).provisional_grade != "Ⅳ"
    net = run(crack, safety)
    assert net.provisional_grade == net.grade == "Ⅳ" and net.needs_review and net.safety_net
    assert "割れ" in net.reasons[-1] and "Ⅳ" in net.reasons[-1]
    # below the threshold nothing changes; a sound prediction is never raised
    assert not run(_prediction(mirror_crack=0.1), safety).safety_net
    assert run(_prediction(), safety).provisional_grade in ("Ⅰ", "Ⅱ")


def test_grade_distribution_follows_the_rule_table():
    """Certain severities give the rule table's grade; uncertain Ⅲ findings add up, three of them
    escalate to Ⅳ as the table says, and the Ⅳ safety net can act on that combined P(Ⅳ)."""
    import numpy as np

    from engine.mirrors import geometry
    from engine.mirrors.defects import DEFECTS, GRADES
    from engine.mirrors.diagnose import MirrorInspection, grade_distribution, judge
    from engine.mirrors.grading import grade_severities, load_table
    from engine.mirrors.intake import Quality
    table = load_table()
    rng = np.random.default_rng(5)
    for _ in range(200):
        sev = {d: 0 for d in DEFECTS}
        for d in rng.choice(DEFECTS, int(rng.integers(0, 5)), replace=False):
            sev[d] = int(rng.integers(1, 4))
        dist = grade_distribution({d: np.eye(4)[s] for d, s in sev.items()}, table)
        assert GRADES[int(dist.argmax())] == grade_severities(sev, table) and dist.max() > 0.999
    three = {d: np.eye(4)[0] for d in DEFECTS}
    for d in ("pole.rust", "mirror.clouding", "hood.damage"):      # each Ⅲ at severity 2
        three[d] = np.eye(4)[2]
    assert grade_distribution(three, table).argmax() == 3          # 3 × Ⅲ → Ⅳ (escalation)
    # three defects each 45 % likely at Ⅲ (each most likely absent, so no finding counts): P(all three)
    # = 9 % → the safety net on P(Ⅳ) at 0.08 acts, at 0.3 it does not
    g = geometry.analyse(synth.generate(990500, defects={}, distractor=0, shape="round").image)
    pred = _prediction()
    for k in ("pole.rust", "mirror.clouding", "hood.damage"):
        pred.probs[k] = np.array([0.55, 0.0, 0.45, 0.0])
    insp = MirrorInspection("", "", None, None, True, [], Quality(True), g.size)
    judge(insp, g, pred, table, {"p_iv": 0.3})
    assert 0.45 ** 3 <= insp.signals["p_iv"] < 0.2      # plus the small chances the other heads leave
    assert insp.provisional_grade != "Ⅳ" and not insp.safety_net
    insp = MirrorInspection("", "", None, None, True, [], Quality(True), g.size)
    judge(insp, g, pred, table, {"p_iv": 0.08})
    assert insp.provisional_grade == "Ⅳ" and insp.safety_net and insp.needs_review
    assert "Ⅲ相当の所見の重なり" in insp.reasons[-1]


def test_mirror_offset_from_the_pole_weighs_in_on_the_bracket():
    """A mirror hanging off the pole's line (bent bracket) is measured, and the model's likelihood
    table moves the bracket-deformation probability with it; a bent pole's bend is measured."""
    import numpy as np

    from engine.mirrors import geometry
    from engine.mirrors.diagnose import MirrorInspection, judge
    from engine.mirrors.grading import load_table
    from engine.mirrors.intake import Quality
    offs, median_geom = {}, {}
    for s in (0, 3):
        vals = []
        for k in range(3):
            g = geometry.analyse(synth.generate(990700 + k, style="road", defects={"bracket.deformation": s},
                                                distractor=0, shape="round").image)
            v = geometry.mirror_offset_pct(g.face, g.pole)
            if v is not None:
                vals.append((v, g))
        vals.sort(key=lambda t: t[0])
        offs[s], median_geom[s] = vals[len(vals) // 2]
    assert offs[0] < 10 < 18 < offs[3], offs
    table = load_table()
    lik = load_model().meta["measure_likelihoods"]
    g = median_geom[3]   # the typical badly bent bracket of the three
    pred = _prediction()
    pred.probs["bracket.deformation"] = np.array([0.5, 0.2, 0.15, 0.15])
    insp = MirrorInspection("", "", None, None, True, [], Quality(True), g.size)
    judge(insp, g, pred, table, None, likelihoods=lik)
    f = next(f for f in insp.findings if f.key == "bracket.deformation")
    assert f.source == "cnn+geometry" and f.severity == 3 and not f.possible
    # the pole's bend is measured too (traced centre line vs its chord, % of the length)
    bends = [geometry.analyse(synth.generate(990750 + k, style="road", defects={"pole.bend": 3}, distractor=0,
                                             shape="round").image).pole for k in range(3)]
    assert sum(p is not None and p.bend_pct > 5 for p in bends) >= 2, [p and p.bend_pct for p in bends]


def test_a_pole_line_passing_beside_the_mirror_does_not_make_an_emergency_by_itself():
    """A line found 20° off vertical whose axis passes far beside the mirror is likely not the mirror's
    own pole: its tilt is a possible finding for review, not a Ⅳ; the same tilt on a pole that holds
    the mirror is an emergency."""
    from engine.mirrors import geometry
    from engine.mirrors.diagnose import MirrorInspection, judge
    from engine.mirrors.grading import load_table
    from engine.mirrors.intake import Quality
    from engine.mirrors.train import _geometry_from_measures
    table = load_table()

    def run(offset_pct):
        # measures: deformation 0.5 %, whole outline, |tilt| 20°, bend 0.5 %, (true tilt unused), offset
        g = _geometry_from_measures([0.5, 1.0, 20.0, 0.5, -1.0, offset_pct])
        assert abs(geometry.mirror_offset_pct(g.face, g.pole) - offset_pct) < 0.5
        insp = MirrorInspection("", "", None, None, True, [], Quality(True), g.size)
        judge(insp, g, None, table)
        return insp, next(f for f in insp.findings if f.key == "pole.tilt")
    held, tilt = run(3.0)
    assert held.provisional_grade == "Ⅳ" and tilt.severity == 3 and not tilt.possible
    beside, tilt = run(60.0)
    assert beside.provisional_grade != "Ⅳ" and tilt.possible and beside.needs_review


@pytest.mark.parametrize("defect", ["mirror.crack", "pole.bend", "bracket.deformation", "pole.dent",
                                    "pole.rust", "mirror.deformation"])
def test_emergencies_on_unseen_styles_are_graded_iv(defect):
    """Severity 3 of each defect the table grades Ⅳ, on held-out styles: the photo must come out Ⅳ
    (by the rules or by the safety net) in at least 2 of 3 scenes."""
    model = load_model()
    hits = []
    for k in range(3):
        sc = synth.generate(990600 + 100 * k + len(defect), style=synth.HELDOUT_STYLES[k], defects={defect: 3},
                            distractor=0, shape="round")
        insp = diagnose_array(sc.image, model=model)
        hits.append(insp.provisional_grade)
    assert hits.count("Ⅳ") >= 2, f"{defect} severity 3 graded {hits}"


def test_sound_mirror_gets_no_severe_findings():
    model = load_model()
    for k in range(3):
        sc = synth.generate(990200 + k, style=synth.HELDOUT_STYLES[k], defects={}, distractor=0)
        insp = diagnose_array(sc.image, model=model)
        assert insp.provisional_grade in ("Ⅰ", "Ⅱ"), [(f.key, f.severity, f.confidence) for f in insp.findings]


@pytest.mark.slow
def test_train_from_ledger(ctx, tmp_path):
    pytest.importorskip("torch")
    from engine.mirrors import ledger, train
    d = tmp_path / "photos"
    d.mkdir()
    for i in range(6):
        sc = synth.generate(990300 + i, size=(640, 480), defects={"pole.tilt": 3} if i % 2 else {})
        (d / f"KM-{5000 + i}.jpg").write_bytes(synth.encode_jpeg(sc.image))
    from engine import users
    kensa = users.add_user(ctx.store, users.add_user(ctx.store, None, "kanri", "管理", "admin", "password-1"),
                           "kensa", "点検", "inspector", "password-2")
    list(ledger.import_folder(ctx, d, user=kensa))
    rows = ledger.list_inspections(ctx)
    for r in rows:
        g = r["ai_grade"] or "Ⅱ"
        ledger.confirm(ctx, r["id"], g, user=kensa, reason="" if r["ai_grade"] else "")
    with pytest.raises(Exception, match="confirmed"):
        train.train_from_ledger(ctx, min_photos=50, synthetic_mix=8, epochs=1)
    out = train.train_from_ledger(ctx, minutes=1, min_photos=4, synthetic_mix=32, epochs=1)
    assert out == Path(ctx.data_dir) / "mirrors" / "mirror_cnn.onnx"
    meta = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
    assert meta["training"] == "ledger" and meta["office_photos"] == 6
    assert default_model_path(ctx.data_dir) == out
    m = load_model(out)
    insp = diagnose_array(synth.generate(990400).image, model=m)
    assert insp.model.startswith("office-")
