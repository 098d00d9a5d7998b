"""No GUI stall on a slow office network: the desktop's main actions — sign in, approve, save,
list the ledger (and the record lists they reload) — against the office server behind an added 200 ms
network delay leave the event loop free (no gap over 100 ms). Every store call of those screens
runs as a StoreOp off the GUI thread; one made on the GUI thread would stall it ≥ 200 ms.

The delay is a small TCP proxy in this process (asyncio on its own thread, a free loopback port):
each chunk is passed on 200 ms after it arrived, in each direction, order kept — no root, no tc."""
from __future__ import annotations

import asyncio
import threading
import time

import pytest

from desktop import strings as S
from desktop.ops import idle
from engine import users
from engine.context import open_context
from engine.records import workflow
from tests.qt_util import StallWatch
from tests.server_pg import server
from devkit.records import make_draft

DELAY = 0.200


class DelayProxy:
    """Forwards 127.0.0.1:``port`` to ``target_port``, each chunk ``delay`` seconds late."""

    def __init__(self, target_port: int, delay: float = DELAY):
        self.target_port, self.delay = target_port, delay
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name="delay-proxy")
        self.thread.start()
        assert self.ready.wait(10), "the delay proxy did not start"

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(asyncio.start_server(self._client, "127.0.0.1", 0))
        self.port = self.server.sockets[0].getsockname()[1]
        self.ready.set()
        self.loop.run_forever()

    async def _client(self, c_reader, c_writer) -> None:
        try:
            s_reader, s_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            c_writer.close()
            return
        await asyncio.gather(self._pipe(c_reader, s_writer), self._pipe(s_reader, c_writer),
                             return_exceptions=True)

    async def _pipe(self, reader, writer) -> None:
        queue: asyncio.Queue = asyncio.Queue()

        async def send():
            while True:
                due, data = await queue.get()
                if data is None:
                    break
                await asyncio.sleep(max(0.0, due - self.loop.time()))
                writer.write(data)
                await writer.drain()
            writer.close()

        sender = asyncio.ensure_future(send())
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                queue.put_nowait((self.loop.time() + self.delay, data))
        except (ConnectionError, OSError):
            pass
        finally:
            queue.put_nowait((0.0, None))
            await asyncio.gather(sender, return_exceptions=True)

    def close(self) -> None:
        async def stop():
            self.server.close()
            await self.server.wait_closed()
        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def slow_office(data_dir, monkeypatch):
    """An office-server database with a supervisor, a staff member, a submitted record, a draft and
    a few ledger rows (set up directly), then a Context that reaches it only through the proxy."""
    srv = server()
    name = srv.fresh_database()
    monkeypatch.setenv("MADOGUCHI_OFFICE_SERVER", srv.url(name))
    ctx = open_context(data_dir)
    admin = users.add_user(ctx.store, None, "kanri", "管理", "admin", "admin-pass-1")
    staff = users.add_user(ctx.store, admin, "tanaka", "田中", "staff", "staff-pass-1")
    sup = users.add_user(ctx.store, admin, "sato", "佐藤係長", "supervisor", "super-pass-1")
    sub = workflow.create(ctx.store, staff, make_draft(), title="提出する記録")
    workflow.submit(ctx.store, staff, sub.id, sub.revision)
    draft = workflow.create(ctx.store, staff, make_draft(), title="編集する記録")
    for i in range(20):
        ctx.store.insert("mirror_inspections", {"photo_hash": f"h{i}", "photo_path": f"/photos/KM-{i}.jpg",
                                                "taken_at": "2026-11-20T10:00:00", "ai_grade": "Ⅱ",
                                                "created_at": time.time()})
    ctx.close()
    proxy = DelayProxy(srv.port)
    monkeypatch.setenv("MADOGUCHI_OFFICE_SERVER",
                       f"postgresql://postgres@127.0.0.1:{proxy.port}/{name}?sslmode=disable")
    ctx = open_context(data_dir)
    assert ctx.online and ctx.store.backend == "postgresql"
    t0 = time.perf_counter()
    ctx.store.query_one("SELECT 1 AS x")
    assert time.perf_counter() - t0 >= 2 * DELAY * 0.9, "the proxy does not delay"
    yield ctx, staff, sup, draft
    from desktop.ops import wait_all
    assert wait_all(120_000)
    ctx.close()
    proxy.close()
    srv.drop_database(name)


def _worst_gap(qtbot, action, until) -> float:
    """The longest event-loop gap (ms) from before ``action()`` until ``until()`` holds and every
    operation is done: the loop ticks before the action and after it, so a handler that blocks
    the GUI thread shows as a gap, and so does a store call made later on the GUI thread."""
    watch = StallWatch().start()
    qtbot.waitUntil(lambda: len(watch.gaps) >= 3)
    action()
    n = len(watch.gaps)
    qtbot.waitUntil(lambda: until() and idle() and len(watch.gaps) > n + 2, timeout=120_000)
    watch.stop()
    return watch.worst_ms


def test_main_actions_do_not_stall_on_a_slow_office_network(qtbot, qapp, slow_office):
    from desktop.views.approval import ApprovalView
    from desktop.views.mirrors import MirrorsView
    from desktop.views.record import RecordView
    ctx, staff, sup, draft = slow_office
    worst, views = {}, {}

    def show(cls, user):
        v = views[cls] = cls(ctx, user)
        qtbot.addWidget(v)
        v.show()

    # サインイン: the password is checked on the server
    from desktop.views.signin import SignInDialog
    dlg = SignInDialog(ctx)
    qtbot.addWidget(dlg)
    dlg.show()
    dlg.username.setText("sato")
    dlg.password.setText("super-pass-1")
    worst["sign in"] = _worst_gap(qtbot, dlg.try_sign_in, lambda: dlg.user is not None)
    assert dlg.user.username == "sato"

    # 承認: the queue loads, a record opens, 承認
    worst["list the approval queue"] = _worst_gap(qtbot, lambda: show(ApprovalView, sup),
                                                  lambda: views[ApprovalView].queue.rowCount() == 1)
    a = views[ApprovalView]
    worst["open a record"] = _worst_gap(qtbot, lambda: a.queue.selectRow(0), lambda: a.current is not None)
    a.ack.setChecked(True)
    worst["approve"] = _worst_gap(qtbot, a.approve, lambda: a.current.state == "approved")
    assert workflow.get(ctx.store, sup, a.current.id).state == "approved"

    # 記録: the list, open the draft, edit, 保存
    worst["list my records"] = _worst_gap(qtbot, lambda: show(RecordView, staff),
                                          lambda: views[RecordView].records.rowCount() == 2)
    r = views[RecordView]
    worst["open my record"] = _worst_gap(qtbot, lambda: r.open_record(draft.id), lambda: r.current is not None)
    item = next(iter(r.panel.statement_items()))
    item.setText(0, "家賃は月5万円（通帳で確認）。")
    assert r.dirty
    worst["save"] = _worst_gap(qtbot, r.save, lambda: r.message.text() == S.SAVED)
    assert workflow.get(ctx.store, staff, draft.id).version == 2

    # カーブミラー: the ledger
    worst["list the ledger"] = _worst_gap(qtbot, lambda: show(MirrorsView, sup),
                                          lambda: views[MirrorsView].table.rowCount() == 20)

    print("worst event-loop gap (ms):", {k: round(v) for k, v in worst.items()})
    stalled = {k: round(v) for k, v in worst.items() if v >= 100}
    assert not stalled, f"the GUI event loop stalled (ms) with a 200 ms network delay: {stalled}; all: {worst}"
