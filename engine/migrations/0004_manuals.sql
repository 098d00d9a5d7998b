-- Manual search: documents, structure-aware chunks, FTS5 on Sudachi-tokenised text, a trigram
-- FTS5 table for partial words / long identifiers, and embedding vectors (float32 BLOBs).
CREATE TABLE manual_docs (
  id INTEGER PRIMARY KEY,
  path TEXT NOT NULL UNIQUE,            -- absolute path of the file
  title TEXT NOT NULL DEFAULT '',
  kind TEXT NOT NULL DEFAULT '',        -- pdf | docx | html | txt | md
  sha256 TEXT NOT NULL DEFAULT '',
  size INTEGER NOT NULL DEFAULT 0,
  mtime REAL NOT NULL DEFAULT 0,
  pages INTEGER NOT NULL DEFAULT 0,
  status TEXT NOT NULL DEFAULT 'indexed' CHECK (status IN ('indexed', 'skipped')),
  reason TEXT NOT NULL DEFAULT '',      -- skipped: scanned | encrypted | broken | unsupported | empty
  message TEXT NOT NULL DEFAULT '',     -- skipped: why, in English
  message_ja TEXT NOT NULL DEFAULT '',
  indexed_at REAL NOT NULL DEFAULT 0
);

CREATE TABLE manual_chunks (
  id INTEGER PRIMARY KEY,
  doc_id INTEGER NOT NULL REFERENCES manual_docs(id) ON DELETE CASCADE,
  seq INTEGER NOT NULL,
  page_start INTEGER,                   -- 1-based; NULL for formats without pages
  page_end INTEGER,
  heading TEXT NOT NULL DEFAULT '',     -- heading path joined with ' > '
  cite_key TEXT NOT NULL DEFAULT '',    -- 問3-2 | 第3の1の(2) | 第2章第1節 | 法第4条
  citation TEXT NOT NULL DEFAULT '',
  text TEXT NOT NULL,
  tokens TEXT NOT NULL DEFAULT '',      -- Sudachi terms of the text, space-separated
  heading_tokens TEXT NOT NULL DEFAULT '',
  embedding BLOB                        -- float32 × dim, L2-normalised; NULL until embedded
);
CREATE INDEX manual_chunks_doc ON manual_chunks(doc_id, seq);
CREATE INDEX manual_chunks_cite ON manual_chunks(cite_key);
CREATE INDEX manual_chunks_unembedded ON manual_chunks(id) WHERE embedding IS NULL;

CREATE VIRTUAL TABLE manual_fts USING fts5(
  tokens, heading_tokens, content='manual_chunks', content_rowid='id',
  tokenize='unicode61 remove_diacritics 0');
CREATE VIRTUAL TABLE manual_tri USING fts5(
  text, content='manual_chunks', content_rowid='id', tokenize='trigram');

CREATE TRIGGER manual_chunks_ai AFTER INSERT ON manual_chunks BEGIN
  INSERT INTO manual_fts(rowid, tokens, heading_tokens) VALUES (new.id, new.tokens, new.heading_tokens);
  INSERT INTO manual_tri(rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER manual_chunks_ad AFTER DELETE ON manual_chunks BEGIN
  INSERT INTO manual_fts(manual_fts, rowid, tokens, heading_tokens)
    VALUES ('delete', old.id, old.tokens, old.heading_tokens);
  INSERT INTO manual_tri(manual_tri, rowid, text) VALUES ('delete', old.id, old.text);
END;
CREATE TRIGGER manual_chunks_au AFTER UPDATE OF text, tokens, heading_tokens ON manual_chunks BEGIN
  INSERT INTO manual_fts(manual_fts, rowid, tokens, heading_tokens)
    VALUES ('delete', old.id, old.tokens, old.heading_tokens);
  INSERT INTO manual_tri(manual_tri, rowid, text) VALUES ('delete', old.id, old.text);
  INSERT INTO manual_fts(rowid, tokens, heading_tokens) VALUES (new.id, new.tokens, new.heading_tokens);
  INSERT INTO manual_tri(rowid, text) VALUES (new.id, new.text);
END;
