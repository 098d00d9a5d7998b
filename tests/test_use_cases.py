"""The use-cases a screen calls as one engine function: sign-in at the counter, saving an edit,
crash recovery (what used to be decided in desktop/views/)."""
from types import SimpleNamespace

import pytest

from engine import consultation, users
from engine.records import workflow
from engine.roles import PermissionDenied
from devkit.records import make_draft


@pytest.fixture
def staff(ctx):
    admin = users.add_user(ctx.store, None, "kanri", "管理", "admin", "admin-pass-1")
    return users.add_user(ctx.store, admin, "tanaka", "田中", "staff", "staff-pass-1")


def test_sign_in_at_counter_online_then_offline(ctx, staff):
    got = users.sign_in_at_counter(ctx, "tanaka", "staff-pass-1")
    assert (got.user.username, got.offline) == ("tanaka", False)
    with pytest.raises(users.SignInError):
        users.sign_in_at_counter(ctx, "tanaka", "wrong-pass-1")
    # the office server away: the offline rule, with the verifier kept at the last server sign-in
    away = SimpleNamespace(online=False, store=ctx.store, local=ctx.local, link=ctx.link)
    with pytest.raises(users.SignInError):
        users.sign_in_at_counter(away, "tanaka", "staff-pass-1")     # never signed in on the server here
    users.remember_sign_in(ctx.local, staff, "staff-pass-1")
    got = users.sign_in_at_counter(away, "tanaka", "staff-pass-1")
    assert (got.user.username, got.user.role, got.offline) == ("tanaka", "staff", True)


def test_save_edit_saves_and_says_whether_it_carried_over(ctx, staff):
    rec = workflow.create(ctx.store, staff, make_draft(), title="t")
    d = rec.content
    d.sections[0].statements[0].text = "家賃は月5万円（確認済）。"
    saved, carried = consultation.save_edit(ctx, staff, rec.id, d, rec.revision, reason="edit")
    assert not carried and saved.revision == rec.revision + 1
    assert workflow.get(ctx.store, staff, rec.id).content.sections[0].statements[0].text.endswith("（確認済）。")
    with pytest.raises(workflow.ConflictError):
        consultation.save_edit(ctx, staff, rec.id, d, rec.revision, reason="edit")   # stale revision


def test_recovery_is_asked_of_the_roles_that_recover(ctx, staff):
    assert consultation.pending_recovery(ctx, staff) == []
    assert consultation.recover(ctx, staff, []) == []
    inspector = users.User(99, "kensa", "検査", "inspector")
    with pytest.raises(PermissionDenied):
        consultation.pending_recovery(ctx, inspector)
