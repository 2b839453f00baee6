//! The app's REST client: `securesign-client`'s [`securesign_client::api::ApiClient`]
//! (shared with the CLI: API types and calls, the checks of a request) with the app's
//! user agent and its errors as the UI receives them.

use securesign_core::deeplink::RequestId;
use url::Url;

pub use securesign_client::api::{Document, FinishResponse, SignRequest, SignatureFormat, Tenant};

use crate::error::CommandError;

/// The REST client, bound to the base URL from settings.
#[derive(Debug, Clone)]
pub struct ApiClient(securesign_client::api::ApiClient);

impl ApiClient {
    /// A client for `base` (already validated by the settings).
    pub fn new(base: Url) -> Result<Self, CommandError> {
        securesign_client::api::ApiClient::new(
            base,
            concat!("SecureSign-App/", env!("CARGO_PKG_VERSION")),
        )
        .map(Self)
        .map_err(from_client)
    }

    /// `GET /v1/sign-requests/{id}`, checked.
    pub async fn sign_request(&self, id: &RequestId) -> Result<SignRequest, CommandError> {
        self.0.sign_request(id).await.map_err(from_client)
    }

    /// `POST /v1/sign-requests/{id}/result` with the certificate and one signature per document.
    pub async fn submit_result(
        &self,
        id: &RequestId,
        certificate_der: &[u8],
        signatures: Vec<(String, Vec<u8>)>,
    ) -> Result<FinishResponse, CommandError> {
        self.0
            .submit_result(id, certificate_der, signatures)
            .await
            .map_err(from_client)
    }

    /// `POST /v1/sign-requests/{id}/cancel`.
    pub async fn cancel(&self, id: &RequestId) -> Result<FinishResponse, CommandError> {
        self.0.cancel(id).await.map_err(from_client)
    }
}

fn from_client(err: securesign_client::ClientError) -> CommandError {
    CommandError(err.0)
}
