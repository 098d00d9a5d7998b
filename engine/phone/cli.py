"""``madoguchi phone ask "質問文" [--json] [--audio FILE] [--at TIME]``: one caller's question against
the office's inquiry FAQ — the FAQ answer, or a hand-off to staff and why."""
from __future__ import annotations

import datetime as dt

from ..cli_support import CliInputError


def _when(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        raise CliInputError(f"--at '{text}' is not a date and time like 2026-12-07T10:30",
                            ja="日時は 2026-12-07T10:30 の形で指定してください。") from None


def cmd_ask(args) -> int:
    from ..cli_support import context, print_json
    from .inquiry import ask
    if (args.question is None) == (args.audio is None):
        raise CliInputError("give the question as text or as --audio FILE (one of them)",
                            ja="質問を文字か音声ファイルのどちらか一つで指定してください。")
    at = _when(args.at)
    r = ask(context(args), question=args.question, audio=args.audio, at=at)
    if args.json:
        print_json(r.as_json())
        return 0
    d = r.decision
    if d.question and args.audio:
        print(f"聞き取り: {d.question}")
    if d.handoff:
        print(f"[{r.action}] {d.reason} (best {d.best or '-'}, score {d.score:.3f})")
    else:
        print(f"[answer] {d.item.id} {d.item.title} (score {d.score:.3f})")
    print(d.answer)
    if d.item:
        print(d.item.follow_up)
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("phone", help="the AI phone: answer My Number card inquiries from the office's FAQ")
    sub = p.add_subparsers(dest="phone_cmd", required=True)
    a = sub.add_parser("ask", help="answer one question from the FAQ, or say why it goes to staff")
    a.add_argument("question", nargs="?", default=None, metavar="QUESTION")
    a.add_argument("--audio", default=None, metavar="FILE", help="a recorded question (WAV/FLAC/MP3; 8 kHz μ-law works)")
    a.add_argument("--at", default=None, metavar="TIME", help="decide as at this time (office hours), e.g. 2026-12-07T10:30")
    a.add_argument("--json", action="store_true",
                   help='{"action", "answer", "faq": [{"id", "title"}], "score", "handoff", "reason", ...}')
    a.set_defaults(func=cmd_ask)
