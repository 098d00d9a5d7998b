"""``madoguchi mirror …``: diagnose photos, import a folder into the ledger, export, train."""
from __future__ import annotations

import sys
from pathlib import Path

from ..errors import MadoguchiError
from ..cli_support import add_user_arg, signed_in


def cmd_diagnose(args) -> int:
    from ..cli_support import context, print_json
    from .diagnose import diagnose
    from .grading import load_table, table_path
    from .intake import PhotoError
    ctx = context(args)
    table = load_table(table_path(ctx.data_dir))
    from .model import default_model_path, load_model
    model = None if args.no_model else load_model(default_model_path(ctx.data_dir))
    if args.overlay:
        Path(args.overlay).mkdir(parents=True, exist_ok=True)
    status = 0
    results = []
    for p in args.photos:
        try:
            insp = diagnose(p, table=table, model=model)
        except PhotoError as e:
            status = 2
            print(f"error: {e}", file=sys.stderr)
            if args.json:
                results.append({"photo": str(p), "grade": None, "findings": [], "quality": None, "error": str(e),
                                "error_ja": e.ja})
            continue
        if args.overlay:
            from .overlay import save_overlay
            out = save_overlay(insp, Path(args.overlay))
            insp_json = insp.to_json()
            insp_json["overlay"] = str(out)
        else:
            insp_json = insp.to_json()
        if args.json:
            insp_json.pop("mirrors", None) if not args.verbose else None
            results.append(insp_json)
        else:
            g = insp.grade or ("要確認" if insp.quality.ok else "判定不可")
            print(f"{p}: {g}" + ("  (要確認)" if insp.needs_review and insp.grade else ""))
            for f in insp.findings:
                flag = " ?" if f.uncertain else ""
                print(f"    {f.label_ja} 重症度{f.severity} 確信度{f.confidence:.2f}{flag}")
            for m in insp.quality.messages:
                print(f"    {m}")
    if args.json:
        print_json(results if len(results) != 1 else results[0])
    return status


def cmd_import(args) -> int:
    from ..cli_support import context, print_json
    from .ledger import import_folder
    ctx = context(args)
    last = None
    for ev in import_folder(ctx, args.folder, user=signed_in(args, ctx), recursive=not args.no_recursive):
        last = ev
        if not args.quiet:
            tag = {"imported": "+", "duplicate": "=", "failed": "!", "no_id": "?"}.get(ev.status, " ")
            extra = f" {ev.grade or '要確認'}" if ev.status == "imported" else (f" {ev.message}" if ev.message else "")
            print(f"[{ev.done}/{ev.total}] {tag} {ev.path.name}{extra}", file=sys.stderr)
    summary = last.summary if last else {"total": 0}
    if args.json:
        print_json(summary)
    else:
        print(", ".join(f"{k} {v}" for k, v in summary.items()))
    return 0


def cmd_export(args) -> int:
    from ..cli_support import context
    from .ledger import export_csv, export_xlsx
    ctx = context(args)
    if not args.xlsx and not args.csv:
        raise MadoguchiError("give --xlsx FILE and/or --csv FILE", ja="出力先のファイルを指定してください。")
    user = signed_in(args, ctx)
    if args.xlsx:
        n = export_xlsx(ctx, args.xlsx, latest_only=args.latest, user=user)
        print(f"{n} rows written to {args.xlsx}")
    if args.csv:
        n = export_csv(ctx, args.csv, latest_only=args.latest, user=user)
        print(f"{n} rows written to {args.csv}")
    return 0


def cmd_confirm(args) -> int:
    from ..cli_support import context
    from .ledger import confirm
    ctx = context(args)
    confirm(ctx, args.inspection, args.grade, user=signed_in(args, ctx), reason=args.reason or "")
    print(f"inspection {args.inspection}: {args.grade}")
    return 0


def cmd_train(args) -> int:
    from ..cli_support import context
    try:
        from . import train
    except ImportError as e:   # torch is a development dependency
        raise MadoguchiError(f"training needs torch ({e}); install the dev extras",
                             ja="学習には torch が必要です。開発用の追加パッケージを導入してください。") from e
    ctx = context(args)
    if args.from_ledger:
        out = train.train_from_ledger(ctx, minutes=args.minutes, seed=args.seed)
    else:
        out = train.train_synthetic(samples=args.samples, minutes=args.minutes, seed=args.seed,
                                    out_dir=Path(args.out) if args.out else None,
                                    cache=Path(args.cache) if args.cache else None,
                                    init=Path(args.init) if args.init else None)
    print(f"model written to {out}")
    return 0


def register(subparsers) -> None:
    m = subparsers.add_parser("mirror", help="curve-mirror (カーブミラー) diagnosis and inspection ledger")
    sub = m.add_subparsers(dest="mirror_cmd", required=True)

    d = sub.add_parser("diagnose", help="grade photos (Ⅰ–Ⅳ) with findings")
    d.add_argument("photos", nargs="+", metavar="PHOTO")
    d.add_argument("--json", action="store_true", help="JSON per photo: {grade, findings, quality, …}")
    d.add_argument("--overlay", metavar="DIR", help="write the photo with the findings drawn into DIR")
    d.add_argument("--no-model", action="store_true", help="geometry only (no CNN)")
    d.add_argument("--verbose", action="store_true", help="include face outlines in the JSON")
    d.set_defaults(func=cmd_diagnose)

    i = sub.add_parser("import", help="import a folder of photos into the ledger (resumable)")
    i.add_argument("folder", metavar="DIR")
    add_user_arg(i)
    i.add_argument("--no-recursive", action="store_true")
    i.add_argument("--json", action="store_true")
    i.add_argument("--quiet", action="store_true")
    i.set_defaults(func=cmd_import)

    e = sub.add_parser("export", help="export the ledger to XLSX and/or CSV")
    e.add_argument("--xlsx", metavar="FILE")
    e.add_argument("--csv", metavar="FILE")
    e.add_argument("--latest", action="store_true", help="only the latest inspection per mirror")
    add_user_arg(e)
    e.set_defaults(func=cmd_export)

    c = sub.add_parser("confirm", help="confirm or override the grade of an inspection")
    c.add_argument("inspection", type=int)
    c.add_argument("grade", choices=["Ⅰ", "Ⅱ", "Ⅲ", "Ⅳ", "1", "2", "3", "4"])
    add_user_arg(c)
    c.add_argument("--reason", default="")
    c.set_defaults(func=cmd_confirm)

    t = sub.add_parser("train", help="train the defect CNN (synthetic scenes, or the ledger's confirmed grades)")
    t.add_argument("--from-ledger", action="store_true", help="fine-tune on inspector-confirmed photos")
    t.add_argument("--samples", type=int, default=6000)
    t.add_argument("--minutes", type=float, default=12.0)
    t.add_argument("--seed", type=int, default=1)
    t.add_argument("--out", help="output folder (default resources/mirrors for synthetic training)")
    t.add_argument("--cache", metavar="DIR", help="folder of generated scene chunks (reused; resumable)")
    t.add_argument("--init", metavar="MODEL", help="start from this model's weights (its .pt beside the .onnx)")
    t.set_defaults(func=cmd_train)
