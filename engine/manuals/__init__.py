"""Manual search: ingest (PDF/DOCX/HTML/TXT) → chunks → FTS5 + vectors → hybrid search → 回答案."""
