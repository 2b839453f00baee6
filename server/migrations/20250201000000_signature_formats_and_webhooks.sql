-- Issue 6: signature formats, tenants' webhook secrets, and the callback outbox.

-- Which signature the app must return: the bare signature or a detached CMS SignedData.
ALTER TABLE sessions ADD COLUMN signature_format TEXT NOT NULL DEFAULT 'raw'
    CHECK (signature_format IN ('raw', 'cms'));

-- One webhook secret per tenant. The server must sign with it, so it cannot be a hash:
-- it is sealed (ChaCha20-Poly1305) with the secrets key, which lives in a separate file,
-- never in this database. Tenants created before this migration have no row until
-- `tenant webhook-secret roll` makes one; their callbacks fail until then.
CREATE TABLE webhook_secrets (
    tenant_id     TEXT PRIMARY KEY REFERENCES tenants(id),
    sealed        TEXT NOT NULL,               -- v1.<nonce>.<ciphertext>, bound to the tenant id
    created_at    INTEGER NOT NULL
);

-- The outbox: written in the same transaction as the session's state change, delivered
-- by a background worker. Times are Unix milliseconds (backoff is sub-second in tests).
CREATE TABLE webhook_events (
    id              TEXT PRIMARY KEY,          -- evt_…, also sent as X-SecureSign-Event-Id
    session_id      TEXT NOT NULL REFERENCES sessions(id),
    tenant_id       TEXT NOT NULL REFERENCES tenants(id),
    event_type      TEXT NOT NULL CHECK (event_type IN ('session.completed', 'session.cancelled')),
    url             TEXT NOT NULL,
    payload         TEXT NOT NULL,             -- the exact JSON body that is signed and sent
    created_at      INTEGER NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'delivering', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_until     INTEGER,                   -- while delivering: when the claim lapses
    last_status     INTEGER,                   -- HTTP status of the last answer
    last_error      TEXT,
    delivered_at    INTEGER
);
CREATE INDEX webhook_events_due ON webhook_events(status, next_attempt_at);
CREATE INDEX webhook_events_session ON webhook_events(session_id);
