"""Office server mode (PostgreSQL): :mod:`.admin` (IT's commands init/migrate/check/password as
functions), :mod:`.link` (the desktop's link, ``ctx.link``, and the offline sync), :mod:`.cli`
(``madoguchi server …``).

The server is the one named by the ``office_server`` config key (MSI property ``OFFICESERVER``):
a host (database and user ``madoguchi``) or a ``postgresql://`` URL; with ``server.sslrootcert``
(the office CA) TLS is verified (``sslmode=verify-full``), without it TLS is used when offered but
unverified, and ``check`` says so.
"""
