-- OCR text layer of scanned PDFs and photos in the manual index (this PC's file, like the index):
-- one row per page read, keyed by the file's content hash, so a cancelled indexing run resumes at
-- the next page and an unchanged file is never read twice. ``method`` names the OCR engine and
-- preprocessing; a page read by another method is read again.
CREATE TABLE manual_ocr_pages (
  sha256 TEXT NOT NULL,
  page INTEGER NOT NULL,                -- 1-based, the page number in the file
  method TEXT NOT NULL,
  text TEXT NOT NULL,
  confidence REAL NOT NULL,             -- Tesseract's mean word confidence, 0-100
  vertical INTEGER NOT NULL DEFAULT 0,  -- read as vertical writing (縦書き)
  seconds REAL NOT NULL DEFAULT 0,
  PRIMARY KEY (sha256, page)
);
