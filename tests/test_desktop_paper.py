"""Paper at the counter and 要約 buttons (issue 29 c): a citizen's paper photographed at the counter
is read by the real Tesseract (in a child process), its key fields and a cited summary shown in a
window beside 相談 (the screen keeps its width), unreadable files said in Japanese, nothing of the
paper kept after the next consultation starts; 要約 of a search hit and of its document on the
マニュアル検索 screen."""
from __future__ import annotations

import random

import pytest
from PIL import Image, ImageDraw, ImageFont

from devkit import scans
from engine import audit, users
from engine.manuals import paper as P
from engine.manuals import samples

LETTER = ["督促状", "山川一郎 様", "あなたの後期高齢者医療保険料について、納期限を過ぎても納付が確認できません。",
          "未納の保険料は令和7年度第2期分の23,700円です。",
          "令和7年9月30日までに、同封の納付書で金融機関またはコンビニで納付してください。",
          "期限までに納付がない場合は、延滞金が加算されることがあります。",
          "納付が難しい場合は、分割納付などの相談ができます。", "差出人：南区長"]


def letter_photo(path, seed: int = 5):
    """A printed A4 letter (IPAGothic at 200 dpi) through the scanner (skew, blur, dust, JPEG) — the
    OCR's accuracy on photos is slice a's benchmark; here the reading must reach the screen."""
    font = ImageFont.truetype(str(samples.japanese_font()), 40)
    img = Image.new("RGB", (1654, 2339), "white")
    d = ImageDraw.Draw(img)
    y = 160
    for i, line in enumerate(LETTER):
        while line:           # wrap at 40 characters
            d.text((140, y), line[:34], font=font, fill="black")
            line, y = line[34:], y + 70
        y += 30 if i else 60
    scans.scanner(img, random.Random(seed)).save(path, quality=85)
    return path


@pytest.fixture
def ectx(data_dir):
    """A context without the LLM (extractive summaries: the fast path the counter falls back to)."""
    from engine.context import open_context
    c = open_context(data_dir, overrides={"llm.enabled": False})
    yield c
    c.close()


@pytest.fixture
def staff(ectx):
    admin = users.add_user(ectx.store, None, "kanri", "管理 太郎", "admin", "password-1")
    return users.add_user(ectx.store, admin, "tanaka", "田中 花子", "staff", "password-2")


def test_key_fields_with_their_pages():
    pages = [(1, "佐藤花子 様\n介護保険料の納付について\nあなたの年額は72,000円です。第1期の納期限は令和6年7月31日です。"),
             (2, "口座振替は通帳をお持ちください。\n差出人：中央区長")]
    f = {k.name: k for k in P.key_fields(pages)}
    assert (f["金額"].value, f["金額"].page) == ("72,000円", 1)
    assert (f["期限"].value, f["期限"].page) == ("令和6年7月31日", 1)
    assert (f["差出人"].value, f["差出人"].page) == ("中央区長", 2)
    assert (f["宛先"].value, f["宛先"].page) == ("佐藤花子", 1)
    none = {k.name: k for k in P.key_fields([(1, "お知らせです。")])}
    assert all(k.value == "" and k.page is None for k in none.values())


def test_a_photographed_letter_is_read_and_its_reading_audited(tmp_path, ectx, staff):
    paper = P.read_paper(ectx, letter_photo(tmp_path / "tokusoku.jpg"), user=staff)
    assert paper.ocr_pages == [1] and "延滞金" in paper.text()
    assert paper.get("金額").value == "23,700円" and paper.get("金額").page == 1
    # the fields are copied from what was read, never computed; OCR may misread a digit
    # (9月30日 comes back as 9月3日 in this scan), hence 原本で確かめて on screen
    flat = "".join(paper.text().split())
    assert paper.get("期限").value.startswith("令和7年9月3") and paper.get("期限").value in flat
    assert paper.get("差出人").value == "南区長"
    s = paper.summary
    assert s.method == "extractive" and s.points and all(p.pages == [1] for p in s.points)
    entry = audit.entries(ectx.store, "paper")[-1]
    assert entry.action == "paper.read" and entry.actor == "tanaka" and entry.detail["ocr_pages"] == 1
    assert "23,700" not in str(entry.detail) and "tokusoku" not in str(entry.detail)
    from engine.roles import PermissionDenied
    with pytest.raises(PermissionDenied):      # IT reads no citizen's paper
        P.read_paper(ectx, tmp_path / "tokusoku.jpg", user=users.get_user(ectx.store, "kanri"))


def test_unreadable_papers_say_what_to_do_in_japanese(tmp_path, ectx):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"this is not a JPEG" * 20)
    blank = tmp_path / "blank.png"
    Image.new("RGB", (1200, 1600), "white").save(blank)
    other = tmp_path / "notes.xyz"
    other.write_text("x", encoding="utf-8")
    cases = [(bad, "壊れて"), (blank, "読み取れませんでした"), (other, "形式"), (tmp_path / "gone.jpg", "見つかりません")]
    for path, words in cases:
        with pytest.raises(P.SummaryError) as e:
            P.read_paper(ectx, path)
        assert words in e.value.ja, (path.name, e.value.ja)


def test_consult_reads_a_paper_beside_it_and_forgets_it(qtbot, qapp, tmp_path, ectx, staff):
    from desktop.ops import idle
    from desktop.views.consult import ConsultView
    v = ConsultView(ectx, staff)
    qtbot.addWidget(v)
    v.show()
    qtbot.waitUntil(idle, timeout=60_000)
    width = v.minimumSizeHint().width()
    dlg = v.read_paper(str(letter_photo(tmp_path / "paper.jpg")))
    qtbot.waitUntil(lambda: dlg.done, timeout=240_000)
    assert dlg.error is None, dlg.status.text()
    values = {dlg.fields.item(i, 0).text(): dlg.fields.item(i, 1).text() for i in range(dlg.fields.rowCount())}
    assert values["金額"] == "23,700円" and values["期限"].startswith("令和7年9月3")
    assert "原本" in dlg.status.text()
    assert "1ページ" in dlg.summary.toPlainText() and "抽出" in dlg.summary.toPlainText()
    assert "延滞金" in dlg.text.toPlainText()
    assert v.minimumSizeHint().width() == width            # the paper has its own window
    # an unreadable file: a Japanese message in the window, nothing raised
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG broken")
    dlg2 = v.read_paper(str(bad))
    qtbot.waitUntil(lambda: dlg2.done, timeout=120_000)
    assert dlg2.paper is None and "読み取れませんでした" in dlg2.status.text() and "撮影" in dlg2.status.text()
    # the next consultation starts: the previous citizen's papers are gone
    import shiboken6
    v.forget_papers()
    qtbot.waitUntil(lambda: not shiboken6.isValid(dlg) and not shiboken6.isValid(dlg2), timeout=10_000)
    assert v.papers == []


@pytest.fixture(scope="module")
def manuals_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("manuals")
    samples.build(d)
    return d


@pytest.mark.slow
def test_manuals_summary_of_a_hit_and_of_its_document(qtbot, qapp, ectx, staff, manuals_dir):
    from desktop.ops import idle
    from desktop.views.manuals import ManualsView
    from engine.manuals import index
    index.index_paths(ectx.local, [manuals_dir], embed=False)
    v = ManualsView(ectx, staff)
    qtbot.addWidget(v)
    v.resize(1300, 800)
    v.show()
    qtbot.waitUntil(idle, timeout=30_000)
    assert not v.sum_hit_btn.isEnabled()                  # nothing to summarise yet
    v.query.setText("家賃が払えない")
    qtbot.waitUntil(lambda: len(v.hits) > 0 and v.sum_hit_btn.isEnabled(), timeout=60_000)
    h = v.current_hit
    v.sum_hit_btn.click()
    qtbot.waitUntil(lambda: v.summary is not None, timeout=120_000)
    s = v.summary
    assert s.title == h.doc and s.points and all(p.pages for p in s.points)
    if h.page:
        assert all(abs(n - h.page) <= 1 + ((h.page_end or h.page) - h.page) for p in s.points for n in p.pages)
    assert "ページ" in v.summary_box.toPlainText() and v.sum_doc_btn.isEnabled()
    v.summary = None
    v.sum_doc_btn.click()
    qtbot.waitUntil(lambda: v.summary is not None, timeout=120_000)
    assert v.summary.title == h.doc and len(v.summary.points) >= 5
