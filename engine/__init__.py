"""Madoguchi engine: the Qt-free library behind the CLI and the desktop."""
import os

# OpenMP threads (llama.cpp, CTranslate2, onnxruntime's embedder) must not spin-wait. On the 2-core
# counter PC Whisper, the LLM and the embedder share the CPU; with the default active wait a
# llama.cpp generation under load ran 4–5x slower (measured: 72 s vs 14 s for the same
# 106-token call) and a 10 ms query embedding took 1–7 s. The OpenMP runtime reads this when it
# loads, so it is set here, before any of them is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
