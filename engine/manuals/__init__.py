"""Manual search: ingest (PDF/DOCX/HTML/TXT) → chunks → FTS5 + vectors → hybrid search → 回答案."""
import os

# The embedder's OpenMP threads must not spin-wait: on the 2-core counter PC they share the CPU with
# Whisper and the LLM, and busy-waiting made a 10 ms query embedding take 1–7 s under load
# (measured; see docs/benchmarks.md). Read by the OpenMP runtime when it loads, so set it early.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
