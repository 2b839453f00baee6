-- Issue 15: the Admin Console. Tenant admins' accounts and their signed-in sessions,
-- and per-minute request counts of each API key (the console's usage chart). None of
-- these tables authenticates an API request, so none bumps auth_version.

CREATE TABLE console_accounts (
    id             TEXT PRIMARY KEY,          -- adm_…
    tenant_id      TEXT NOT NULL REFERENCES tenants(id),
    email          TEXT NOT NULL UNIQUE,      -- lowercased
    password_hash  TEXT NOT NULL,             -- Argon2id PHC string
    created_at     INTEGER NOT NULL,
    failed_logins  INTEGER NOT NULL DEFAULT 0, -- consecutive failed sign-ins
    locked_until   INTEGER                    -- no sign-in before this (Unix seconds)
);
CREATE INDEX console_accounts_tenant ON console_accounts(tenant_id);

CREATE TABLE console_sessions (
    id_hash        TEXT PRIMARY KEY,          -- hex SHA-256 of the cookie's value
    account_id     TEXT NOT NULL REFERENCES console_accounts(id) ON DELETE CASCADE,
    csrf_token     TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    last_seen_at   INTEGER NOT NULL
);
CREATE INDEX console_sessions_account ON console_sessions(account_id);

CREATE TABLE key_usage (
    key_id         TEXT NOT NULL REFERENCES api_keys(id),
    minute         INTEGER NOT NULL,          -- Unix seconds / 60
    requests       INTEGER NOT NULL,          -- authenticated requests, 429s included
    limited        INTEGER NOT NULL,          -- of which answered 429
    PRIMARY KEY (key_id, minute)
);

CREATE INDEX webhook_events_tenant ON webhook_events(tenant_id, created_at);
