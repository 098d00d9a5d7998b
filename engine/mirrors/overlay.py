"""The photo with the mirror face, the pole and every finding drawn and labelled in Japanese — what
the inspector and the supervisor look at. Pillow only (a Japanese TrueType font is required:
IPAGothic / Noto CJK on Linux, MS Gothic / Yu Gothic / Meiryo on Windows).
"""
from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from ..errors import MadoguchiError
from .defects import GRADES_JA, SEVERITY_JA, label_ja

GRADE_COLOURS = {"Ⅰ": (40, 170, 80), "Ⅱ": (235, 200, 0), "Ⅲ": (255, 130, 0), "Ⅳ": (230, 20, 30), None: (150, 150, 150)}
MIRROR_COLOUR = (0, 220, 255)
POLE_COLOUR = (60, 120, 255)

_FONT_CANDIDATES = [
    "/usr/share/fonts/opentype/ipafont-gothic/ipag.ttf",
    "/usr/share/fonts/truetype/fonts-japanese-gothic.ttf",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/noto/NotoSansCJK-Regular.ttc",
]
_WIN_FONTS = ["YuGothM.ttc", "YuGothR.ttc", "meiryo.ttc", "msgothic.ttc"]


class FontError(MadoguchiError):
    ja_default = "日本語フォントが見つかりません。IPAゴシックなどの日本語フォントを導入してください。"


@lru_cache(maxsize=1)
def font_path() -> str:
    cands = list(_FONT_CANDIDATES)
    if sys.platform == "win32":
        windir = os.environ.get("WINDIR", r"C:\Windows")
        cands = [os.path.join(windir, "Fonts", f) for f in _WIN_FONTS] + cands
    for c in cands:
        if os.path.isfile(c):
            return c
    if shutil.which("fc-match"):
        try:
            out = subprocess.run(["fc-match", "-f", "%{file}", "IPAGothic:lang=ja"], capture_output=True,
                                 text=True, timeout=10).stdout.strip()
            if out and os.path.isfile(out):
                return out
        except (OSError, subprocess.SubprocessError):
            pass
    raise FontError("no Japanese TrueType font found (install fonts-ipafont-gothic)")


@lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(font_path(), size)


def _grade_of(f: dict, table) -> str | None:
    if f.get("possible"):
        return None
    return table.grade_of(f"{f['member']}.{f['defect']}", int(f["severity"]))


def _label(draw, xy, text, colour, font, bounds):
    x, y = xy
    l, t, r, b = draw.textbbox((0, 0), text, font=font)
    w, h = r - l + 8, b - t + 6
    x = min(max(0, x), max(0, bounds[0] - w))
    y = min(max(0, y), max(0, bounds[1] - h))
    draw.rectangle([x, y, x + w, y + h], fill=colour)
    lum = 0.3 * colour[0] + 0.59 * colour[1] + 0.11 * colour[2]
    draw.text((x + 4 - l, y + 3 - t), text, font=font, fill=(0, 0, 0) if lum > 140 else (255, 255, 255))
    return y + h


def draw(img: Image.Image, *, scale: float, grade: str | None, needs_review: bool, findings: list[dict],
         mirrors: list[dict], pole: dict | None, quality: dict | None, table=None) -> Image.Image:
    """Draw on a copy of ``img``. Coordinates in ``findings``/``mirrors``/``pole`` are photo pixels;
    ``scale`` = photo pixels per pixel of ``img``."""
    from .grading import load_table
    table = table or load_table()
    img = img.convert("RGB").copy()
    W, H = img.size
    d = ImageDraw.Draw(img)
    lw = max(2, round(max(W, H) / 400))
    fs = max(14, round(max(W, H) / 55))
    font, small = _font(fs), _font(max(12, round(fs * 0.8)))

    def sc(v):
        return [c / scale for c in v]

    for m in mirrors:
        if m.get("outline"):
            pts = [tuple(sc(p)) for p in m["outline"]]
            d.line(pts + [pts[0]], fill=MIRROR_COLOUR, width=lw)
        elif m.get("center") and m.get("axes"):
            cx, cy = sc(m["center"])
            a, b = sc(m["axes"])
            ang = math.radians(m.get("angle", 0))
            pts = [(cx + a * math.cos(t) * math.cos(ang) - b * math.sin(t) * math.sin(ang),
                    cy + a * math.cos(t) * math.sin(ang) + b * math.sin(t) * math.cos(ang))
                   for t in [2 * math.pi * k / 72 for k in range(72)]]
            d.line(pts + [pts[0]], fill=MIRROR_COLOUR, width=lw)
        if m.get("box"):
            x0, y0, x1, y1 = sc(m["box"])
            shape = "丸型" if m.get("shape") == "round" else "角型"
            _label(d, (x0, y0 - fs * 1.5), f"鏡面（{shape}）", MIRROR_COLOUR, small, (W, H))
    if pole:
        (tx, ty), (bx, by) = sc(pole["top"]), sc(pole["base"])
        d.line([(tx, ty), (bx, by)], fill=POLE_COLOUR, width=lw)
        _label(d, (max(tx, bx) + 2 * lw, (ty + by) / 2), f"支柱 傾き {abs(pole['tilt_deg']):.1f}°", POLE_COLOUR,
               small, (W, H))

    used: dict[tuple, float] = {}
    for f in findings:
        if not f.get("box"):
            continue
        g = _grade_of(f, table)
        col = GRADE_COLOURS[g]
        x0, y0, x1, y1 = sc(f["box"])
        if f.get("uncertain"):   # dashed box: uncertain
            for a, b in (((x0, y0), (x1, y0)), ((x1, y0), (x1, y1)), ((x1, y1), (x0, y1)), ((x0, y1), (x0, y0))):
                n = max(1, int(math.dist(a, b) / (6 * lw)))
                for k in range(0, n, 2):
                    p = (a[0] + (b[0] - a[0]) * k / n, a[1] + (b[1] - a[1]) * k / n)
                    q = (a[0] + (b[0] - a[0]) * (k + 1) / n, a[1] + (b[1] - a[1]) * (k + 1) / n)
                    d.line([p, q], fill=col, width=lw)
        else:
            d.rectangle([x0, y0, x1, y1], outline=col, width=lw)
        key = (round(x0), round(y0))
        ly = used.get(key, y0 + lw)
        text = f"{label_ja(f['member'], f['defect'])} {SEVERITY_JA.get(int(f['severity']), '')}"
        text += f" {float(f['confidence']):.0%}"
        if f.get("possible"):
            text += " 疑い"
        elif f.get("uncertain"):
            text += " 要確認"
        used[key] = _label(d, (x0 + lw, ly), text, col, small, (W, H)) + 2

    head = GRADES_JA.get(grade, "要確認（人による判定が必要）") if (quality or {}).get("ok", True) else "判定不可（撮り直し）"
    if grade and needs_review:
        head += "（要確認）"
    y = _label(d, (0, 0), f"AI判定：{head}", GRADE_COLOURS.get(grade, GRADE_COLOURS[None]), font, (W, H))
    for msg in (quality or {}).get("messages", []):
        y = _label(d, (0, y + 2), msg, (90, 90, 90), small, (W, H))
    return img


def _open_scaled(path: str | Path, max_side: int) -> tuple[Image.Image, float]:
    from .intake import load_photo
    ph = load_photo(path, load_size=max_side)
    img = Image.fromarray(ph.rgb)
    if max(img.size) > max_side:
        f = max_side / max(img.size)
        img = img.resize((round(img.width * f), round(img.height * f)), Image.LANCZOS)
    return img, ph.size[0] / img.width


def render(insp, max_side: int = 1600, table=None) -> Image.Image:
    """Overlay for a :class:`diagnose.MirrorInspection`."""
    img, scale = _open_scaled(insp.path, max_side)
    return draw(img, scale=scale, grade=insp.grade, needs_review=insp.needs_review,
                findings=[f.to_json() for f in insp.findings], mirrors=insp.mirrors, pole=insp.pole,
                quality=insp.quality.to_json(), table=table)


def render_inspection(row: dict, max_side: int = 1600, table=None) -> Image.Image:
    """Overlay for a ledger row (:func:`ledger.get_inspection`)."""
    img, scale = _open_scaled(row["photo_path"], max_side)
    geom = row.get("geometry") or {}
    return draw(img, scale=scale, grade=row.get("ai_grade"), needs_review=bool(row.get("needs_review")),
                findings=row.get("findings") or [], mirrors=geom.get("mirrors") or [], pole=geom.get("pole"),
                quality=row.get("quality") or None, table=table)


def save_overlay(insp, out_dir: Path | str, max_side: int = 1600) -> Path:
    out = Path(out_dir) / (Path(insp.path).stem + "_overlay.jpg")
    render(insp, max_side).save(out, "JPEG", quality=90)
    return out
