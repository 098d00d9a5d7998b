-- Consultation records (面接相談記録): one row per record, one row per content version.
-- State of a record: draft (下書き) → submitted (提出済) → approved (承認済) | returned (差戻し) → submitted …
CREATE TABLE records (
  id INTEGER PRIMARY KEY,
  uid TEXT NOT NULL UNIQUE,
  session_id INTEGER REFERENCES sessions(id) ON DELETE SET NULL,
  case_number TEXT NOT NULL DEFAULT '',
  title TEXT NOT NULL DEFAULT '',
  template TEXT NOT NULL,
  owner TEXT NOT NULL,                      -- username of the staff member who drafted it
  state TEXT NOT NULL DEFAULT 'draft' CHECK (state IN ('draft', 'submitted', 'approved', 'returned')),
  version INTEGER NOT NULL DEFAULT 1,       -- newest content version
  approved_version INTEGER,                 -- newest approved version (stays while a correction is drafted)
  revision INTEGER NOT NULL DEFAULT 1,      -- optimistic-lock counter, bumped on every write
  created_at REAL NOT NULL,
  updated_at REAL NOT NULL
);
CREATE INDEX records_state ON records(state, updated_at);
CREATE INDEX records_session ON records(session_id);

CREATE TABLE record_versions (
  id INTEGER PRIMARY KEY,
  record_id INTEGER NOT NULL REFERENCES records(id) ON DELETE CASCADE,
  version INTEGER NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('draft', 'submitted', 'approved', 'returned')),
  content TEXT NOT NULL,                    -- JSON: the draft (sections, statements, evidence, flags)
  author TEXT NOT NULL,
  reason TEXT NOT NULL DEFAULT '',          -- why this version exists (required for a correction)
  comment TEXT NOT NULL DEFAULT '',         -- supervisor's 差戻し comment
  resubmitted INTEGER NOT NULL DEFAULT 0,   -- 再提出
  submitted_by TEXT,
  submitted_at REAL,
  approver TEXT,
  approved_at REAL,
  flags_ack TEXT NOT NULL DEFAULT '[]',     -- flags the approver saw and acknowledged
  created_at REAL NOT NULL,
  UNIQUE (record_id, version)
);
-- An approved version can never change or disappear: a correction is a new version.
CREATE TRIGGER record_versions_approved_no_update BEFORE UPDATE ON record_versions
WHEN OLD.state = 'approved'
BEGIN SELECT RAISE(ABORT, 'approved record versions are immutable'); END;
CREATE TRIGGER record_versions_approved_no_delete BEFORE DELETE ON record_versions
WHEN OLD.state = 'approved'
BEGIN SELECT RAISE(ABORT, 'approved record versions are immutable'); END;
