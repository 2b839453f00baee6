-- Issue 12: a tenant can be disabled (`tenant disable`) and enabled again. While
-- `disabled_at` is set (Unix seconds), every key of the tenant is refused with
-- SS_API_KEY_INVALID by every instance, and its pending sessions were expired when it
-- was disabled. The tenants table's triggers (20250301000000_auth_version.sql) already
-- bump auth_version on every update, so the key caches drop the tenant's keys.
ALTER TABLE tenants ADD COLUMN disabled_at INTEGER;
