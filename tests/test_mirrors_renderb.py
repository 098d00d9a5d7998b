"""Renderer B (engine/mirrors/renderb.py): deterministic, every grade drawable, ground truth follows
what is drawn, and its photos go through `madoguchi mirror diagnose --json` (contract, not accuracy)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.mirrors import renderb
from engine.mirrors.defects import DEFECTS, GRADES
from engine.mirrors.grading import grade_severities, load_table

SMALL = (320, 240)
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def table():
    return load_table()


def _face_box(lab):
    x0, y0, x1, y1 = (int(round(v)) for v in lab["mirror"]["box"])
    return slice(y0, y1 + 1), slice(x0, x1 + 1)


def test_renderer_b_is_deterministic_by_seed():
    a, b = renderb.generate(11, size=SMALL), renderb.generate(11, size=SMALL)
    assert np.array_equal(a.image, b.image) and a.labels == b.labels
    c = renderb.generate(12, size=SMALL)
    assert not np.array_equal(a.image, c.image)
    assert a.image.shape == (240, 320, 3) and a.image.dtype == np.uint8
    assert a.labels["renderer"] == "B" and set(a.labels["defects"]) == set(DEFECTS)


def test_grades_are_balanced_by_seed_and_the_label_follows_the_rule_table(table):
    labs = [renderb.generate(s, size=SMALL).labels for s in range(100, 108)]
    assert [lab["target_grade"] for lab in labs] == GRADES * 2
    for lab in labs:
        assert lab["grade"] == grade_severities(lab["defects"], table)
        assert lab["grade"] == lab["target_grade"], lab


@pytest.mark.parametrize("grade", GRADES[1:])
def test_every_defect_of_every_grade_is_drawable(grade, table):
    for i, (key, sev) in enumerate(renderb.GRADE_DEFECTS[grade]):
        lab = renderb.generate(300 + i, size=SMALL, defects={key: sev}).labels
        assert lab["defects"][key] == sev, (key, sev, lab)
        assert lab["grade"] == grade == grade_severities(lab["defects"], table), (key, sev)
        assert lab["face_px"] > 0 and lab["pole_px"] > 0


def test_a_sound_mirror_is_grade_one_and_upright():
    lab = renderb.generate(21, size=SMALL, defects={}).labels
    assert lab["grade"] == "Ⅰ" and not any(lab["defects"].values())
    assert lab["pole"]["tilt_deg"] < 1.5


def test_a_missing_face_is_drawn_and_graded_four():
    sound = renderb.generate(31, size=(640, 480), defects={})
    gone = renderb.generate(31, size=(640, 480), defects={"mirror.missing": 3})
    assert gone.labels["grade"] == "Ⅳ" and sound.labels["grade"] == "Ⅰ"
    # same camera and scene, only the face differs: the backing plate is much darker than the mirror
    assert gone.labels["camera"] == sound.labels["camera"]
    box = _face_box(sound.labels)
    assert gone.image[box].mean() < sound.image[box].mean() - 20
    rest = np.ones(sound.image.shape[:2], bool)
    rest[box] = False
    assert np.abs(gone.image[rest].astype(int) - sound.image[rest].astype(int)).mean() < 3


def test_drawn_measures_match_the_severities():
    lean = renderb.generate(41, size=SMALL, defects={"pole.tilt": 3}).labels
    assert lean["pole"]["tilt_deg"] >= 15 and lean["grade"] == "Ⅳ"
    veg = renderb.generate(42, size=(640, 480), defects={"view.vegetation": 2}).labels
    assert 0.25 <= veg["vegetation_coverage"] and veg["defects"]["view.vegetation"] >= 2
    rust = renderb.generate(43, size=SMALL, defects={"pole.rust": 2}).labels
    assert 0.25 <= rust["pole_rust_coverage"] <= 0.40 and rust["grade"] == "Ⅲ"


def test_write_dataset_12mp_and_labels(tmp_path):
    (p,) = renderb.write_dataset(tmp_path, [renderb.BENCH_SEED - 1], size=(400, 300), upscale_to=(1200, 900))
    from PIL import Image
    with Image.open(p) as im:
        assert im.size == (1200, 900) and im.format == "JPEG"
    lab = json.loads(p.with_suffix(".json").read_text(encoding="utf-8"))
    assert lab["size"] == [1200, 900] and lab["grade"] in GRADES
    assert lab["mirror"]["box"][2] <= 1200


def test_renderer_b_photos_through_mirror_diagnose_json(tmp_path, capsys):
    """The CLI contract on renderer-B photos (shape only; accuracy is bench/mirrors_cross.py's job)."""
    from engine.cli import main
    paths = renderb.write_dataset(tmp_path / "photos", range(500, 503), size=(640, 480))
    rc = main(["--data-dir", str(tmp_path / "data"), "mirror", "diagnose", *map(str, paths), "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert isinstance(out, list) and len(out) == 3
    for o, p in zip(out, paths):
        assert {"grade", "findings", "quality", "photo", "sha256", "provisional_grade", "needs_review",
                "reasons", "size", "model"} <= set(o)
        assert o["photo"] == str(p) and o["size"] == [640, 480]
        assert o["grade"] in (*GRADES, None) and isinstance(o["needs_review"], bool)
        assert {"ok", "reasons", "messages"} <= set(o["quality"])
        for f in o["findings"]:
            assert {"member", "defect", "severity", "confidence", "box", "label_ja"} <= set(f)
            assert f"{f['member']}.{f['defect']}" in DEFECTS and f["severity"] in (1, 2, 3)
            assert 0 <= f["confidence"] <= 1


@pytest.mark.slow
def test_cross_benchmark_runs_on_development_seeds(tmp_path):
    """bench/mirrors_cross.py end to end on a few development seeds (never writes the doc)."""
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "mirrors_cross.py"), "--n", "8", "--first-seed", "600",
                        "--no-write", "--photos", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    m = json.loads(r.stdout.strip().splitlines()[-1])
    assert m["n"] == 8 and sum(map(sum, m["confusion"])) == 8
    assert m["grade_dist"] == {g: 2 for g in GRADES}
    assert 0 <= m["exact"] <= m["within1"] <= 1
