"""記録 and 承認 screens on the real workflow: evidence links both ways, edit → save → submit,
supervisor approves (flags acknowledged) → read-only; own records cannot be approved."""
import pytest

from desktop import strings as S
from desktop.ops import idle
from engine import users
from engine.records import draft as rdraft
from engine.records import template as rtemplate
from engine.records import workflow
from engine.records.model import Segment

TRANSCRIPT = [
    (0.0, 4.0, "staff", "本日はどのようなご相談でしょうか。"),
    (4.5, 10.0, "citizen", "先月仕事を辞めて、家賃の6万円が払えなくなりました。"),
    (10.5, 14.0, "staff", "今、手持ちのお金はいくらありますか。"),
    (14.5, 18.0, "citizen", "貯金は3万円くらいしかありません。"),
    (18.5, 24.0, "staff", "生活保護の申請をされますか。申請の意思を確認させてください。"),
    (24.5, 27.0, "citizen", "はい、申請したいです。"),
]


@pytest.fixture
def people(ctx):
    admin = users.add_user(ctx.store, None, "kanri", "管理 太郎", "admin", "password-1")
    staff = users.add_user(ctx.store, admin, "tanaka", "田中 花子", "staff", "password-2")
    sup = users.add_user(ctx.store, admin, "sato", "佐藤 係長", "supervisor", "password-3")
    return staff, sup


@pytest.fixture
def record(ctx, people):
    staff, _ = people
    segs = [Segment(i + 1, *t) for i, t in enumerate(TRANSCRIPT)]
    tpl = rtemplate.load("seikatsu_hogo")
    d = rdraft.draft(segs, tpl, ctx.config, use_llm=False)
    return workflow.create(ctx.store, staff, d, title="家賃滞納の相談", case_number="K-2026-001")


def test_record_view_links_edits_and_submits(qtbot, qapp, ctx, people, record):
    from desktop.views.record import RecordView
    staff, _ = people
    v = RecordView(ctx, staff)
    qtbot.addWidget(v)
    qtbot.waitUntil(lambda: v.records.rowCount() == 1)      # lists load off the GUI thread (StoreOp)
    assert v.records.item(0, 1).text() == "家賃滞納の相談"
    v.open_record(record.id)
    qtbot.waitUntil(lambda: v.current is not None)
    items = list(v.panel.statement_items())
    assert items, "the extractive draft has statements"
    st_item = next(it for it in items if it.data(0, 0x0100).evidence)
    st = st_item.data(0, 0x0100)
    v.panel._statement_clicked(st_item, 0)
    lit = [v.panel.transcript.item(i).data(0x0101) for i in range(v.panel.transcript.count())
           if v.panel.transcript.item(i).background().color().name() == "#fff59d"]
    assert lit == sorted(st.evidence)
    # the other way round: a transcript line lights up the statements resting on it
    texts = v.panel.highlight_statements_for(st.evidence[0])
    assert st.text in texts
    # edit inline, save (new version), submit
    st_item.setText(0, "相談者は家賃6万円を払えず困っている。")
    assert v.dirty and v.save_btn.isEnabled()
    v.submit()
    qtbot.waitUntil(lambda: v.message.text() == S.SUBMITTED and idle())
    rec = workflow.get(ctx.store, staff, record.id)
    assert rec.state == "submitted" and rec.version == 2
    assert any(s.text == "相談者は家賃6万円を払えず困っている。" for _, s in rec.content.statements())


def test_approval_queue_approve_read_only(qtbot, qapp, ctx, people, record):
    from desktop.views.approval import ApprovalView
    staff, sup = people
    workflow.submit(ctx.store, staff, record.id, record.revision)
    v = ApprovalView(ctx, sup)
    qtbot.addWidget(v)
    qtbot.waitUntil(lambda: v.queue.rowCount() == 1)
    assert "要確認" in v.queue.item(0, 5).text()
    v.queue.selectRow(0)
    qtbot.waitUntil(lambda: v.current is not None)
    assert v.current.id == record.id and v.approve_btn.isEnabled()
    v.ack.setChecked(True)
    v.approve()
    qtbot.waitUntil(lambda: v.current.state == "approved" and idle())
    rec = workflow.get(ctx.store, sup, record.id)
    assert rec.state == "approved"
    assert not v.approve_btn.isEnabled() and v.pdf_btn.isEnabled()
    with pytest.raises(Exception):
        ctx.store.execute("UPDATE record_versions SET content = '{}' WHERE record_id = ? AND version = ?",
                          (rec.id, rec.version))


def test_approval_return_with_comment_and_own_record_refused(qtbot, qapp, ctx, people, record):
    from desktop.views.approval import ApprovalView
    staff, sup = people
    workflow.submit(ctx.store, staff, record.id, record.revision)
    v = ApprovalView(ctx, sup)
    qtbot.addWidget(v)
    qtbot.waitUntil(lambda: v.queue.rowCount() == 1)
    v.queue.selectRow(0)
    qtbot.waitUntil(lambda: v.current is not None)
    v.return_record("扶養義務者の記載を追加してください。")
    qtbot.waitUntil(lambda: v.current.state == "returned" and idle())
    rec = workflow.get(ctx.store, sup, record.id)
    assert rec.state == "returned" and "扶養義務者" in rec.comment
    # a supervisor's own record: the buttons are disabled and the engine refuses too
    d = rdraft.draft([Segment(1, 0, 2, "staff", "テストです。")], rtemplate.load("seikatsu_hogo"), ctx.config, use_llm=False)
    own = workflow.create(ctx.store, sup, d, title="自分の記録")
    own = workflow.submit(ctx.store, sup, own.id, own.revision)
    v.refresh()
    qtbot.waitUntil(lambda: any(v.queue.item(i, 0).text() == str(own.id) for i in range(v.queue.rowCount())))
    row = next(i for i in range(v.queue.rowCount()) if v.queue.item(i, 0).text() == str(own.id))
    v.queue.selectRow(row)
    qtbot.waitUntil(lambda: v.current.id == own.id and idle())
    assert not v.approve_btn.isEnabled()
    with pytest.raises(Exception):
        workflow.approve(ctx.store, sup, own.id, own.revision, acknowledge_flags=True)


def test_typing_while_a_save_is_on_its_way_stays_unsaved(qtbot, qapp, ctx, people, record):
    """保存 runs off the GUI thread: an edit made meanwhile is not lost and not marked saved, and
    there is no second save while the first is on its way."""
    from desktop.views.record import RecordView
    staff, _ = people
    v = RecordView(ctx, staff)
    qtbot.addWidget(v)
    v.open_record(record.id)
    qtbot.waitUntil(lambda: v.current is not None and idle())
    first, second = [it for it in v.panel.statement_items()][:2]
    first.setText(0, "一つ目の修正。")
    v.save()
    assert not v.save_btn.isEnabled() and not v.submit_btn.isEnabled()     # on its way: no second click
    second.setText(0, "保存中の修正。")                                         # typed before the save came back
    assert not v.save_btn.isEnabled()
    qtbot.waitUntil(lambda: not v.saving and idle())
    assert v.dirty and v.save_btn.isEnabled() and v.message.text() == S.UNSAVED
    assert workflow.get(ctx.store, staff, record.id).version == 2
    v.save()
    qtbot.waitUntil(lambda: v.message.text() == S.SAVED and idle())
    texts = [s.text for _, s in workflow.get(ctx.store, staff, record.id).content.statements()]
    assert "一つ目の修正。" in texts and "保存中の修正。" in texts
