//! SecureSign REST API server.
//!
//! Portals authenticate with an API key (`ss_live_…` / `ss_test_…`) and a whitelisted
//! origin, create signing sessions, and read their results; the SecureSign app fetches
//! a signing request by its unguessable `requestId` and posts the signatures back, which
//! the server verifies against the signer certificate before accepting them.
//!
//! Module map:
//! * [`api_key`]: key format, checksum, generation and hashing;
//! * [`origin`]: origin parsing and the live/test scheme policy;
//! * [`store`]: the SQLite (sqlx) database and its queries;
//! * [`change_detector`]: a check of about a microsecond (`stat` + `pread`) that keys,
//!   tenants or whitelists changed;
//! * [`key_cache`]: key rows and whitelists in memory, revalidated on every request;
//! * [`admin`]: the admin operations behind the CLI and the console;
//! * [`console`]: the Admin Console at `/admin/` (tenant admins' pages);
//! * [`rate_limit`]: per-key requests-per-minute limits (governor);
//! * [`clock`]: wall and monotonic time, injectable for tests;
//! * [`signature_format`]: `raw` signatures or detached CMS;
//! * [`secrets_key`]: encryption at rest for webhook secrets;
//! * [`webhook`]: signed callbacks to the portal through an outbox;
//! * [`http`]: the axum router, handlers, errors and OpenAPI document.

#![forbid(unsafe_code)]

pub mod admin;
pub mod api_key;
pub mod change_detector;
pub mod clock;
pub mod console;
pub mod http;
pub mod ids;
pub mod key_cache;
pub mod origin;
pub mod rate_limit;
pub mod secrets_key;
pub mod signature_format;
pub mod store;
pub mod trust;
pub mod webhook;

pub use clock::{Clock, ManualClock, SystemClock};
pub use http::{router, serve, spawn_webhook_worker, AppState, RouterOptions};
pub use store::Store;
