//! Tenant admins' accounts: Argon2id password hashes, and the per-account sign-in
//! throttle (consecutive failures lock the account for a doubling time).

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use sqlx::FromRow;
use zeroize::Zeroizing;

use crate::clock::Clock;
use crate::store::{with_pool, Store, StoreError};

/// Shortest password an account may have.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest password (Argon2 takes any length; this bounds the work per attempt).
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// Consecutive failed sign-ins an account takes before it is locked.
pub const FREE_FAILURES: i64 = 5;
/// The first lock's length; each further failure doubles it, up to [`MAX_LOCK_SECS`].
pub const FIRST_LOCK_SECS: i64 = 60;
/// The longest lock.
pub const MAX_LOCK_SECS: i64 = 15 * 60;

/// Why an account operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No tenant with that id.
    #[error("no tenant {0}")]
    UnknownTenant(String),
    /// No account with that e-mail address.
    #[error("no admin account {0}")]
    UnknownAccount(String),
    /// An account with that address exists already.
    #[error("an admin account {0} exists already")]
    Exists(String),
    /// Not an e-mail address.
    #[error("{0:?} is not an e-mail address")]
    BadEmail(String),
    /// The password is too short or too long.
    #[error("the password must be {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_BYTES} bytes long")]
    BadPassword,
    /// Hashing failed.
    #[error("password hashing failed: {0}")]
    Hash(String),
}

/// An admin account (its password hash stays in the database).
#[derive(Debug, Clone, FromRow)]
pub struct Account {
    /// `adm_…`.
    pub id: String,
    /// The one tenant it administers.
    pub tenant_id: String,
    /// Lowercased e-mail address (the sign-in name).
    pub email: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Consecutive failed sign-ins.
    pub failed_logins: i64,
    /// No sign-in before this (Unix seconds).
    pub locked_until: Option<i64>,
}

#[derive(FromRow)]
struct Credentials {
    id: String,
    tenant_id: String,
    password_hash: String,
    failed_logins: i64,
    locked_until: Option<i64>,
}

/// How a sign-in attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignIn {
    /// Right password: the account's id and tenant.
    Accepted {
        /// `adm_…`.
        account_id: String,
        /// Its tenant.
        tenant_id: String,
    },
    /// Wrong address or password (not told apart).
    Refused,
    /// Too many failures: no password is checked until `until` (Unix seconds).
    Locked {
        /// End of the lock.
        until: i64,
    },
}

/// A normalised e-mail address (trimmed, lowercased), or why it is none.
pub fn normalise_email(email: &str) -> Result<String, AccountError> {
    let email = email.trim().to_lowercase();
    let ok = email.len() <= 254
        && email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(email)
    } else {
        Err(AccountError::BadEmail(email))
    }
}

fn check_password(password: &str) -> Result<(), AccountError> {
    if password.chars().count() < MIN_PASSWORD_CHARS || password.len() > MAX_PASSWORD_BYTES {
        return Err(AccountError::BadPassword);
    }
    Ok(())
}

/// The Argon2id hash (PHC string, random salt, the crate's defaults: 19 MiB, 2 passes,
/// 1 lane, as OWASP recommends) of `password`. Slow on purpose: call it off the runtime's
/// threads.
pub fn hash_password(password: &str) -> Result<String, AccountError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| AccountError::Hash(e.to_string()))
}

/// Whether `password` matches the PHC string `hash`.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// A hash of no one's password, checked when the address is unknown so that an unknown
/// address takes as long to refuse as a wrong password.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("no account has this password").unwrap_or_default())
}

async fn hash_blocking(password: Zeroizing<String>) -> Result<String, AccountError> {
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| AccountError::Hash(e.to_string()))?
}

/// Account operations on one store.
pub struct Accounts<'a> {
    store: &'a Store,
    clock: &'a dyn Clock,
}

impl<'a> Accounts<'a> {
    /// Operations on `store`, timed by `clock`.
    pub fn new(store: &'a Store, clock: &'a dyn Clock) -> Self {
        Self { store, clock }
    }

    /// Creates an admin of `tenant_id` signing in as `email` with `password`.
    pub async fn create(
        &self,
        tenant_id: &str,
        email: &str,
        password: Zeroizing<String>,
    ) -> Result<Account, AccountError> {
        let email = normalise_email(email)?;
        check_password(&password)?;
        if self.store.tenant(tenant_id).await?.is_none() {
            return Err(AccountError::UnknownTenant(tenant_id.to_owned()));
        }
        if self.by_email(&email).await?.is_some() {
            return Err(AccountError::Exists(email));
        }
        let hash = hash_blocking(password).await?;
        let account = Account {
            id: format!("adm_{}", crate::ids::random_base62(16)),
            tenant_id: tenant_id.to_owned(),
            email,
            created_at: self.clock.now_unix(),
            failed_logins: 0,
            locked_until: None,
        };
        let inserted = with_pool!(self.store.pool()?, |p| sqlx::query(
            "INSERT INTO console_accounts (id, tenant_id, email, password_hash, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (email) DO NOTHING",
        )
        .bind(&account.id)
        .bind(&account.tenant_id)
        .bind(&account.email)
        .bind(&hash)
        .bind(account.created_at)
        .execute(&p)
        .await
        .map_err(StoreError::from)?
        .rows_affected());
        if inserted != 1 {
            return Err(AccountError::Exists(account.email));
        }
        Ok(account)
    }

    /// Accounts, of one tenant or all, by address.
    pub async fn list(&self, tenant_id: Option<&str>) -> Result<Vec<Account>, AccountError> {
        Ok(with_pool!(self.store.pool()?, |p| sqlx::query_as(
            "SELECT id, tenant_id, email, created_at, failed_logins, locked_until \
             FROM console_accounts WHERE ($1 IS NULL OR tenant_id = $1) ORDER BY email",
        )
        .bind(tenant_id)
        .fetch_all(&p)
        .await
        .map_err(StoreError::from)?))
    }

    async fn by_email(&self, email: &str) -> Result<Option<Account>, AccountError> {
        Ok(with_pool!(self.store.pool()?, |p| sqlx::query_as(
            "SELECT id, tenant_id, email, created_at, failed_logins, locked_until \
             FROM console_accounts WHERE email = $1",
        )
        .bind(email)
        .fetch_optional(&p)
        .await
        .map_err(StoreError::from)?))
    }

    /// The account of a normalised `email`, or [`AccountError::UnknownAccount`].
    async fn existing(&self, email: &str) -> Result<Account, AccountError> {
        self.by_email(email)
            .await?
            .ok_or_else(|| AccountError::UnknownAccount(email.to_owned()))
    }

    /// Removes an account and signs it out everywhere.
    pub async fn remove(&self, email: &str) -> Result<(), AccountError> {
        let account = self.existing(&normalise_email(email)?).await?;
        with_pool!(self.store.pool()?, |p| {
            let mut tx = p.begin().await.map_err(StoreError::from)?;
            sqlx::query("DELETE FROM console_sessions WHERE account_id = $1")
                .bind(&account.id)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::from)?;
            sqlx::query("DELETE FROM console_accounts WHERE id = $1")
                .bind(&account.id)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::from)?;
            tx.commit().await.map_err(StoreError::from)?;
        });
        Ok(())
    }

    /// Gives an account a new password, lifts its lock and signs it out everywhere.
    pub async fn reset(
        &self,
        email: &str,
        password: Zeroizing<String>,
    ) -> Result<(), AccountError> {
        let email = normalise_email(email)?;
        check_password(&password)?;
        let account = self.existing(&email).await?;
        let hash = hash_blocking(password).await?;
        with_pool!(self.store.pool()?, |p| {
            let mut tx = p.begin().await.map_err(StoreError::from)?;
            sqlx::query(
                "UPDATE console_accounts SET password_hash = $2, failed_logins = 0, \
                 locked_until = NULL WHERE id = $1",
            )
            .bind(&account.id)
            .bind(&hash)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from)?;
            sqlx::query("DELETE FROM console_sessions WHERE account_id = $1")
                .bind(&account.id)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::from)?;
            tx.commit().await.map_err(StoreError::from)?;
        });
        Ok(())
    }

    /// Checks a sign-in. A locked account is refused without its password being
    /// checked; each failure counts, and from the [`FREE_FAILURES`]th on locks the
    /// account for [`FIRST_LOCK_SECS`], doubled per further failure; success resets.
    pub async fn sign_in(
        &self,
        email: &str,
        password: Zeroizing<String>,
    ) -> Result<SignIn, AccountError> {
        let now = self.clock.now_unix();
        let email = match normalise_email(email) {
            Ok(email) => email,
            Err(_) => {
                verify_blocking(password, decoy_hash().to_owned()).await?;
                return Ok(SignIn::Refused);
            }
        };
        let row: Option<Credentials> = with_pool!(self.store.pool()?, |p| sqlx::query_as(
            "SELECT id, tenant_id, password_hash, failed_logins, locked_until \
             FROM console_accounts WHERE email = $1",
        )
        .bind(&email)
        .fetch_optional(&p)
        .await
        .map_err(StoreError::from)?);
        let Some(row) = row else {
            verify_blocking(password, decoy_hash().to_owned()).await?;
            return Ok(SignIn::Refused);
        };
        if let Some(until) = row.locked_until.filter(|&until| now < until) {
            return Ok(SignIn::Locked { until });
        }
        if verify_blocking(password, row.password_hash).await? {
            with_pool!(self.store.pool()?, |p| sqlx::query(
                "UPDATE console_accounts SET failed_logins = 0, locked_until = NULL WHERE id = $1"
            )
            .bind(&row.id)
            .execute(&p)
            .await
            .map_err(StoreError::from)?
            .rows_affected());
            return Ok(SignIn::Accepted {
                account_id: row.id,
                tenant_id: row.tenant_id,
            });
        }
        let failures = row.failed_logins.saturating_add(1);
        let locked_until = lock_after(failures).map(|secs| now.saturating_add(secs));
        with_pool!(self.store.pool()?, |p| sqlx::query(
            "UPDATE console_accounts SET failed_logins = failed_logins + 1, locked_until = $2 \
             WHERE id = $1",
        )
        .bind(&row.id)
        .bind(locked_until)
        .execute(&p)
        .await
        .map_err(StoreError::from)?
        .rows_affected());
        Ok(match locked_until {
            Some(until) => SignIn::Locked { until },
            None => SignIn::Refused,
        })
    }
}

/// How long an account is locked after `failures` consecutive failures (`None`: not).
pub fn lock_after(failures: i64) -> Option<i64> {
    let over = u32::try_from(failures.checked_sub(FREE_FAILURES)?).ok()?;
    let doublings = over.min(16);
    Some(
        FIRST_LOCK_SECS
            .saturating_mul(1_i64 << doublings)
            .min(MAX_LOCK_SECS),
    )
}

async fn verify_blocking(password: Zeroizing<String>, hash: String) -> Result<bool, AccountError> {
    tokio::task::spawn_blocking(move || verify_password(&password, &hash))
        .await
        .map_err(|e| AccountError::Hash(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argon2id_hashes_verify_only_their_password() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("correct horse batterz", &hash));
        assert!(!verify_password("correct horse battery", "not a hash"));
    }

    #[test]
    fn locks_start_at_the_fifth_failure_and_double_up_to_fifteen_minutes() {
        assert_eq!(lock_after(4), None);
        assert_eq!(lock_after(5), Some(60));
        assert_eq!(lock_after(6), Some(120));
        assert_eq!(lock_after(9), Some(900));
        assert_eq!(lock_after(1000), Some(900));
    }

    #[test]
    fn addresses_are_normalised_and_checked() {
        assert_eq!(
            normalise_email(" Ops@Example.GOV.in ").unwrap(),
            "ops@example.gov.in"
        );
        for bad in ["", "ops", "@example.in", "ops@localhost", "a b@example.in"] {
            assert!(normalise_email(bad).is_err(), "{bad}");
        }
    }
}
