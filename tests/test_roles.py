"""One capability table (engine.roles): the tabs a role sees are exactly what the engine lets it do."""
import pytest

from engine import admin, roles, users
from engine.manuals import index as mindex
from engine.mirrors import ledger
from engine.records import workflow

# the engine call behind each tab, made for a record / inspection that does not exist: a role the
# tab is hidden from gets PermissionDenied, a role that sees it gets past the role check
PROBES = {
    "record": lambda ctx, u, tmp: workflow.submit(ctx.store, u, 999_999, None),
    "approve": lambda ctx, u, tmp: workflow.approve(ctx.store, u, 999_999, None),
    "read_ledger": lambda ctx, u, tmp: (ledger.ledger_view(ctx, u), ledger.export_csv(ctx, tmp / f"{u.username}.csv", user=u)),
    "read_manuals": lambda ctx, u, tmp: mindex.update(ctx, u, []),
    "own_settings": lambda ctx, u, tmp: admin.change_setting(ctx, u, "asr.device", "x", path=tmp / "u.toml"),
}


def _allowed(probe, ctx, user, tmp) -> bool:
    try:
        probe(ctx, user, tmp)
    except roles.PermissionDenied:
        return False
    except Exception:   # not found, nothing to do: past the role check
        return True
    return True


def test_every_role_and_capability_is_in_the_table():
    assert set(users.ROLES) == set(roles.ROLES)
    for capability, who in roles.CAPABILITIES.items():
        assert who and set(who) <= set(roles.ROLES), capability


def test_tabs_a_role_sees_are_what_the_engine_lets_it_do(ctx, tmp_path):
    from desktop.mainwindow import TABS, tabs_for
    assert {cap for *_, cap in TABS} <= set(PROBES)
    admin_user = users.add_user(ctx.store, None, "kanri", "管理", "admin", "password-1")
    seen = {}
    for role in roles.ROLES:
        u = admin_user if role == "admin" else users.add_user(ctx.store, admin_user, role, role, role, "password-1")
        shown = set(tabs_for(u))
        seen[role] = shown
        for title, _m, _c, capability in TABS:
            assert _allowed(PROBES[capability], ctx, u, tmp_path) == (title in shown), (role, title)
    # what a ward office expects: casework is the welfare roles', the ledger is not the caseworkers'
    assert "カーブミラー" not in seen["staff"] and "カーブミラー" in seen["supervisor"]
    assert "承認" in seen["supervisor"] and not {"相談", "記録", "承認"} & (seen["admin"] | seen["inspector"])


@pytest.mark.parametrize("capability", sorted(roles.CAPABILITIES))
def test_an_inactive_user_can_do_nothing(capability):
    u = users.User(1, "x", "x", roles.roles_for(capability)[0], active=False)
    assert not roles.can(u, capability)
    with pytest.raises(roles.PermissionDenied):
        roles.require(u, capability)
