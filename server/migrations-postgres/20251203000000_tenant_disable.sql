-- Issue 12: a tenant can be disabled (`tenant disable`) and enabled again. While
-- `disabled_at` is set (Unix seconds), every key of the tenant is refused with
-- SS_API_KEY_INVALID by every instance, and its pending sessions were expired when it
-- was disabled. The tenants table's row trigger (tenants_bumps_auth_version) already
-- bumps auth_version and notifies `securesign_auth` on every update, so every
-- instance's key cache drops the tenant's keys.
ALTER TABLE tenants ADD COLUMN disabled_at BIGINT;
