"""One photo → :class:`MirrorInspection`: intake, quality gate, geometry, CNN, grading.

``diagnose(path)`` is what the CLI, the ledger import and the desktop call. Geometry measures
pole tilt and face deformation; the CNN (when ``resources/mirrors/mirror_cnn.onnx`` exists)
judges every other defect and also votes on deformation. Each finding carries the grade-consistent
confidence; a finding below the table's ``min_confidence`` makes the photo *needs review*, and a
photo that would be Ⅰ with any uncertainty gets no grade (要確認).
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from . import geometry as geo
from .defects import CNN_DEFECTS, DEFECTS, GRADES, label_ja
from .grading import GradingTable, grade_findings, load_table
from .intake import Photo, Quality, check_quality, load_photo

# Measurement noise (1 σ) of the geometry, from the synthetic benchmark: used to turn a measured
# value into class probabilities around the table's thresholds.
TILT_SIGMA_DEG = 1.2
DEFORM_SIGMA_PCT = 0.9
# Weight of the deformation measure when the face's outline was fitted from a broken rim (RANSAC):
# vegetation or a torn rim makes the residual large on a sound face.
PARTIAL_OUTLINE_WEIGHT = 0.5
# A pole whose axis, extended up, passes far beside the mirror (offset in % of the face radius) is
# probably not the mirror's own pole (a lamp post, a tree, a bowed pole's chord): its tilt counts
# only with this weight, the rest going to "no tilt" — the finding becomes a possible one (要確認).
TILT_OFFSET_SUSPECT_PCT = 30.0
TILT_SUSPECT_WEIGHT = 0.35


@dataclass
class Finding:
    member: str
    defect: str
    severity: int                    # 1 軽度, 2 中度, 3 重度
    confidence: float                # probability that the grade this finding implies is right
    box: list[float] | None          # [x0, y0, x1, y1] in photo pixels
    source: str = "cnn"              # "cnn" | "geometry" | "cnn+geometry"
    uncertain: bool = False
    possible: bool = False           # most likely absent but too probable to ignore (review only)
    measure: float | None = None     # tilt in degrees / deformation in %

    @property
    def key(self) -> str:
        return f"{self.member}.{self.defect}"

    @property
    def label_ja(self) -> str:
        return label_ja(self.key)

    def to_json(self) -> dict:
        d = {"member": self.member, "defect": self.defect, "severity": self.severity,
             "confidence": round(float(self.confidence), 3),
             "box": [round(float(v), 1) for v in self.box] if self.box else None,
             "label_ja": self.label_ja, "source": self.source, "uncertain": self.uncertain,
             "possible": self.possible}
        if self.measure is not None:
            d["measure"] = round(float(self.measure), 2)
        return d


@dataclass
class MirrorInspection:
    path: str
    sha256: str
    grade: str | None                # Ⅰ–Ⅳ, or None = 要確認 / not judgeable
    provisional_grade: str | None
    needs_review: bool
    findings: list[Finding]
    quality: Quality
    size: tuple[int, int] = (0, 0)
    taken_at: str | None = None
    gps: tuple[float, float] | None = None
    mirrors: list[dict] = field(default_factory=list)   # face boxes, shape, deformation
    pole: dict | None = None                            # box, top, base, tilt
    reasons: list[str] = field(default_factory=list)    # Japanese
    model: str | None = None
    elapsed_s: float = 0.0
    signals: dict = field(default_factory=dict)         # Ⅳ evidence (see :func:`iv_evidence`)
    safety_net: bool = False                            # graded Ⅳ by the safety net, not by the rules

    def to_json(self) -> dict:
        return {"grade": self.grade, "findings": [f.to_json() for f in self.findings],
                "quality": self.quality.to_json(), "photo": self.path, "sha256": self.sha256,
                "provisional_grade": self.provisional_grade, "needs_review": self.needs_review,
                "reasons": self.reasons, "taken_at": self.taken_at,
                "gps": list(self.gps) if self.gps else None, "size": list(self.size),
                "mirrors": self.mirrors, "pole": self.pole, "model": self.model,
                "safety_net": self.safety_net,
                "signals": {k: (round(v, 3) if isinstance(v, float) else v) for k, v in self.signals.items()},
                "elapsed_s": round(self.elapsed_s, 3)}


def _phi(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def measure_probs(value: float, thresholds: list[float], sigma: float) -> np.ndarray:
    """P(severity = k | measured value) with Gaussian measurement noise."""
    cdf = [_phi((value - t) / sigma) for t in thresholds]   # P(true ≥ t_k)
    p = np.array([1 - cdf[0], cdf[0] - cdf[1], cdf[1] - cdf[2], cdf[2]], np.float64)
    return np.clip(p, 1e-6, 1)


def _finding_from_probs(key: str, p: np.ndarray, table: GradingTable, box, source: str,
                        measure: float | None = None) -> Finding | None:
    p = np.asarray(p, np.float64)
    p = p / p.sum()
    member, defect = key.split(".", 1)
    p_any = 1 - p[0]
    if p_any < table.possible_low:
        return None
    sev = int(np.argmax(p[1:]) + 1)
    if p[0] >= p_any:   # most likely absent, but not certainly: report as a possible finding
        return Finding(member, defect, sev, float(p_any), box, source, uncertain=True, possible=True,
                       measure=measure)
    if np.argmax(p) != 0:
        sev = int(np.argmax(p))
    g = table.grade_of(key, sev)
    conf = float(sum(p[k] for k in range(1, 4) if table.grade_of(key, k) == g))
    return Finding(member, defect, sev, conf, box, source, uncertain=conf < table.min_confidence,
                   measure=measure)


def _member_box(member: str, face: geo.MirrorFace | None, pole: geo.Pole | None, scale: float):
    if face is None:
        return None
    x0, y0, x1, y1 = face.box
    cx, cy = face.center
    r = face.radius
    if member == "mirror":
        b = [x0, y0, x1, y1]
    elif member == "hood":
        b = [x0 - 0.05 * r, y0 - 0.2 * r, x1 + 0.05 * r, cy - 0.2 * r]
    elif member == "view":
        b = [x0 - 0.3 * r, y0 - 0.3 * r, x1 + 0.3 * r, y1 + 0.3 * r]
    elif member == "bracket":
        fx = pole.top[0] if pole else cx
        b = [fx - 0.6 * r, y1 - 0.25 * r, fx + 0.6 * r, y1 + 0.45 * r]
    else:   # pole
        b = list(pole.box) if pole else [cx - 0.5 * r, y1, cx + 0.5 * r, y1 + 4 * r]
    return [v * scale for v in b]


def diagnose_photo(photo: Photo, table: GradingTable | None = None, model="default") -> MirrorInspection:
    """Diagnose an already-loaded photo. ``model``: a :class:`model.MirrorModel`, ``"default"``
    (the shipped/office model if present) or None (geometry only)."""
    t0 = time.perf_counter()
    table = table or load_table()
    if model == "default":
        from .model import load_model
        model = load_model()
    g = geo.analyse(photo.rgb)
    q = check_quality(g.work, g)
    s = photo.scale
    mirrors = [{"box": [round(v * s, 1) for v in f.box], "shape": f.shape, "method": f.method,
                "center": [round(f.center[0] * s, 1), round(f.center[1] * s, 1)],
                "axes": [round(f.axes[0] * s, 1), round(f.axes[1] * s, 1)], "angle": round(f.angle, 1),
                "deformation_pct": round(f.deformation_pct, 2),
                "outline": [[round(x * s, 1), round(y * s, 1)] for x, y in f.outline[::max(1, len(f.outline) // 72)]]}
               for f in g.faces]
    pole = None
    if g.pole is not None:
        pole = {"box": [round(v * s, 1) for v in g.pole.box], "top": [round(v * s, 1) for v in g.pole.top],
                "base": [round(v * s, 1) for v in g.pole.base], "tilt_deg": round(g.pole.tilt_deg, 2)}
    insp = MirrorInspection(str(photo.path), photo.sha256, None, None, True, [], q, photo.size,
                            photo.taken_at, photo.gps, mirrors, pole,
                            model=(model.version if model is not None else None))
    if not q.ok:
        insp.reasons = ["写真の品質のため判定できません: " + "・".join(q.messages)]
        insp.elapsed_s = time.perf_counter() - t0
        return insp

    pred = model.predict(g) if model is not None else None
    safety = model.meta.get("safety_net") if model is not None else None
    judge(insp, g, pred, table, safety, photo_scale=s,
          likelihoods=model.meta.get("measure_likelihoods") if model is not None else None)
    insp.elapsed_s = time.perf_counter() - t0
    return insp


def iv_evidence(probs: dict[str, np.ndarray], table: GradingTable) -> tuple[float, str | None]:
    """Largest probability, over all defects, of a severity that the table grades Ⅳ, and its defect."""
    best, key = 0.0, None
    for k, p in probs.items():
        p = np.asarray(p, np.float64)
        p = p / p.sum()
        v = float(sum(p[sev] for sev in (1, 2, 3) if table.grade_of(k, sev) == "Ⅳ"))
        if v > best:
            best, key = v, k
    return best, key


def grade_distribution(probs: dict[str, np.ndarray], table: GradingTable) -> np.ndarray:
    """P(photo grade = Ⅰ, Ⅱ, Ⅲ, Ⅳ) by the table's rules when each defect's severity probabilities are
    taken as independent: the worst grade over all defects, and the table's escalation (e.g. three
    findings at Ⅲ → Ⅳ) applied to the chance of that many findings at once. Unlike the findings'
    argmax, this adds up the risk of several uncertain defects."""
    esc = table.escalation
    at = GRADES.index(esc["at_grade"]) if esc else -1
    need = int(esc["count"]) if esc else 1
    # state: (worst grade so far, number of defects at the escalation grade, capped at ``need``)
    st = np.zeros((4, need + 1))
    st[0, 0] = 1.0
    for k, p in probs.items():
        p = np.asarray(p, np.float64)
        p = p / p.sum()
        pg = np.zeros(4)
        for sev in range(4):
            pg[GRADES.index(table.grade_of(k, sev))] += p[sev]
        ns = np.zeros_like(st)
        for gi in range(4):
            if pg[gi] <= 0:
                continue
            for worst in range(4):
                row = st[worst] * pg[gi]
                if gi == at:
                    ns[max(worst, gi), 1:] += row[:-1]
                    ns[max(worst, gi), need] += row[-1]
                else:
                    ns[max(worst, gi)] += row
        st = ns
    out = st.sum(1)
    if esc:
        to = GRADES.index(esc["to_grade"])
        moved = st[at, need]
        out[at] -= moved
        out[max(at, to)] += moved
    return out / out.sum()


def combined_grade_probs(dist: np.ndarray, grade_head: np.ndarray | None, beta: float) -> np.ndarray:
    """The rule distribution weighted by the CNN's whole-photo grade head (``beta`` = 0: rules only)."""
    lp = np.log(np.clip(dist, 1e-9, 1))
    if grade_head is not None and beta:
        lp = lp + beta * np.log(np.clip(np.asarray(grade_head, np.float64), 1e-9, 1))
    e = np.exp(lp - lp.max())
    return e / e.sum()


def measured_value(measure: str, g: geo.Geometry) -> float | None:
    """A geometric measurement by name (those the model's likelihood tables refer to)."""
    if measure == "mirror_offset_pct":
        return geo.mirror_offset_pct(g.face, g.pole)
    if measure == "pole_bend_pct":
        return float(g.pole.bend_pct) if g.pole is not None else None
    return None


def measure_likelihood(value: float, spec: dict) -> np.ndarray:
    """P(measured value's bin | severity 0..3) from a likelihood table in the model's metadata
    (``{"edges": [...], "p": [[per bin] × 4 severities]}``, see :func:`train.measure_likelihoods`)."""
    b = int(np.searchsorted(np.asarray(spec["edges"], np.float64), value, side="right"))
    return np.array([row[b] for row in spec["p"]], np.float64)


def judge(insp: MirrorInspection, g: geo.Geometry, pred, table: GradingTable, safety: dict | None = None,
          photo_scale: float = 1.0, likelihoods: dict | None = None) -> None:
    """Findings, grade and review flags of a judgeable photo from its geometry and the CNN's
    prediction (None = geometry only). ``safety``: the model's calibrated Ⅳ safety-net thresholds
    ``{"iv_finding": p, "iv_grade_head": p}`` — any sign of a Ⅳ-level defect above them makes the photo
    Ⅳ with 要確認, because a missed emergency is the costly error. ``photo_scale``: full-resolution
    px per px of the analysed image (finding boxes are in full-resolution px). ``likelihoods``: the
    model's measured-value likelihood tables (``{defect: {"measure": …, "edges", "p"}}``): the mirror's
    offset from the pole's axis weighs in on the bracket's deformation, the pole's bend (traced centre
    line vs its chord) on the pole's bending, together with the CNN."""
    s = photo_scale
    face = g.face
    findings: list[Finding] = []
    probs: dict[str, tuple[np.ndarray, str, float | None]] = {}
    if pred is not None:
        for k in CNN_DEFECTS:
            if k in pred.probs:
                probs[k] = (pred.probs[k], "cnn", None)
    pd = measure_probs(face.deformation_pct, table.measures["mirror_deformation_pct"], DEFORM_SIGMA_PCT)
    if face.method == "partial":    # a circle on a short arc of rim: no outline to measure
        pd = np.full(4, 0.25)
    elif face.method != "hole":     # outline partly hidden: the measure is weaker evidence
        pd = PARTIAL_OUTLINE_WEIGHT * pd + (1 - PARTIAL_OUTLINE_WEIGHT) * np.full(4, 0.25)
    if "mirror.deformation" in probs:
        pc = probs["mirror.deformation"][0]
        probs["mirror.deformation"] = (pc * pd / (pc * pd).sum(), "cnn+geometry", face.deformation_pct)
    else:
        probs["mirror.deformation"] = (pd, "geometry", face.deformation_pct)
    for key, spec in (likelihoods or {}).items():
        if key in probs:
            v = measured_value(spec.get("measure", ""), g)
            if v is not None:
                q = probs[key][0] * measure_likelihood(v, spec)
                probs[key] = (q / q.sum(), "cnn+geometry", v)
    if g.pole is not None:
        pt = measure_probs(abs(g.pole.tilt_deg), table.measures["pole_tilt_deg"], TILT_SIGMA_DEG)
        off = geo.mirror_offset_pct(face, g.pole)
        if off is not None and off > TILT_OFFSET_SUSPECT_PCT:
            pt = TILT_SUSPECT_WEIGHT * pt + (1 - TILT_SUSPECT_WEIGHT) * np.array([1.0, 0.0, 0.0, 0.0])
        probs["pole.tilt"] = (pt, "geometry", g.pole.tilt_deg)
    for key in DEFECTS:
        if key not in probs:
            continue
        p, src, meas = probs[key]
        f = _finding_from_probs(key, p, table, _member_box(key.split(".")[0], face, g.pole, s), src, meas)
        if f is not None:
            findings.append(f)
    findings.sort(key=lambda f: (f.possible, -f.severity, f.key))
    res = grade_findings(findings, table)
    insp.findings = findings
    insp.grade, insp.provisional_grade, insp.needs_review = res.grade, res.provisional_grade, res.needs_review
    insp.reasons = res.reasons
    # what the geometry could not see: review, and never Ⅰ
    for unseen, why in ((face.method == "partial",
                         "鏡面の大部分が隠れて見えないため、見えている縁から位置を推定して判定しました（要確認）"),
                        (g.pole is None, "支柱を確認できませんでした（傾きは未測定）")):
        if unseen:
            insp.needs_review = True
            if insp.grade == "Ⅰ":
                insp.grade = None
            insp.reasons.append(why)
    if pred is not None and insp.provisional_grade in GRADES:
        gi = int(np.argmax(pred.grade_probs))
        if abs(gi - GRADES.index(insp.provisional_grade)) >= 2 and pred.grade_probs[gi] >= 0.8:
            insp.needs_review = True
            insp.reasons.append(f"所見からの判定（{insp.provisional_grade}）と写真全体の印象（{GRADES[gi]}）が大きく異なります")
    plain = {k: v[0] for k, v in probs.items()}
    iv, iv_key = iv_evidence(plain, table)
    gh = float(pred.grade_probs[3]) if pred is not None else 0.0
    safety = safety or {}
    beta = float(safety.get("grade_head_weight", 0.0))
    pg = combined_grade_probs(grade_distribution(plain, table), pred.grade_probs if pred is not None else None, beta)
    insp.signals = {"iv_finding": iv, "iv_defect": iv_key, "iv_grade_head": gh, "p_iv": float(pg[3]),
                    "grade_probs": [round(float(v), 3) for v in pg]}
    if safety.get("grade_from_distribution") and insp.provisional_grade in GRADES:
        # the most probable grade over all defects together (several uncertain defects add up; the
        # whole-photo grade head weighs in): where it differs from the findings' worst grade, it is
        # the grade, and the photo goes to review with the reason
        gi = int(np.argmax(pg))
        if GRADES[gi] != insp.provisional_grade:
            insp.reasons.append(f"所見ごとの判定は{insp.provisional_grade}ですが、所見の可能性を合わせると"
                                f"{GRADES[gi]}の可能性が最も高い（{pg[gi]:.0%}）ため{GRADES[gi]}とし要確認としました")
            insp.provisional_grade = GRADES[gi]
            insp.grade = GRADES[gi] if gi else None    # never Ⅰ with uncertainty: 要確認
            insp.needs_review = True
    insp.signals["grade_before_net"] = insp.provisional_grade
    if safety and insp.provisional_grade in GRADES and insp.provisional_grade != "Ⅳ":
        by_finding = iv >= float(safety.get("iv_finding", 2.0))
        by_head = gh >= float(safety.get("iv_grade_head", 2.0))
        by_total = float(pg[3]) >= float(safety.get("p_iv", 2.0))
        if by_finding or by_head or by_total:
            insp.grade = insp.provisional_grade = "Ⅳ"
            insp.needs_review = True
            insp.safety_net = True
            what = (f"{label_ja(iv_key)}が緊急措置段階である可能性（{iv:.0%}）" if by_finding and iv_key else
                    f"所見を合わせて緊急措置段階である可能性（{pg[3]:.0%}、Ⅲ相当の所見の重なりを含む）" if by_total else
                    f"写真全体の印象が緊急措置段階である可能性（{gh:.0%}）")
            insp.reasons.append(f"{what}があるため、安全側でⅣとし要確認としました")


def diagnose(path: Path | str, table: GradingTable | None = None, model="default") -> MirrorInspection:
    """Diagnose one photo file (JPEG/PNG/HEIC). Raises :class:`intake.PhotoError` if unreadable."""
    t0 = time.perf_counter()
    photo = load_photo(path)
    insp = diagnose_photo(photo, table, model)
    insp.elapsed_s = time.perf_counter() - t0
    return insp


def diagnose_array(rgb: np.ndarray, table: GradingTable | None = None, model="default",
                   name: str = "<array>") -> MirrorInspection:
    """Diagnose an in-memory RGB image (benchmarks, tests)."""
    photo = Photo(Path(name), np.ascontiguousarray(rgb), (rgb.shape[1], rgb.shape[0]), 1.0, "", "array")
    return diagnose_photo(photo, table, model)


__all__ = ["Finding", "MirrorInspection", "diagnose", "diagnose_photo", "diagnose_array", "measure_probs", "judge",
           "iv_evidence",
           "grade_distribution", "combined_grade_probs", "measure_likelihood", "measured_value", "asdict"]
