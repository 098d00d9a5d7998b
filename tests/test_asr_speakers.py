"""Speaker attribution: two channels by energy, one microphone by an unsupervised 2-way split."""
import numpy as np
import pytest

from engine.asr.speakers import ChannelSpeakers, OnlineTwoSpeakers, features, pitch_track, split_two
from devkit.audiogen import conversation

RATE = 16000


def test_pitch_track_finds_f0():
    t = np.arange(RATE) / RATE
    for f0 in (110.0, 220.0, 330.0):
        x = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6)).astype(np.float32) * 0.2
        tr = pitch_track(x)
        assert np.median(tr[tr > 0]) == pytest.approx(f0, rel=0.03)
    assert (pitch_track(np.random.default_rng(0).standard_normal(RATE) * 0.01) > 0).mean() < 0.2


def test_two_channels_by_energy():
    c = conversation("housing", two_channels=True)
    fn = ChannelSpeakers()
    labels = [fn(c.audio[int(t.start * RATE):int(t.end * RATE)], t.start, t.end) for t in c.turns]
    assert labels == [t.speaker for t in c.turns]


@pytest.mark.parametrize("name", ["welfare", "mynumber"])
def test_one_microphone_split(name):
    c = conversation(name)
    segs = [c.audio[int(t.start * RATE):int(t.end * RATE)] for t in c.turns]
    truth = [t.speaker for t in c.turns]
    online = OnlineTwoSpeakers()
    live = [online(x, t.start, t.end) for x, t in zip(segs, c.turns)]
    assert live[0] == "staff"                       # first voice defaults to 職員
    assert np.mean([a == b for a, b in zip(live, truth)]) >= 0.8
    offline = split_two([features(x) for x in segs])
    assert np.mean([a == b for a, b in zip(offline, truth)]) >= 0.8


def test_one_voice_stays_one_speaker():
    c = conversation("welfare")
    staff = [t for t in c.turns if t.speaker == "staff"]
    labels = split_two([features(c.audio[int(t.start * RATE):int(t.end * RATE)]) for t in staff])
    assert set(labels) == {"staff"}
