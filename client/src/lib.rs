//! The client side of the SecureSign REST API, shared by the app (`src-tauri`) and the
//! `securesign` CLI: everything between a signing link and the token that does not depend
//! on a platform.
//!
//! - [`api`]: the REST calls of a signer (`GET /v1/sign-requests/{id}`, its result and
//!   cancel), reqwest over rustls, size-capped answers, server errors kept by `SS_*` code;
//! - [`request`]: a signing request as the server sends it, checked before anything is
//!   shown or signed (ids, documents, digests, tenant, expected signer, expiry), and the
//!   request id of a deep link or a bare id;
//! - [`base_url`]: the API base URL rule (`https`, or `http` on this computer);
//! - [`signer_gate`]: whether the token's certificate may sign the request, decided
//!   before any PIN is asked.
//!
//! The token itself stays the core's business: nothing here talks to a token.

pub mod api;
pub mod base_url;
pub mod error;
pub mod request;
pub mod signer_gate;

pub use error::ClientError;
