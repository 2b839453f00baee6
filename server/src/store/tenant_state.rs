//! A tenant's state: enabled, or disabled since a time (`tenants.disabled_at`).
//!
//! Disabling is one transaction that sets `disabled_at` and expires the tenant's
//! pending sessions (their `expires_at` becomes the time of the disable, so the app is
//! told `SS_SESSION_EXPIRED` and the portal sees them expired). The tenants table's
//! triggers bump `auth_version` in the same transaction (and, on PostgreSQL, notify
//! every instance), so every key cache drops its entries and reads the keys again with
//! their tenant's state: a disabled tenant's keys are refused with
//! `SS_API_KEY_INVALID`. Enabling clears `disabled_at` the same way; sessions expired
//! by the disable stay expired (the portal starts new ones).
//!
//! Sessions created or finished around the disable are guarded in the statements
//! themselves ([`Store::insert_session`], [`Store::complete_session`],
//! [`Store::cancel_session`] refuse a disabled tenant's), so a request that passed a key
//! cache which had not yet heard of the disable writes nothing for the tenant.

use super::{with_pool, Store, StoreError};

/// What [`Store::disable_tenant`] found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DisabledTenant {
    /// Since when the tenant is disabled (the earlier time when it already was).
    pub disabled_at: i64,
    /// Whether it was disabled already, before this call.
    pub already: bool,
    /// Pending sessions this call expired.
    pub expired_sessions: u64,
}

impl Store {
    /// Disables a tenant at `now` (Unix seconds) and expires its pending sessions, in
    /// one transaction; `None` when no such tenant exists. Disabling a disabled tenant
    /// keeps its first time (and still expires any session pending).
    pub async fn disable_tenant(
        &self,
        tenant_id: &str,
        now: i64,
    ) -> Result<Option<DisabledTenant>, StoreError> {
        let outcome = with_pool!(self.db()?, |p| {
            let mut tx = p.begin().await?;
            let newly = sqlx::query(
                "UPDATE tenants SET disabled_at = $2 WHERE id = $1 AND disabled_at IS NULL",
            )
            .bind(tenant_id)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            let since: Option<(Option<i64>,)> =
                sqlx::query_as("SELECT disabled_at FROM tenants WHERE id = $1")
                    .bind(tenant_id)
                    .fetch_optional(&mut *tx)
                    .await?;
            match since {
                Some((Some(disabled_at),)) => {
                    let expired_sessions = sqlx::query(
                        "UPDATE sessions SET expires_at = $2 \
                         WHERE tenant_id = $1 AND status = 'pending' AND expires_at > $2",
                    )
                    .bind(tenant_id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    tx.commit().await?;
                    Some(DisabledTenant {
                        disabled_at,
                        already: newly == 0,
                        expired_sessions,
                    })
                }
                // No such tenant (nothing was written).
                _ => None,
            }
        });
        self.after_auth_change().await?;
        Ok(outcome)
    }

    /// Enables a disabled tenant: its keys authenticate again. `None` when no such
    /// tenant exists, else whether it was disabled.
    pub async fn enable_tenant(&self, tenant_id: &str) -> Result<Option<bool>, StoreError> {
        let outcome = with_pool!(self.db()?, |p| {
            let mut tx = p.begin().await?;
            let enabled = sqlx::query(
                "UPDATE tenants SET disabled_at = NULL WHERE id = $1 AND disabled_at IS NOT NULL",
            )
            .bind(tenant_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            let known: Option<(String,)> = sqlx::query_as("SELECT id FROM tenants WHERE id = $1")
                .bind(tenant_id)
                .fetch_optional(&mut *tx)
                .await?;
            tx.commit().await?;
            known.map(|_| enabled == 1)
        });
        self.after_auth_change().await?;
        Ok(outcome)
    }
}
