"""CLI: ``madoguchi transcribe``, ``madoguchi record``, ``madoguchi sessions``."""
from __future__ import annotations

import sys

from ..cli_support import add_user_arg, signed_in
from ..roles import require

SPEAKER_JA = {"staff": "職員", "citizen": "相談者", "unknown": "不明"}


def _fmt_time(t: float) -> str:
    m, s = divmod(max(t, 0.0), 60)
    return f"{int(m):02d}:{s:04.1f}"


def _line(seg) -> str:
    return f"[{_fmt_time(seg.start)}–{_fmt_time(seg.end)}] {SPEAKER_JA.get(seg.speaker, seg.speaker)}: {seg.text}"


def cmd_transcribe(args) -> int:
    from engine.cli_support import CliInputError, context, print_json
    if args.final:
        if args.realtime or args.partials:
            raise CliInputError("--final decodes the whole file after it ends: it cannot be combined with "
                                "--realtime or --partials")
        from .finalpass import final_transcript
        from ..audio import FileSource
        FileSource(args.audio)   # a missing or non-audio file fails here, before the model loads
        segs = final_transcript(args.audio, context(args).config, channels=args.channels)
        if args.json:
            print_json([g.as_dict() for g in segs])
        else:
            for g in segs:
                print(_line(g), flush=True)
        return 0
    from ..audio import FileSource
    from .speakers import speaker_fn_for
    from .transcribe import Final, Partial, as_dict, make_transcriber, stream
    ctx = context(args)
    src = FileSource(args.audio, realtime=args.realtime, channels=args.channels)
    tr = make_transcriber(ctx.config, speaker_fn=speaker_fn_for(args.channels), partials=args.realtime or args.partials,
                          background=args.realtime)
    out = []
    live = sys.stderr.isatty() and not args.json
    for ev in stream(src, tr):
        if isinstance(ev, Final):
            out.append(as_dict(ev))
            if not args.json:
                if live:
                    sys.stderr.write("\r\033[K")
                print(_line(ev), flush=True)
        elif isinstance(ev, Partial):
            if args.json and args.partials:
                out.append(as_dict(ev))
            elif live:
                sys.stderr.write("\r\033[K… " + ev.text[-60:])
                sys.stderr.flush()
    if args.json:
        print_json(out)
    return 0


def cmd_record(args) -> int:
    from engine.cli_support import context, print_json
    from ..audio import MicSource, mic_from_config
    from .session import ConsultationSession
    ctx = context(args)
    if args.device is not None:
        src = MicSource(device=args.device, channels=ctx.config.get("asr.channels", 1))
    else:
        src = mic_from_config(ctx.config)
    user = require(signed_in(args, ctx), "record")
    if not args.consent:
        from ..consultation import ConsentRequired
        raise ConsentRequired("record the citizen's consent first (--consent)")
    sess = ConsultationSession(ctx, title=args.title or "", staff_user=user.username, consent=args.consent)
    sess.start(src, seconds=args.seconds)
    print(f"recording session {sess.id} (Ctrl+C to stop)", file=sys.stderr)
    try:
        for ev in sess.events():
            if getattr(ev, "final", False) and not args.json:
                print(_line(ev), flush=True)
    except KeyboardInterrupt:
        pass
    sess.stop(final_pass=not args.no_final_pass)
    if args.json:
        print_json(sess.summary())
    else:
        print(f"session {sess.id}: {sess.summary()['segments']} segments, "
              f"{sess.summary()['audio_seconds']:.1f} s of audio", file=sys.stderr)
    return 0


def cmd_sessions(args) -> int:
    from engine.cli_support import context, print_json
    from . import session as sm
    ctx = context(args)
    user = signed_in(args, ctx)
    if args.sessions_cmd == "list":
        rows = sm.list_sessions(ctx.store, unfinished=args.unfinished, user=user)
        if args.json:
            print_json(rows)
        else:
            for r in rows:
                print(f"{r['id']:>5}  {r['state']:<11} {r['audio_seconds']:7.1f}s  {r['segments']:>4} segments  {r['title']}")
        return 0
    if args.sessions_cmd == "show":
        data = sm.get_session(ctx.store, args.id, user=user)
        if args.json:
            print_json(data)
        else:
            s = data["session"]
            print(f"session {s['id']} ({s['state']}, {s['audio_seconds']:.1f} s)")
            for seg in data["segments"]:
                print(f"[{_fmt_time(seg['start'])}–{_fmt_time(seg['end'])}] "
                      f"{SPEAKER_JA.get(seg['speaker'], seg['speaker'])}: {seg['text']}")
        return 0
    if args.sessions_cmd == "recover":
        done = sm.recover_sessions(ctx, user, [args.id] if args.id else None, final_pass=args.final_pass)
        if args.json:
            print_json(done)
        else:
            for d in done:
                print(f"session {d['id']}: recovered {d['audio_seconds']:.1f} s of audio, {d['segments']} segments")
        return 0
    return 2


def register(subparsers) -> None:
    t = subparsers.add_parser("transcribe", help="transcribe an audio file (WAV/FLAC/MP3/M4A)")
    t.add_argument("audio")
    t.add_argument("--realtime", action="store_true", help="pace the file in real time (as a microphone)")
    t.add_argument("--json", action="store_true", help="print a JSON array of {start, end, speaker, text, final} "
                   "(with --final also words: [{start, end, word, probability}])")
    t.add_argument("--final", action="store_true",
                   help="print the final pass (the vote over several decodes the desktop runs after 停止) "
                        "instead of the live result")
    t.add_argument("--partials", action="store_true", help="also output partial (not yet final) segments")
    t.add_argument("--channels", type=int, choices=(1, 2), default=1,
                   help="2: staff on the left channel, citizen on the right")
    t.set_defaults(func=cmd_transcribe)

    r = subparsers.add_parser("record", help="record a consultation from the microphone into a new session")
    r.add_argument("--seconds", type=float, default=None, help="stop after N seconds (default: Ctrl+C)")
    r.add_argument("--device", default=None, help="input device name or index (default: asr.device)")
    r.add_argument("--title", default="")
    r.add_argument("--no-final-pass", action="store_true", help="skip the re-transcription after stopping")
    r.add_argument("--json", action="store_true")
    r.add_argument("--consent", action="store_true", help="the citizen has consented to the recording (相談者の同意)")
    add_user_arg(r)
    r.set_defaults(func=cmd_record)

    s = subparsers.add_parser("sessions", help="list, show or recover recorded sessions")
    ssub = s.add_subparsers(dest="sessions_cmd", required=True)
    sl = ssub.add_parser("list")
    sl.add_argument("--unfinished", action="store_true", help="only sessions cut off by a crash")
    sl.add_argument("--json", action="store_true")
    sh = ssub.add_parser("show")
    sh.add_argument("id", type=int)
    sh.add_argument("--json", action="store_true")
    sr = ssub.add_parser("recover", help="recover sessions cut off by a crash (all unfinished ones by default)")
    sr.add_argument("id", type=int, nargs="?")
    sr.add_argument("--final-pass", action="store_true", help="also re-transcribe the recovered audio")
    sr.add_argument("--json", action="store_true")
    for p in (sl, sh, sr):
        add_user_arg(p)
    s.set_defaults(func=cmd_sessions)
