-- Issue 3: a counter that moves only when what authenticates a request changes.
--
-- The server keeps API keys and whitelists in memory. It notices cheaply that *some*
-- commit happened (its own sessions, results and webhook rows included), and then reads
-- this one row to learn whether the commit touched keys, tenants or whitelists: only
-- then are the cached entries dropped. Every change to those tables bumps the counter in
-- the same transaction, whoever writes it (server, admin CLI, another process).

CREATE TABLE auth_version (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    version  INTEGER NOT NULL
);
INSERT INTO auth_version (id, version) VALUES (1, 0);

-- The row must stay: without it the bumps below would update nothing.
CREATE TRIGGER auth_version_keep BEFORE DELETE ON auth_version
BEGIN
    SELECT RAISE(ABORT, 'auth_version row is required');
END;

-- The server compares versions by order: the counter may only grow.
CREATE TRIGGER auth_version_only_grows BEFORE UPDATE ON auth_version
WHEN NEW.id IS NOT OLD.id OR NEW.version <= OLD.version
BEGIN
    SELECT RAISE(ABORT, 'auth_version may only grow');
END;

CREATE TRIGGER api_keys_insert_bumps_auth_version AFTER INSERT ON api_keys
BEGIN
    UPDATE auth_version SET version = version + 1 WHERE id = 1;
END;
CREATE TRIGGER api_keys_update_bumps_auth_version AFTER UPDATE ON api_keys
BEGIN
    UPDATE auth_version SET version = version + 1 WHERE id = 1;
END;
CREATE TRIGGER api_keys_delete_bumps_auth_version AFTER DELETE ON api_keys
BEGIN
    UPDATE auth_version SET version = version + 1 WHERE id = 1;
END;

CREATE TRIGGER tenants_insert_bumps_auth_version AFTER INSERT ON tenants
BEGIN
    UPDATE auth_version SET version = version + 1 WHERE id = 1;
END;
CREATE TRIGGER tenants_update_bumps_auth_version AFTER UPDATE ON tenants
BEGIN
    UPDATE auth_version SET version = version + 1 WHERE id = 1;
END;
CREATE TRIGGER tenants_delete_bumps_auth_version AFTER DELETE ON tenants
BEGIN
    UPDATE auth_version SET version = version + 1 WHERE id = 1;
END;

CREATE TRIGGER domains_insert_bumps_auth_version AFTER INSERT ON domains
BEGIN
    UPDATE auth_version SET version = version + 1 WHERE id = 1;
END;
CREATE TRIGGER domains_update_bumps_auth_version AFTER UPDATE ON domains
BEGIN
    UPDATE auth_version SET version = version + 1 WHERE id = 1;
END;
CREATE TRIGGER domains_delete_bumps_auth_version AFTER DELETE ON domains
BEGIN
    UPDATE auth_version SET version = version + 1 WHERE id = 1;
END;
