-- Curve-mirror (道路反射鏡) ledger: the mirrors, their photo inspections, grade confirmations.
CREATE TABLE mirrors (
  id INTEGER PRIMARY KEY,
  code TEXT NOT NULL UNIQUE,                 -- 管理番号
  location TEXT NOT NULL DEFAULT '',         -- 設置場所
  route TEXT NOT NULL DEFAULT '',            -- 路線名
  installed_year INTEGER,                    -- 設置年度
  lat REAL,
  lon REAL,
  note TEXT NOT NULL DEFAULT '',
  created_at REAL NOT NULL,
  updated_at REAL NOT NULL
);

CREATE TABLE mirror_inspections (
  id INTEGER PRIMARY KEY,
  mirror_id INTEGER REFERENCES mirrors(id),
  photo_hash TEXT NOT NULL UNIQUE,           -- SHA-256 of the file: the same photo is never imported twice
  photo_path TEXT NOT NULL,
  taken_at TEXT,                             -- EXIF time (ISO 8601), else the file's mtime
  lat REAL,
  lon REAL,
  inspector TEXT NOT NULL DEFAULT '',
  status TEXT NOT NULL DEFAULT 'diagnosed' CHECK (status IN ('diagnosed', 'unjudgeable', 'unreadable')),
  ai_grade TEXT CHECK (ai_grade IN ('Ⅰ', 'Ⅱ', 'Ⅲ', 'Ⅳ')),
  ai_provisional_grade TEXT,
  needs_review INTEGER NOT NULL DEFAULT 1,
  findings TEXT NOT NULL DEFAULT '[]',
  quality TEXT NOT NULL DEFAULT '{}',
  geometry TEXT NOT NULL DEFAULT '{}',
  model_version TEXT,
  confirmed_grade TEXT CHECK (confirmed_grade IN ('Ⅰ', 'Ⅱ', 'Ⅲ', 'Ⅳ')),
  confirmed_by TEXT,
  confirmed_at REAL,
  override_reason TEXT NOT NULL DEFAULT '',
  error TEXT NOT NULL DEFAULT '',
  created_at REAL NOT NULL
);
CREATE INDEX mirror_inspections_mirror ON mirror_inspections(mirror_id, taken_at);
CREATE INDEX mirror_inspections_review ON mirror_inspections(needs_review, confirmed_grade);

-- Every confirmation or override, append-only (who changed which grade, from what, why).
CREATE TABLE mirror_grade_changes (
  id INTEGER PRIMARY KEY,
  inspection_id INTEGER NOT NULL REFERENCES mirror_inspections(id),
  ai_grade TEXT,
  old_grade TEXT,
  new_grade TEXT NOT NULL,
  reason TEXT NOT NULL DEFAULT '',
  actor TEXT NOT NULL,
  ts REAL NOT NULL
);
CREATE TRIGGER mirror_grade_changes_no_update BEFORE UPDATE ON mirror_grade_changes
BEGIN SELECT RAISE(ABORT, 'mirror_grade_changes is append-only'); END;
CREATE TRIGGER mirror_grade_changes_no_delete BEFORE DELETE ON mirror_grade_changes
BEGIN SELECT RAISE(ABORT, 'mirror_grade_changes is append-only'); END;
