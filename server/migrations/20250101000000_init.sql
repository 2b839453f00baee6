-- SecureSign server schema. Portable SQL: TEXT/INTEGER only, times are Unix seconds,
-- so the same migration runs on PostgreSQL (INTEGER -> use BIGINT there).

CREATE TABLE tenants (
    id            TEXT PRIMARY KEY,            -- org_…
    display_name  TEXT NOT NULL,
    created_at    INTEGER NOT NULL
);

CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,            -- key_…
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    mode          TEXT NOT NULL CHECK (mode IN ('live', 'test')),
    key_hash      TEXT NOT NULL UNIQUE,        -- hex SHA-256 of the whole key; the key itself is never stored
    last4         TEXT NOT NULL,               -- shown in listings
    rpm           INTEGER NOT NULL CHECK (rpm > 0),
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER,                     -- set when the key is rolled: end of the grace period
    revoked_at    INTEGER,
    replaced_by   TEXT REFERENCES api_keys(id)
);
CREATE INDEX api_keys_tenant ON api_keys(tenant_id);

CREATE TABLE domains (
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    origin        TEXT NOT NULL,               -- normalised scheme://host[:port]
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, origin)
);

CREATE TABLE sessions (
    id                  TEXT PRIMARY KEY,      -- sess_…
    request_id          TEXT NOT NULL UNIQUE,  -- the app's capability (in the deep link)
    tenant_id           TEXT NOT NULL REFERENCES tenants(id),
    key_id              TEXT NOT NULL REFERENCES api_keys(id),
    origin              TEXT NOT NULL,
    callback_url        TEXT,
    status              TEXT NOT NULL CHECK (status IN ('pending', 'completed', 'cancelled')),
    created_at          INTEGER NOT NULL,
    expires_at          INTEGER NOT NULL,
    finished_at         INTEGER,
    signer_certificate  TEXT,                  -- base64 DER, once completed
    signature_algorithm TEXT
);
CREATE INDEX sessions_tenant ON sessions(tenant_id);

CREATE TABLE session_documents (
    session_id    TEXT NOT NULL REFERENCES sessions(id),
    position      INTEGER NOT NULL,
    document_id   TEXT NOT NULL,
    name          TEXT NOT NULL,
    digest        TEXT NOT NULL,               -- base64 SHA-256
    signature     TEXT,                        -- base64, once completed
    PRIMARY KEY (session_id, position),
    UNIQUE (session_id, document_id)
);
