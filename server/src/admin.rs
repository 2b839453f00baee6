//! Admin-console operations (tenants, webhook secrets, keys, domains, callback
//! deliveries), shared by the CLI and tests.

use std::time::Duration;

use crate::api_key::{ApiKeySecret, KeyMode};
use crate::clock::Clock;
use crate::ids;
use crate::origin::{Origin, OriginError};
use crate::store::{
    with_pool, DisabledTenant, DomainRecord, KeyRecord, Store, StoreError, TenantRecord,
};
use crate::webhook::outbox::{self, DeliveryRecord};
use crate::webhook::WebhookSecret;
use securesign_core::cert::IndiaPkiClass;

/// Requests per minute of a key unless told otherwise.
pub const DEFAULT_RPM: u32 = 120;
/// Highest requests-per-minute a key may be given.
pub const MAX_RPM: u32 = 1_000_000;

/// Why an admin operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No tenant with that id.
    #[error("no tenant {0}")]
    UnknownTenant(String),
    /// No session with that id.
    #[error("no session {0}")]
    UnknownSession(String),
    /// No key with that id.
    #[error("no API key {0}")]
    UnknownKey(String),
    /// The key was revoked already.
    #[error("API key {0} is revoked")]
    KeyRevoked(String),
    /// Bad origin text.
    #[error("invalid origin: {0}")]
    InvalidOrigin(#[from] OriginError),
    /// An origin no key could ever use.
    #[error("origin {0} must be https (plain http is allowed only for localhost)")]
    UnusableOrigin(String),
    /// Bad input.
    #[error("{0}")]
    Invalid(String),
}

/// A newly created or rolled key: the row and the key text (shown once).
#[derive(Debug)]
pub struct IssuedKey {
    /// The stored row.
    pub record: KeyRecord,
    /// The key itself.
    pub secret: ApiKeySecret,
}

/// A newly created tenant and its webhook secret (shown once).
#[derive(Debug)]
pub struct NewTenant {
    /// The stored row.
    pub tenant: TenantRecord,
    /// Signs the tenant's callbacks.
    pub webhook_secret: WebhookSecret,
}

/// Admin operations on one store, with one clock.
pub struct Admin<'a> {
    store: &'a Store,
    clock: &'a dyn Clock,
}

impl<'a> Admin<'a> {
    /// Operations on `store`, timestamped by `clock`.
    pub fn new(store: &'a Store, clock: &'a dyn Clock) -> Self {
        Self { store, clock }
    }

    /// Creates a tenant with a display name (shown to signers in the app) and its
    /// webhook secret; returns both (the secret cannot be read back later, only rolled).
    pub async fn create_tenant_with_secret(
        &self,
        display_name: &str,
    ) -> Result<NewTenant, AdminError> {
        let display_name = display_name.trim();
        if display_name.is_empty() || display_name.chars().count() > 200 {
            return Err(AdminError::Invalid(
                "the tenant name must be 1 to 200 characters".to_owned(),
            ));
        }
        let tenant = TenantRecord {
            id: ids::tenant_id(),
            display_name: display_name.to_owned(),
            created_at: self.clock.now_unix(),
            disabled_at: None,
        };
        let webhook_secret = WebhookSecret::generate();
        self.store
            .insert_tenant_with_secret(&tenant, &webhook_secret)
            .await?;
        Ok(NewTenant {
            tenant,
            webhook_secret,
        })
    }

    /// [`Admin::create_tenant_with_secret`] for callers that do not need the secret now
    /// (it can be replaced by a known one with [`Admin::roll_webhook_secret`]).
    pub async fn create_tenant(&self, display_name: &str) -> Result<TenantRecord, AdminError> {
        Ok(self.create_tenant_with_secret(display_name).await?.tenant)
    }

    /// Gives a tenant a new webhook secret. The old one keeps signing beside it for
    /// `grace` (a second `v1=` entry), so a portal can switch without refusing
    /// callbacks; with no grace it stops at once. Events still queued are signed with
    /// whatever signs when they are sent.
    pub async fn roll_webhook_secret(
        &self,
        tenant_id: &str,
        grace: Duration,
    ) -> Result<WebhookSecret, AdminError> {
        self.require_tenant(tenant_id).await?;
        let secret = WebhookSecret::generate();
        let now = self.clock.now_unix();
        let keep_previous_until = (!grace.is_zero())
            .then(|| now.saturating_add(i64::try_from(grace.as_secs()).unwrap_or(i64::MAX)));
        self.store
            .set_webhook_secret(tenant_id, &secret, now, keep_previous_until)
            .await?;
        Ok(secret)
    }

    /// A session's callback events and how their delivery went.
    pub async fn deliveries(&self, session_id: &str) -> Result<Vec<DeliveryRecord>, AdminError> {
        let known: Option<(String,)> = with_pool!(self.store.pool()?, |p| sqlx::query_as(
            "SELECT id FROM sessions WHERE id = $1"
        )
        .bind(session_id)
        .fetch_optional(&p)
        .await
        .map_err(StoreError::from)?);
        if known.is_none() {
            return Err(AdminError::UnknownSession(session_id.to_owned()));
        }
        Ok(outbox::for_session(self.store, session_id).await?)
    }

    /// Restricts the India PKI classes a tenant's signers may have (every new session
    /// requires one of them); an empty list accepts any class again.
    pub async fn set_policy_classes(
        &self,
        tenant_id: &str,
        classes: &[IndiaPkiClass],
    ) -> Result<(), AdminError> {
        self.require_tenant(tenant_id).await?;
        let json = (!classes.is_empty())
            .then(|| serde_json::to_string(classes))
            .transpose()
            .map_err(|e| AdminError::Invalid(e.to_string()))?;
        Ok(self
            .store
            .set_tenant_policy_classes(tenant_id, json.as_deref())
            .await?)
    }

    /// The India PKI classes a tenant accepts (empty: any).
    pub async fn policy_classes(&self, tenant_id: &str) -> Result<Vec<IndiaPkiClass>, AdminError> {
        self.require_tenant(tenant_id).await?;
        Ok(crate::trust::tenant_classes(
            self.store
                .tenant_policy_classes(tenant_id)
                .await?
                .as_deref(),
        ))
    }

    /// All tenants.
    pub async fn tenants(&self) -> Result<Vec<TenantRecord>, AdminError> {
        Ok(self.store.tenants().await?)
    }

    /// Disables a tenant now: every instance refuses its keys (`SS_API_KEY_INVALID`)
    /// from its next request on, and its pending sessions expire. Disabling a
    /// disabled tenant changes nothing but expiring what is pending.
    pub async fn disable_tenant(&self, tenant_id: &str) -> Result<DisabledTenant, AdminError> {
        self.store
            .disable_tenant(tenant_id, self.clock.now_unix())
            .await?
            .ok_or_else(|| AdminError::UnknownTenant(tenant_id.to_owned()))
    }

    /// Enables a tenant: its keys authenticate again (sessions expired by the disable
    /// stay expired). Returns whether it was disabled.
    pub async fn enable_tenant(&self, tenant_id: &str) -> Result<bool, AdminError> {
        self.store
            .enable_tenant(tenant_id)
            .await?
            .ok_or_else(|| AdminError::UnknownTenant(tenant_id.to_owned()))
    }

    async fn require_tenant(&self, tenant_id: &str) -> Result<TenantRecord, AdminError> {
        self.store
            .tenant(tenant_id)
            .await?
            .ok_or_else(|| AdminError::UnknownTenant(tenant_id.to_owned()))
    }

    /// Creates an API key for a tenant.
    pub async fn create_key(
        &self,
        tenant_id: &str,
        mode: KeyMode,
        rpm: u32,
    ) -> Result<IssuedKey, AdminError> {
        self.require_tenant(tenant_id).await?;
        check_rpm(rpm)?;
        let issued = new_key(tenant_id, mode, rpm, self.clock.now_unix());
        self.store.insert_key(&issued.record).await?;
        Ok(issued)
    }

    /// Keys, of one tenant or all.
    pub async fn keys(&self, tenant_id: Option<&str>) -> Result<Vec<KeyRecord>, AdminError> {
        Ok(self.store.keys(tenant_id).await?)
    }

    /// Revokes a key now: the very next request with it is refused.
    pub async fn revoke_key(&self, key_id: &str) -> Result<(), AdminError> {
        let key = self
            .store
            .key(key_id)
            .await?
            .ok_or_else(|| AdminError::UnknownKey(key_id.to_owned()))?;
        if !self
            .store
            .revoke_key(&key.id, self.clock.now_unix())
            .await?
        {
            return Err(AdminError::KeyRevoked(key.id));
        }
        Ok(())
    }

    /// Issues a replacement key with the same tenant, mode and rpm; the old key keeps
    /// working for `grace` (zero: it stops at once).
    pub async fn roll_key(&self, key_id: &str, grace: Duration) -> Result<IssuedKey, AdminError> {
        let old = self
            .store
            .key(key_id)
            .await?
            .ok_or_else(|| AdminError::UnknownKey(key_id.to_owned()))?;
        if old.revoked_at.is_some() {
            return Err(AdminError::KeyRevoked(old.id));
        }
        let mode = KeyMode::parse(&old.mode)
            .ok_or_else(|| AdminError::Invalid(format!("key {} has an unknown mode", old.id)))?;
        let rpm = u32::try_from(old.rpm).unwrap_or(DEFAULT_RPM);
        let now = self.clock.now_unix();
        let grace_secs = i64::try_from(grace.as_secs())
            .map_err(|_| AdminError::Invalid("grace period too long".to_owned()))?;
        let issued = new_key(&old.tenant_id, mode, rpm, now);
        self.store
            .roll_key(&old.id, now.saturating_add(grace_secs), &issued.record)
            .await?;
        Ok(issued)
    }

    /// Whitelists an origin for a tenant; returns it normalised.
    pub async fn add_domain(&self, tenant_id: &str, origin: &str) -> Result<Origin, AdminError> {
        self.require_tenant(tenant_id).await?;
        let origin = Origin::parse(origin)?;
        if !origin.allowed_for(KeyMode::Test) {
            return Err(AdminError::UnusableOrigin(origin.to_string()));
        }
        self.store
            .add_domain(tenant_id, origin.as_str(), self.clock.now_unix())
            .await?;
        Ok(origin)
    }

    /// Removes an origin; returns whether it was whitelisted.
    pub async fn remove_domain(&self, tenant_id: &str, origin: &str) -> Result<bool, AdminError> {
        self.require_tenant(tenant_id).await?;
        let origin = Origin::parse(origin)?;
        Ok(self.store.remove_domain(tenant_id, origin.as_str()).await?)
    }

    /// A tenant's whitelisted origins.
    pub async fn domains(&self, tenant_id: &str) -> Result<Vec<DomainRecord>, AdminError> {
        self.require_tenant(tenant_id).await?;
        Ok(self.store.domains(tenant_id).await?)
    }
}

fn check_rpm(rpm: u32) -> Result<(), AdminError> {
    if rpm == 0 || rpm > MAX_RPM {
        return Err(AdminError::Invalid(format!(
            "rpm must be between 1 and {MAX_RPM}"
        )));
    }
    Ok(())
}

fn new_key(tenant_id: &str, mode: KeyMode, rpm: u32, now: i64) -> IssuedKey {
    let secret = ApiKeySecret::generate(mode);
    let record = KeyRecord {
        id: ids::key_id(),
        tenant_id: tenant_id.to_owned(),
        mode: mode.as_str().to_owned(),
        key_hash: secret.hash().to_hex(),
        last4: secret.last4(),
        rpm: i64::from(rpm),
        created_at: now,
        expires_at: None,
        revoked_at: None,
        replaced_by: None,
    };
    IssuedKey { record, secret }
}
