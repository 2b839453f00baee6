-- A rolled webhook secret may keep signing beside the new one until a grace period
-- ends (`tenant webhook-secret roll --grace`), so a portal can switch without losing
-- callbacks. Sealed like the current secret, bound to the same tenant id.
ALTER TABLE webhook_secrets ADD COLUMN previous_sealed TEXT;
ALTER TABLE webhook_secrets ADD COLUMN previous_until INTEGER;
