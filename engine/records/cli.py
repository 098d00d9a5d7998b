"""CLI: ``madoguchi draft``, ``madoguchi records …``.

Sign-in for commands that act for a person: ``--user NAME`` (see :func:`engine.cli_support.signed_in`).
"""
from __future__ import annotations

import sys
from pathlib import Path

from ..cli_support import CliInputError, add_user_arg, signed_in


# ----------------------------------------------------------------------------- draft

def cmd_draft(args) -> int:
    from engine.cli_support import context, print_json
    from engine.consultation import draft_record
    ctx = context(args)
    if args.session is None and not args.transcript:
        raise CliInputError("give TRANSCRIPT.json or --session ID", ja="文字起こしを指定してください。")
    use_llm = ctx.config["llm.enabled"] and not args.no_llm
    d, rec = draft_record(ctx, session_id=args.session, transcript=Path(args.transcript) if args.transcript else None,
                          template=args.template, use_llm=use_llm, model=args.model,
                          save_as=signed_in(args, ctx) if args.save else None, case_number=args.case_number or "")
    if use_llm and d.method in ("extractive", "mixed"):
        print(f"warning: the language model was not used for every part ({d.method} draft): "
              f"{d.stats.get('llm_error', 'out of time')}", file=sys.stderr)
    if rec is not None:
        print(f"saved as record {rec.id} (version {rec.version}, {rec.state_ja})", file=sys.stderr)
    if args.json:
        print_json(d.to_dict())
    else:
        from .export import to_text
        print(to_text(d))
    return 0


# ----------------------------------------------------------------------------- records

def cmd_records(args) -> int:
    from engine.cli_support import context, print_json
    from . import workflow
    ctx = context(args)
    user = signed_in(args, ctx)
    c = args.records_cmd
    if c == "list":
        recs = workflow.list_records(ctx.store, user, state=args.state, owner=args.owner)
        if args.json:
            print_json([r.summary() for r in recs])
        else:
            for r in recs:
                print(f"{r.id:>5}  {r.state_ja:<4}  v{r.version}  rev{r.revision}  {r.owner:<12} "
                      f"{r.case_number:<10} {r.template}  要確認{len(r.content.flagged())}")
        return 0
    if c == "show":
        rec = workflow.get(ctx.store, user, args.id, args.version)
        if args.json:
            print_json(rec.to_dict())
        else:
            from .export import to_text
            print(f"record {rec.id}  {rec.state_ja}  version {rec.version}  revision {rec.revision}")
            if rec.comment:
                print(f"差戻しコメント: {rec.comment}")
            print(to_text(rec.content, show_flags=True))
        return 0
    if c == "submit":
        rec = workflow.submit(ctx.store, user, args.id, args.revision)
    elif c == "approve":
        rec = workflow.get(ctx.store, user, args.id)
        if args.ack_flags:
            for sec, st in rec.content.flagged():
                print(f"要確認 [{sec.title}] {st.text} — {'; '.join(f.message for f in st.flags)}", file=sys.stderr)
            for f in rec.content.flags:
                print(f"注意 {f.message} {f.detail}", file=sys.stderr)
        rec = workflow.approve(ctx.store, user, args.id, args.revision, acknowledge_flags=args.ack_flags)
    elif c == "return":
        rec = workflow.return_record(ctx.store, user, args.id, args.revision, args.comment)
    elif c == "export":
        from . import export
        out = export.export_record(ctx, user, args.id, args.format, Path(args.output) if args.output else None,
                                   draft=args.draft)
        print(str(out))
        return 0
    else:
        return 2
    if args.json:
        print_json(rec.summary())
    else:
        print(f"record {rec.id}: {rec.state_ja} (version {rec.version}, revision {rec.revision})")
    return 0


# ----------------------------------------------------------------------------- registration

def register(sub) -> None:
    d = sub.add_parser("draft", help="draft a consultation record from a transcript")
    d.add_argument("transcript", nargs="?", help="TRANSCRIPT.json as printed by `madoguchi transcribe --json`")
    d.add_argument("--session", type=int, default=None, help="draft from a stored session instead")
    d.add_argument("--template", default=None, help="template name in resources/templates (default: config)")
    d.add_argument("--model", default=None, help="GGUF model name (default: config llm.model)")
    d.add_argument("--no-llm", action="store_true", help="extractive draft only (no language model)")
    d.add_argument("--json", action="store_true")
    d.add_argument("--save", action="store_true", help="store the draft as a record (needs --user)")
    d.add_argument("--case-number", default="")
    add_user_arg(d)
    d.set_defaults(func=cmd_draft)

    r = sub.add_parser("records", help="list, show, submit, approve, return or export records")
    rs = r.add_subparsers(dest="records_cmd", required=True)
    p = rs.add_parser("list")
    p.add_argument("--state", choices=("draft", "submitted", "approved", "returned"))
    p.add_argument("--owner")
    p.add_argument("--json", action="store_true")
    add_user_arg(p)
    p = rs.add_parser("show")
    p.add_argument("id", type=int)
    p.add_argument("--version", type=int)
    p.add_argument("--json", action="store_true")
    add_user_arg(p)
    for name in ("submit", "approve", "return"):
        p = rs.add_parser(name)
        p.add_argument("id", type=int)
        p.add_argument("--revision", type=int, default=None, help="expected revision (optimistic lock)")
        p.add_argument("--json", action="store_true")
        add_user_arg(p)
        if name == "approve":
            p.add_argument("--ack-flags", action="store_true",
                           help="print every 要確認 flag and acknowledge having reviewed them")
        if name == "return":
            p.add_argument("--comment", required=True, help="差戻し comment")
    p = rs.add_parser("export")
    p.add_argument("id", type=int)
    p.add_argument("--format", choices=("pdf", "docx", "txt"), default="pdf")
    p.add_argument("--output", "-o", default=None)
    p.add_argument("--draft", action="store_true", help="export the current version even if not approved")
    add_user_arg(p)
    r.set_defaults(func=cmd_records)
