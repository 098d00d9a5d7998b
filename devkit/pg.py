"""A real PostgreSQL (Debian's package) on loopback for the office-server tests and benchmarks.

Started once per process on first use (``initdb`` + ``pg_ctl`` as the postgres user when
running as root, on a port the system picks, fsync off, niced) and stopped at exit. Each
test gets a fresh database cloned from a migrated template (``CREATE DATABASE … TEMPLATE``).
The pytest fixtures built on it are in ``tests/server_pg.py``.
"""
from __future__ import annotations

import atexit
import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


class PostgresMissing(RuntimeError):
    """No PostgreSQL on this machine (the tests skip, a benchmark says so)."""


_server: "PgServer | None" = None
_counter = itertools.count(1)


def _bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if found:
        return Path(found[-1]).parent
    w = shutil.which("pg_ctl")
    return Path(w).parent if w else None


def _ephemeral_port() -> int:
    """A port the system has just found free (not a fixed one: two suites, in two worktrees, run
    side by side, and a server paused by one test must find its port still free on resume)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def make_ca(prefix: Path, name: str) -> Path:
    """A CA key and certificate (``prefix``.key/.crt); returns the certificate."""
    _openssl("req", "-x509", "-new", "-nodes", "-newkey", "rsa:2048", "-days", "2", "-subj", f"/CN={name}",
             "-keyout", f"{prefix}.key", "-out", f"{prefix}.crt")
    return Path(f"{prefix}.crt")


def issue_cert(ca: Path, prefix: Path, cn: str, san: str) -> None:
    """``prefix``.key/.crt for ``cn`` with subjectAltName ``san``, signed by the CA at ``ca``.key/.crt."""
    ext = Path(f"{prefix}.ext")
    ext.write_text(f"subjectAltName={san}\n")
    _openssl("req", "-new", "-nodes", "-newkey", "rsa:2048", "-subj", f"/CN={cn}", "-keyout", f"{prefix}.key",
             "-out", f"{prefix}.csr")
    _openssl("x509", "-req", "-in", f"{prefix}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key", "-CAcreateserial",
             "-days", "2", "-out", f"{prefix}.crt", "-extfile", str(ext))
    for suffix in (".csr", ".ext"):
        Path(f"{prefix}{suffix}").unlink()


class PgServer:
    def __init__(self, tls: bool = False):
        self.bindir = _bindir()
        if self.bindir is None:
            raise PostgresMissing("PostgreSQL is not installed (make test installs the postgresql package)")
        self.root = Path(tempfile.mkdtemp(prefix="madoguchi-pg-"))
        self.data = self.root / "data"
        self.as_postgres = os.geteuid() == 0
        if self.as_postgres:
            shutil.chown(self.root, "postgres")
            os.chmod(self.root, 0o755)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                  "--locale=C.UTF-8", "--no-sync")
        extra = ""
        if tls:  # an office CA (self.ca_cert) that signed the server's certificate for localhost/127.0.0.1
            self.ca_cert = make_ca(self.root / "ca", "Madoguchi test office CA")
            issue_cert(self.root / "ca", self.data / "server", "localhost", "DNS:localhost,IP:127.0.0.1")
            for f in ("server.key", "server.crt"):
                os.chmod(self.data / f, 0o600)
                if self.as_postgres:
                    shutil.chown(self.data / f, "postgres")
            extra = " -c ssl=on"
        for port in (_ephemeral_port() for _ in range(50)):
            self.port = port      # another server may take a free port between the check and the start
            self.opts = (f"-p {port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=off "
                         "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200" + extra)
            try:
                self.resume()
                break
            except RuntimeError:
                log = (self.root / "log").read_text(errors="replace") if (self.root / "log").exists() else ""
                if "could not bind" not in log and "could not create any TCP/IP sockets" not in log:
                    raise
                (self.root / "log").unlink()
        else:
            raise RuntimeError("no free port for PostgreSQL after 50 tries")
        self.running = True
        self.admin("CREATE DATABASE madoguchi_template")
        from engine.store import ServerStore
        ServerStore(self.url("madoguchi_template")).close()   # migrate once; tests clone it

    def _run(self, tool: str, *args: str) -> None:
        cmd = ["nice", "-n", "10", str(self.bindir / tool), *args]
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--"] + cmd
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError(f"{tool} failed: {r.stderr or r.stdout}")

    def url(self, db: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{db}?sslmode=disable"

    def admin(self, sql: str, params=()):
        import psycopg
        with psycopg.connect(self.url(), autocommit=True) as c:
            cur = c.execute(sql, params)
            return cur.fetchall() if cur.description else None

    def require_password(self, role: str, password: str) -> None:
        """A login role that must give its password (scram) over TCP; other roles stay on trust."""
        self.admin(f"CREATE ROLE {role} LOGIN SUPERUSER PASSWORD '{password}'")
        hba = self.data / "pg_hba.conf"
        hba.write_text(f"host all {role} 127.0.0.1/32 scram-sha-256\n" + hba.read_text())
        self.admin("SELECT pg_reload_conf()")

    def fresh_database(self) -> str:
        name = f"t{os.getpid()}_{next(_counter)}"
        self.admin(f"CREATE DATABASE {name} TEMPLATE madoguchi_template")
        return name

    def drop_database(self, name: str) -> None:
        self.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def pause(self) -> None:
        """Take the server away (the office network is down); :meth:`resume` brings it back."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def resume(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"), "-w", "-o", self.opts, "start")

    def stop(self, keep_log: Path | None = None) -> None:
        """Stop and remove the server; ``keep_log``: copy its log there first (benchmarks)."""
        if keep_log is not None and (self.root / "log").exists():
            shutil.copyfile(self.root / "log", keep_log)
        if self.running:
            self.running = False
            try:
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
            except RuntimeError as e:   # a test that paused it and failed before resuming
                if "does not exist" not in str(e):
                    raise
            finally:
                shutil.rmtree(self.root, ignore_errors=True)


def server() -> PgServer:
    global _server
    if _server is None:
        _server = PgServer()
        atexit.register(_server.stop)
    return _server
