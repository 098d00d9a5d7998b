"""Benchmark of live transcription (issue 3) → docs/benchmarks.md section "asr".

Runs on the synthesized counter dialogues (resources/dialogues, devkit/audiogen.py):
- final-pass CER with and without the glossary as hotwords (whisper-base, beam 5, VAD);
- live CER, Final latency (end of utterance → Final), first-Partial latency, RTF, CPU share and
  peak RAM through the real ConsultationSession with a real-time paced FileSource;
- speaker attribution accuracy (live online split and final-pass 2-means);
- text produced on 60 s of silence and 60 s of room noise;
- kill -9 at a random moment, N times: audio lost and final segments lost.

    .venv/bin/python bench/asr.py [--quick] [--kills 20] [--dialogues welfare,housing]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._report import write_section  # noqa: E402
from engine.asr import session as sm  # noqa: E402
from engine.asr import sessions  # noqa: E402
from engine.asr.finalpass import label_speakers, transcribe_whole  # noqa: E402
from engine.asr.metrics import cer  # noqa: E402
from engine.asr.transcribe import CONTEXT_MARGIN, Final, Partial, StreamingTranscriber, hotwords  # noqa: E402
from engine.asr.vad import MIN_SILENCE  # noqa: E402
from engine.audio import FileSource, Level, SAMPLE_RATE  # noqa: E402
from engine.context import open_context  # noqa: E402
from engine.models import load_whisper  # noqa: E402
from devkit.audiogen import conversation, dialogue_ids, room_noise  # noqa: E402
from devkit.crashkit import SESSION_CHILD  # noqa: E402


def pct(xs, q):
    return float(np.percentile(xs, q)) if xs else float("nan")


def overlap(a0, a1, b0, b1):
    return max(0.0, min(a1, b1) - max(a0, b0))


def speaker_acc(dialogues):
    """``dialogues``: per dialogue a list of (label, truth). Raw accuracy, and accuracy after the
    UI's one-click swap where it helps — per dialogue, as the swap is per session."""
    swap = {"staff": "citizen", "citizen": "staff"}
    n = sum(len(d) for d in dialogues)
    if not n:
        return float("nan"), float("nan")
    raw = sum(a == b for d in dialogues for a, b in d)
    best = sum(max(sum(a == b for a, b in d), sum(swap.get(a, a) == b for a, b in d)) for d in dialogues)
    return raw / n, best / n


def final_pass_figures(convs, model):
    """Final pass three ways: the vote of all decodes with the glossary (the product default),
    the same without the glossary (is it kept?), and one decode alone (what the vote adds)."""
    from engine.asr.finalpass import SYSTEMS
    rows = {}
    for key, cfg in (("vote", {"asr.glossary": True}), ("no_glossary", {"asr.glossary": False}),
                     ("single", {"asr.glossary": True, "asr.final_systems": 1})):
        cfg = dict(cfg, **{"asr.language": "ja"})
        refs, hyps, spk = [], [], []
        t = time.perf_counter()
        for c in convs:
            spans = transcribe_whole(c.audio, _Cfg(cfg), model)
            refs.append(c.reference)
            hyps.append("".join(s[2] for s in spans))
            if key == "vote":
                spk.append([])
                labels = label_speakers(c.audio, [(a, b) for a, b, _ in spans])
                for (a, b, _), lab in zip(spans, labels):
                    turn = max(c.turns, key=lambda tt: overlap(a, b, tt.start, tt.end))
                    spk[-1].append((lab, turn.speaker))
        secs = time.perf_counter() - t
        rows[key] = {"cer": cer("".join(refs), "".join(hyps)),
                     "cer_v": cer("".join(refs), "".join(hyps), variants=True),
                     "per": [round(cer(r, h), 3) for r, h in zip(refs, hyps)],
                     "rtf": secs / sum(c.seconds for c in convs), "speakers": spk,
                     "systems": cfg.get("asr.final_systems", len(SYSTEMS))}
        print(f"  final pass {key}: CER {rows[key]['cer']:.3f} RTF {rows[key]['rtf']:.2f}", flush=True)
    return rows


class _Cfg(dict):
    def get(self, k, d=None):
        return super().get(k, d)


def live_figures(convs, data_dir):
    ctx = open_context(data_dir)
    out = {"refs": [], "hyps": [], "lat_final": [], "lat_partial": [], "spk": [], "cpu": 0.0, "wall": 0.0,
           "audio": 0.0, "decode": 0.0}
    try:
        for c in convs:
            wav = c.write(Path(data_dir) / f"{c.id}.wav")
            stamps = []

            def on_event(ev, stamps=stamps):
                stamps.append((time.monotonic(), ev))
            sess = sm.ConsultationSession(ctx)
            cpu0, wall0 = time.process_time(), time.monotonic()
            sess.start(FileSource(wav, realtime=True), on_event=on_event)
            sess.wait()
            cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
            decode = sess._transcriber.decode_seconds
            sess.stop(final_pass=False)
            levels = [(t, e) for t, e in stamps if isinstance(e, Level)]
            t0 = levels[0][0] - 0.1 - levels[0][1].time        # wall time of audio time 0
            finals = [(t, e) for t, e in stamps if isinstance(e, Final)]
            partials = [(t, e) for t, e in stamps if isinstance(e, (Partial, Final))]
            out["refs"].append(c.reference)
            out["hyps"].append("".join(e.text for _, e in finals))
            for turn in c.turns:
                mine = [(t, e) for t, e in finals if overlap(e.start, e.end, turn.start, turn.end) > 0.3 * (e.end - e.start)]
                if mine:
                    out["lat_final"].append(max(t for t, _ in mine) - (t0 + turn.end))
                first = [t for t, e in partials if e.end > turn.start and e.start < turn.end]
                if first:
                    out["lat_partial"].append(min(first) - (t0 + turn.start))
            out["spk"].append([])
            for _, e in finals:
                turn = max(c.turns, key=lambda tt: overlap(e.start, e.end, tt.start, tt.end))
                out["spk"][-1].append((e.speaker, turn.speaker))
            out["cpu"] += cpu
            out["wall"] += wall
            out["audio"] += c.seconds
            out["decode"] += decode
            print(f"  live {c.id}: CER {cer(c.reference, out['hyps'][-1]):.3f}", flush=True)
    finally:
        ctx.close()
    return out


def hallucination_figures(model):
    res = {}
    for kind in ("silence", "noise"):
        audio = np.zeros(60 * SAMPLE_RATE, np.float32) if kind == "silence" else room_noise(60, -35, seed=11)
        tr = StreamingTranscriber(model, hotwords=hotwords())
        text = ""
        for i in range(0, len(audio), 1600):
            text += "".join(e.text for e in tr.feed(audio[i:i + 1600]))
        text += "".join(e.text for e in tr.flush())
        segs, _ = model.transcribe(audio, language="ja", beam_size=5, vad_filter=True, hotwords=hotwords())
        res[kind] = (len(text), len("".join(s.text for s in segs)))
    return res


def kill_figures(conv, runs, tmp):
    wav = conv.write(Path(tmp) / "kill.wav")
    results = []
    for i in range(runs):
        data = Path(tmp) / f"kill{i}"
        script = Path(tmp) / "child.py"
        script.write_text(SESSION_CHILD.format(root=str(ROOT), data=str(data), wav=str(wav)))
        p = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
        msgs = []
        reader = threading.Thread(target=lambda: msgs.extend(json.loads(ln) for ln in p.stdout), daemon=True)
        reader.start()
        while not any("level" in m for m in list(msgs)):
            time.sleep(0.05)
        time.sleep(random.uniform(0.5, conv.seconds - 2))
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        reader.join(5)
        written = max((m["level"] for m in msgs if "level" in m), default=0.0)
        finals = {m["final"]: m["text"] for m in msgs if "final" in m}
        sid = next(m["session"] for m in msgs if "session" in m)
        ctx = open_context(data)
        try:
            found = [u["id"] for u in sm.unfinished_sessions(ctx.store)]
            info = sm.recover(ctx, sid)
            rows = {r["id"]: r["text"] for r in sessions.segments(ctx.store, sid)}
        finally:
            ctx.close()
        lost_final = sum(1 for k, v in finals.items() if rows.get(k) != v)
        results.append({"offered": found == [sid], "lost_audio": written - info["audio_seconds"],
                        "lost_finals": lost_final, "finals": len(finals)})
        print(f"  kill {i + 1}/{runs}: at {written:.1f} s, lost {written - info['audio_seconds']:.2f} s, "
              f"{lost_final}/{len(finals)} finals lost", flush=True)
    return results


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="two dialogues, 5 kills")
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--dialogues", default="")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    names = args.dialogues.split(",") if args.dialogues else dialogue_ids()
    kills = args.kills
    if args.quick:
        names, kills = names[:2], min(kills, 5)
    convs = [conversation(n, seed=i) for i, n in enumerate(names)]
    total = sum(c.seconds for c in convs)
    print(f"{len(convs)} dialogues, {total:.0f} s of audio", flush=True)
    model = load_whisper("whisper-base")
    loads = [os.getloadavg()[0]]
    print(f"load average at start: {loads[0]:.1f}", flush=True)

    print("final pass …", flush=True)
    fp = final_pass_figures(convs, model)
    print("hallucination …", flush=True)
    hall = hallucination_figures(model)
    loads.append(os.getloadavg()[0])
    print(f"live (real time) … load average {loads[-1]:.1f}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        live = live_figures(convs, Path(tmp) / "live")
        print("kill -9 …", flush=True)
        kr = kill_figures(convs[0], kills, tmp) if kills else []
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    fp_cer, fp_cer_nog = fp["vote"]["cer"], fp["no_glossary"]["cer"]
    live_cer = cer("".join(live["refs"]), "".join(live["hyps"]))
    live_cer_v = cer("".join(live["refs"]), "".join(live["hyps"]), variants=True)
    lf, lp = live["lat_final"], live["lat_partial"]
    spk_live = speaker_acc(live["spk"])
    spk_fp = speaker_acc(fp["vote"]["speakers"])
    cores = os.cpu_count() or 1
    loads.append(os.getloadavg()[0])
    load_txt = f"{min(loads):.1f}–{max(loads):.1f}" if max(loads) - min(loads) >= 0.1 else f"{loads[0]:.1f}"
    ok = lambda b: "✅" if b else "❌"  # noqa: E731
    lines = [
        f"{len(convs)} synthesized two-person counter dialogues ({', '.join(names)}; {total:.0f} s; "
        "pyopenjtalk voices at two pitches + room noise), whisper-base int8. Live: silero VAD ends an utterance "
        f"after {MIN_SILENCE} s of silence; its Final is decoded once on a worker thread (2 threads, beam 5, the glossary "
        "as initial prompt; greedy while a backlog exists) behind the previous utterance: that audio in front, its text "
        f"forced as the prefix, the encoder on that audio + {CONTEXT_MARGIN:g} s only (the full 30 s window when decoded "
        "alone); partials on a second 1-thread instance "
        "(greedy, encoder on the utterance + 3 s only, throttled, skipped when behind). "
        f"Load average while measuring: {load_txt} on {cores} cores"
        f"{' (other jobs shared the machine: latency and RTF are upper bounds)' if max(loads) > 1.5 else ''}.",
        "",
        "| figure | value | floor |",
        "|---|---|---|",
        f"| final-pass CER: vote of {fp['vote']['systems']} decodes² (beam 5, glossary) | {fp_cer:.1%} (per dialogue {fp['vote']['per']}); "
        f"{fp['vote']['cer_v']:.1%} with spelling variants unified¹ | ≤ 10 % {ok(fp_cer <= 0.10)} |",
        f"| final-pass CER, one decode alone (`asr.final_systems = 1`) | {fp['single']['cer']:.1%} (per dialogue {fp['single']['per']}) | |",
        f"| final-pass CER without glossary (vote) | {fp_cer_nog:.1%} | glossary kept only if it helps: {'kept' if fp_cer < fp_cer_nog else 'NOT helping'} |",
        f"| live CER (Finals as emitted, real-time paced) | {live_cer:.1%} = {live_cer / max(fp_cer, 1e-9):.2f} × final; "
        f"{live_cer_v:.1%} with variants unified¹ | ≤ 1.3 × final {ok(live_cer <= 1.3 * fp_cer)} |",
        f"| Final latency after end of utterance: median / p90 | {pct(lf, 50):.2f} s / {pct(lf, 90):.2f} s (n={len(lf)}) | ≤ 2.0 / 3.5 s {ok(pct(lf, 50) <= 2.0 and pct(lf, 90) <= 3.5)} |",
        f"| first Partial after speech onset: median / p90 | {pct(lp, 50):.2f} s / {pct(lp, 90):.2f} s | ≤ 1.0 s {ok(pct(lp, 50) <= 1.0)} |",
        f"| real-time factor while streaming (Whisper time / audio time) | {live['decode'] / live['audio']:.2f} | < 1 |",
        f"| CPU share while streaming (process CPU / wall / {cores} cores) | {live['cpu'] / live['wall'] / cores:.0%} | leaves room for the LLM |",
        f"| final pass RTF (whole recording, after 停止, in the background): vote / one decode | {fp['vote']['rtf']:.2f} / {fp['single']['rtf']:.2f} | |",
        f"| peak RAM of the benchmark process | {peak_mb:.0f} MB | |",
        f"| text on 60 s silence: streaming / final pass | {hall['silence'][0]} / {hall['silence'][1]} chars | 0 {ok(hall['silence'] == (0, 0))} |",
        f"| text on 60 s room noise (-35 dBFS): streaming / final pass | {hall['noise'][0]} / {hall['noise'][1]} chars | 0 {ok(hall['noise'] == (0, 0))} |",
        f"| speaker accuracy, live online split (raw / up to one swap) | {spk_live[0]:.0%} / {spk_live[1]:.0%} | |",
        f"| speaker accuracy, final-pass 2-means (raw / up to one swap) | {spk_fp[0]:.0%} / {spk_fp[1]:.0%} | |",
    ]
    if kr:
        lost = [r["lost_audio"] for r in kr]
        lines.append(f"| kill -9 at a random moment ({len(kr)} runs): recovery offered / max audio lost / finals lost "
                     f"| {sum(r['offered'] for r in kr)}/{len(kr)} / {max(lost):.2f} s / "
                     f"{sum(r['lost_finals'] for r in kr)} of {sum(r['finals'] for r in kr)} "
                     f"| ≤ 1 s, 0 {ok(max(lost) <= 1.0 and not any(r['lost_finals'] for r in kr))} |")
    lines += ["", "Speaker accuracy 'raw' counts the first voice as 職員 (one dialogue opens with the citizen); "
              "'up to one swap' is after the UI's one-click swap where it helps, per dialogue (the swap is per session). Latency is measured on the wall clock against "
              "the audio clock of a real-time paced file through the real ConsultationSession. "
              "¹ `engine.asr.metrics.VARIANTS`: the same word in another standard spelling (分かりました/わかりました, "
              "下さい/ください, ヶ月/か月, 頃/ごろ, 申し込み/申込み …) counted as correct, on both sides alike; the floors are "
              "checked on the plain figure. ² `engine.asr.finalpass.SYSTEMS`: faster-whisper's own VAD windows over the "
              "whole recording, and the live utterances merged into chunks of ≤ 28, 24 and 20 s (the glossary as hotwords "
              "or as the initial prompt, with or without the previous chunk's text); a character-level majority vote "
              "(ROVER) per utterance. These decoding settings were chosen on these same five dialogues (there is no "
              "separate development set): read the figure as tuned, not held out."]
    md = "\n".join(lines)
    print(md)
    if not args.no_write:
        print("written to", write_section("asr", md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
