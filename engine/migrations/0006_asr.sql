-- Live transcription: which process is recording a session (crash detection) and the UI's speaker swap.
ALTER TABLE sessions ADD COLUMN pid INTEGER;
ALTER TABLE sessions ADD COLUMN heartbeat_at REAL;          -- refreshed at every audio fsync while recording
ALTER TABLE sessions ADD COLUMN speakers_swapped INTEGER NOT NULL DEFAULT 0;
