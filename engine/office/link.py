"""The desktop's link to the office server (:class:`Link`, ``ctx.link``) and the sync of what this
PC recorded while the server was unreachable (:func:`sync_offline`, also ``madoguchi server sync``).
"""
from __future__ import annotations

import os
import threading

from .. import audit
from ..asr import sessions
from ..records import workflow
from ..store import (OFFLINE_SYNCED_KEY, OfflineStore, ServerStore, ServerUnavailable, SharedStore, Store,
                     offline_pending)
from ..users import OFFLINE_SIGNINS_KEY

class LinkStatus(dict):
    """What :meth:`Link.check` found: ``online`` (bool), ``reason`` (why offline), ``sent``
    (sessions sent by this check), ``replayed`` (journaled writes sent), ``pending`` (sessions
    recorded on this PC still waiting for the server), ``changed`` (online/offline switched)."""


class Link:
    """``ctx.link``: this PC's link to the office server, one object for the whole run.

    ``online`` says whether the shared data (``ctx.store``) is on the office server now (always
    true without one); :meth:`check` looks at the server (every few seconds from the desktop, off
    the GUI thread) and switches: online → offline, the backend behind ``ctx.store`` becomes an
    :class:`~engine.store.OfflineStore` on this PC's file, so new recordings go on locally (a
    recording already running keeps its server store, whose segments are journaled locally);
    offline → online, the journal is replayed, the sessions recorded meanwhile and the offline
    sign-ins are sent (once each), and the server store is behind ``ctx.store`` again."""

    def __init__(self, store: SharedStore, local: Store):
        self.store, self.local = store, local
        backend = store.current()
        self._server: ServerStore | None = backend if isinstance(backend, ServerStore) else None
        self.conninfo = backend.conninfo if isinstance(backend, (ServerStore, OfflineStore)) else ""
        self.reason = backend.offline_reason if isinstance(backend, OfflineStore) else ""
        """Why the office server cannot be reached ("" while online)."""
        self._online = not isinstance(backend, OfflineStore)
        self._lock = threading.Lock()

    @property
    def has_server(self) -> bool:
        """An office server is configured (without one there is nothing to watch)."""
        return bool(self.conninfo)

    @property
    def online(self) -> bool:
        return self._online

    def check(self) -> LinkStatus:
        """One look at the office server (see the class); one check at a time."""
        with self._lock:
            if not self.has_server:
                return LinkStatus(online=True, reason="", sent=0, replayed=0, pending=0, changed=False)
            if self.online:
                return self._check_online()
            return self._try_reconnect()

    def _check_online(self) -> LinkStatus:
        st = self._server
        try:
            st.ping()
            out = LinkStatus(online=True, reason="", sent=0, replayed=0, changed=False)
            if offline_pending(self.local) or self.local.get_setting(OFFLINE_SIGNINS_KEY, []):
                out["sent"] = sync_offline(self.local, st)["sent"]   # finished after the reconnect
            out["pending"] = len(offline_pending(self.local))
            return out
        except ServerUnavailable as e:
            st.down = st.down or str(e)
            self.reason = st.down
            self._server = st                # the same server object comes back at reconnect (its journal)
            self._online = False
            self.store.swap(OfflineStore(self.local.path, key=self.local.key, conninfo=self.conninfo,
                                         reason=self.reason))
            return LinkStatus(online=False, reason=self.reason, sent=0, replayed=0,
                              pending=len(offline_pending(self.local)), changed=True)

    def _try_reconnect(self) -> LinkStatus:
        server = self._server
        try:
            if server is None:
                server = ServerStore(self.conninfo, local=self.local)
            replayed = server.reconnect()
            if replayed:
                # a consultation stopped during the outage could not be drafted (the server was away):
                # no process of this PC finishes it now, so the recovery question may offer it
                for sid in sessions.stopped_by(server, os.getpid()):
                    if workflow.record_id_for_session(server, sid) is None:
                        sessions.release(server, sid)
            sent = sync_offline(self.local, server)["sent"]
        except ServerUnavailable as e:
            if server is not None and server.down is None:
                server.down = str(e)
            self._server = server
            self.reason = str(e)
            return LinkStatus(online=False, reason=str(e), sent=0, replayed=0,
                              pending=len(offline_pending(self.local)), changed=False)
        self._server = server
        self.reason = ""
        self.store.swap(server)   # the OfflineStore stays open: a recording started offline still writes to it
        self._online = True
        return LinkStatus(online=True, reason="", sent=sent, replayed=replayed,
                          pending=len(offline_pending(self.local)), changed=True)


def check_link(ctx) -> LinkStatus:
    """``ctx.link.check()`` (see :class:`Link`)."""
    return ctx.link.check()


def sync_offline(local: Store, dst: ServerStore) -> dict[str, int]:
    """Send the sessions recorded while the server was unreachable (and their segments), each in one
    server transaction. A session already on the server (same ``uid``) is not sent again, so a
    sync cut off anywhere can simply be run again: nothing is lost and nothing is doubled."""
    sent = skipped = segments = 0
    synced = list(local.get_setting(OFFLINE_SYNCED_KEY, []))
    for uid in offline_pending(local):
        with dst.transaction():
            # no process finishes it on the server: the recovery question offers it for drafting
            copied = sessions.copy_session(local, dst, uid)
            if copied is None:
                skipped += 1
            else:
                sent += 1
                segments += copied
        synced.append(uid)
        local.set_setting(OFFLINE_SYNCED_KEY, synced)
    return {"sent": sent, "already_there": skipped, "segments": segments,
            "signins": _send_offline_sign_ins(local, dst)}


def _send_offline_sign_ins(local: Store, dst: ServerStore) -> int:
    """The offline sign-ins into the server's audit log, each once (the local list is emptied in
    the same step as the server commit succeeds; a cut-off is detected by the entry's time)."""
    pending = list(local.get_setting(OFFLINE_SIGNINS_KEY, []))
    n = 0
    for e in pending:
        with dst.transaction():
            if not audit.has_offline_sign_in(dst, e["username"], e["at"]):
                audit.append(dst, e["username"], "signin.offline", "user", e["username"], {"at": e["at"]})
                n += 1
        local.set_setting(OFFLINE_SIGNINS_KEY, pending[pending.index(e) + 1:])
    return n
