//! Callbacks to the portal: when a session with a `callbackUrl` completes or is
//! cancelled, an event is written to an outbox in the same transaction, and a
//! background [`worker::Worker`] POSTs it, signed with the tenant's webhook secret.
//!
//! * [`secret`]: webhook secrets and the `X-SecureSign-Signature` HMAC;
//! * [`event`]: the JSON body;
//! * [`outbox`]: the outbox table (claim, settle, list);
//! * [`address`], [`destination`]: callbacks reach only public addresses (SSRF);
//! * [`worker`]: delivery with retries and exponential backoff.
//!
//! What a portal must check, the delivery guarantees and how the secrets are protected
//! are described for integrators in `server/WEBHOOKS.md`.

pub mod address;
pub mod destination;
pub mod event;
pub mod outbox;
pub mod secret;
pub mod worker;

pub use event::{WebhookEvent, WebhookEventData};
pub use outbox::{DeliveryRecord, EventType};
pub use secret::WebhookSecret;
pub use worker::{DeliveryPolicy, Worker};
