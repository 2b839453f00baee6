-- SecureSign server schema on PostgreSQL: the schema the SQLite migrations in
-- ../migrations build up to (through 20250601000000_request_id_sha256.sql), in one
-- step, with the same tables, columns, constraints, indexes and auth_version triggers.
-- Times are Unix seconds (webhook_events: milliseconds) in BIGINT, as SQLite's INTEGER
-- holds them. A later schema change is a migration in both directories.

CREATE TABLE tenants (
    id             TEXT PRIMARY KEY,           -- org_…
    display_name   TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    policy_classes TEXT                        -- JSON array of India PKI classes; NULL: any
);

CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,            -- key_…
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    mode          TEXT NOT NULL CHECK (mode IN ('live', 'test')),
    key_hash      TEXT NOT NULL UNIQUE,        -- hex SHA-256 of the whole key
    last4         TEXT NOT NULL,
    rpm           BIGINT NOT NULL CHECK (rpm > 0),
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT,
    revoked_at    BIGINT,
    replaced_by   TEXT REFERENCES api_keys(id)
);
CREATE INDEX api_keys_tenant ON api_keys(tenant_id);

CREATE TABLE domains (
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    origin        TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, origin)
);

CREATE TABLE sessions (
    id                  TEXT PRIMARY KEY,      -- sess_…
    request_id          TEXT NOT NULL UNIQUE,  -- hex SHA-256 of the app's capability
    tenant_id           TEXT NOT NULL REFERENCES tenants(id),
    key_id              TEXT NOT NULL REFERENCES api_keys(id),
    origin              TEXT NOT NULL,
    callback_url        TEXT,
    status              TEXT NOT NULL CHECK (status IN ('pending', 'completed', 'cancelled')),
    created_at          BIGINT NOT NULL,
    expires_at          BIGINT NOT NULL,
    finished_at         BIGINT,
    signer_certificate  TEXT,
    signature_algorithm TEXT,
    signature_format    TEXT NOT NULL DEFAULT 'raw' CHECK (signature_format IN ('raw', 'cms')),
    key_mode            TEXT NOT NULL DEFAULT 'live' CHECK (key_mode IN ('live', 'test')),
    signer_requirement  TEXT,
    signer_evidence     TEXT,
    -- Always 1 here: no PostgreSQL database ever held a requestId in clear. Kept so
    -- both engines take the same INSERT.
    request_id_hashed   INTEGER NOT NULL DEFAULT 0 CHECK (request_id_hashed IN (0, 1))
);
CREATE INDEX sessions_tenant ON sessions(tenant_id);
CREATE INDEX sessions_clear_request_id ON sessions(id) WHERE request_id_hashed = 0;

CREATE TABLE session_documents (
    session_id    TEXT NOT NULL REFERENCES sessions(id),
    position      BIGINT NOT NULL,
    document_id   TEXT NOT NULL,
    name          TEXT NOT NULL,
    digest        TEXT NOT NULL,
    signature     TEXT,
    PRIMARY KEY (session_id, position),
    UNIQUE (session_id, document_id)
);

CREATE TABLE webhook_secrets (
    tenant_id       TEXT PRIMARY KEY REFERENCES tenants(id),
    sealed          TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    previous_sealed TEXT,
    previous_until  BIGINT
);

CREATE TABLE webhook_events (
    id              TEXT PRIMARY KEY,
    session_id      TEXT NOT NULL REFERENCES sessions(id),
    tenant_id       TEXT NOT NULL REFERENCES tenants(id),
    event_type      TEXT NOT NULL CHECK (event_type IN ('session.completed', 'session.cancelled')),
    url             TEXT NOT NULL,
    payload         TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'delivering', 'delivered', 'failed')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_until     BIGINT,
    last_status     BIGINT,
    last_error      TEXT,
    delivered_at    BIGINT
);
CREATE INDEX webhook_events_due ON webhook_events(status, next_attempt_at);
CREATE INDEX webhook_events_session ON webhook_events(session_id);

-- The counter that moves only when what authenticates a request changes (see the
-- SQLite migration 20250301000000_auth_version.sql). Every bump is also announced on
-- the channel `securesign_auth` with the new version as payload; PostgreSQL delivers
-- it when (and only if) the bumping transaction commits, in commit order.
CREATE TABLE auth_version (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    version  BIGINT NOT NULL
);
INSERT INTO auth_version (id, version) VALUES (1, 0);

CREATE FUNCTION auth_version_keep() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'auth_version row is required';
END
$$;
CREATE TRIGGER auth_version_keep BEFORE DELETE ON auth_version
    FOR EACH ROW EXECUTE FUNCTION auth_version_keep();
CREATE TRIGGER auth_version_keep_truncate BEFORE TRUNCATE ON auth_version
    FOR EACH STATEMENT EXECUTE FUNCTION auth_version_keep();

CREATE FUNCTION auth_version_only_grows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.id IS DISTINCT FROM OLD.id OR NEW.version <= OLD.version THEN
        RAISE EXCEPTION 'auth_version may only grow';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER auth_version_only_grows BEFORE UPDATE ON auth_version
    FOR EACH ROW EXECUTE FUNCTION auth_version_only_grows();

-- Row triggers, as SQLite's: a statement that changes no row bumps nothing.
CREATE FUNCTION bump_auth_version() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bumped BIGINT;
BEGIN
    UPDATE auth_version SET version = version + 1 WHERE id = 1 RETURNING version INTO bumped;
    PERFORM pg_notify('securesign_auth', bumped::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER api_keys_bumps_auth_version AFTER INSERT OR UPDATE OR DELETE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION bump_auth_version();
CREATE TRIGGER api_keys_truncate_bumps_auth_version AFTER TRUNCATE ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION bump_auth_version();
CREATE TRIGGER tenants_bumps_auth_version AFTER INSERT OR UPDATE OR DELETE ON tenants
    FOR EACH ROW EXECUTE FUNCTION bump_auth_version();
CREATE TRIGGER tenants_truncate_bumps_auth_version AFTER TRUNCATE ON tenants
    FOR EACH STATEMENT EXECUTE FUNCTION bump_auth_version();
CREATE TRIGGER domains_bumps_auth_version AFTER INSERT OR UPDATE OR DELETE ON domains
    FOR EACH ROW EXECUTE FUNCTION bump_auth_version();
CREATE TRIGGER domains_truncate_bumps_auth_version AFTER TRUNCATE ON domains
    FOR EACH STATEMENT EXECUTE FUNCTION bump_auth_version();
