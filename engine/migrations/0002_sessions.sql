-- Consultation sessions (recordings) and their transcript segments.
CREATE TABLE sessions (
  id INTEGER PRIMARY KEY,
  uid TEXT NOT NULL UNIQUE,                 -- stable id across stores (office server sync)
  title TEXT NOT NULL DEFAULT '',
  case_number TEXT NOT NULL DEFAULT '',
  staff_user TEXT NOT NULL DEFAULT '',
  state TEXT NOT NULL DEFAULT 'recording'
    CHECK (state IN ('recording', 'interrupted', 'stopped', 'finalized', 'failed')),
  consent INTEGER NOT NULL DEFAULT 0,       -- 相談者の同意
  audio_path TEXT NOT NULL DEFAULT '',
  sample_rate INTEGER NOT NULL DEFAULT 16000,
  channels INTEGER NOT NULL DEFAULT 1,
  audio_seconds REAL NOT NULL DEFAULT 0,
  engine TEXT NOT NULL DEFAULT '',
  model TEXT NOT NULL DEFAULT '',
  started_at REAL NOT NULL,
  stopped_at REAL,
  audio_deleted_at REAL
);

CREATE TABLE segments (
  id INTEGER PRIMARY KEY,
  session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
  seq INTEGER NOT NULL,                     -- order within the session (evidence ids are these)
  start REAL NOT NULL,
  end REAL NOT NULL,
  speaker TEXT NOT NULL DEFAULT 'staff' CHECK (speaker IN ('staff', 'citizen', 'unknown')),
  text TEXT NOT NULL,
  pass TEXT NOT NULL DEFAULT 'live' CHECK (pass IN ('live', 'final')),
  edited INTEGER NOT NULL DEFAULT 0,        -- staff changed text or speaker by hand
  speaker_edited INTEGER NOT NULL DEFAULT 0,
  created_at REAL NOT NULL,
  UNIQUE (session_id, seq)
);
CREATE INDEX segments_session ON segments(session_id, start);
