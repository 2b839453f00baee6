-- Signer trust (issue 7): a session remembers the mode of the key that created it (test
-- keys may complete with an untrusted signer, live keys may not), the signer the portal
-- expects (JSON, `signer` of POST /v1/auth/session) and, once completed, the evidence
-- of the signer's validation (JSON, `signer` of the status and the callback).
ALTER TABLE sessions ADD COLUMN key_mode TEXT NOT NULL DEFAULT 'live' CHECK (key_mode IN ('live', 'test'));
ALTER TABLE sessions ADD COLUMN signer_requirement TEXT;
ALTER TABLE sessions ADD COLUMN signer_evidence TEXT;
