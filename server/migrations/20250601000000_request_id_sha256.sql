-- Issue 13: the requestId is the app's capability (it is in the deep link), so the
-- database keeps only its SHA-256: `sessions.request_id` holds the lowercase hex SHA-256
-- of the requestId, and every lookup hashes the requestId it is given.
--
-- SQLite has no SHA-256 function, so this migration only marks the rows written before
-- it (they hold the requestId in clear): `request_id_hashed = 0`. `Store::open` hashes
-- them in one transaction, with `secure_delete` on so the clear values are overwritten,
-- before anything else uses the database; new rows are inserted with 1. Running the
-- conversion again finds nothing to do.
ALTER TABLE sessions ADD COLUMN request_id_hashed INTEGER NOT NULL DEFAULT 0
    CHECK (request_id_hashed IN (0, 1));
-- Finds the rows still to convert without a scan (empty once they are converted).
CREATE INDEX sessions_clear_request_id ON sessions(id) WHERE request_id_hashed = 0;
