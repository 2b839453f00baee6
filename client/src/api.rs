//! The signer's side of the SecureSign REST API (reqwest + rustls).
//!
//! The request id is the only credential: no API key lives in a signing client. Answers
//! are size-capped and checked ([`crate::request`]) before anything reaches a screen or a
//! token; no redirect is followed.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use securesign_core::deeplink::RequestId;
use securesign_core::{ErrorBody, ErrorCode};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::error::ClientError;
use crate::request::{bad_answer, check_request, WireRequest};

pub use crate::request::{Document, SignRequest, SignatureFormat, Tenant};

/// Largest answer body we read.
const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Whole-request timeout.
const TIMEOUT: Duration = Duration::from_secs(20);

/// One signature to submit.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct WireSignature {
    document_id: String,
    signature: String,
}

#[derive(Debug, Serialize)]
struct WireResult {
    certificate: String,
    signatures: Vec<WireSignature>,
}

/// The server's answer to a result or cancel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FinishResponse {
    /// `completed` or `cancelled`.
    pub status: String,
    /// Verification algorithm, for a result.
    #[serde(default)]
    pub signature_algorithm: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WireErrorEnvelope {
    error: WireErrorDetail,
}

#[derive(Debug, Deserialize)]
struct WireErrorDetail {
    code: String,
    message: String,
}

/// The REST client, bound to one API base URL (checked by [`crate::base_url::parse`]).
#[derive(Debug, Clone)]
pub struct ApiClient {
    base: Url,
    http: reqwest::Client,
}

impl ApiClient {
    /// A client for `base`; `user_agent` names the program (`SecureSign-App/0.1.0`).
    pub fn new(base: Url, user_agent: &str) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(user_agent)
            .build()
            .map_err(|e| ClientError::new(ErrorCode::Internal, format!("HTTP client: {e}")))?;
        Ok(Self { base, http })
    }

    fn url(&self, id: &RequestId, suffix: &str) -> Result<Url, ClientError> {
        self.base
            .join(&format!("v1/sign-requests/{}{suffix}", id.as_str()))
            .map_err(|e| ClientError::new(ErrorCode::Config, format!("API URL: {e}")))
    }

    /// `GET /v1/sign-requests/{id}`, checked.
    pub async fn sign_request(&self, id: &RequestId) -> Result<SignRequest, ClientError> {
        let response = self.http.get(self.url(id, "")?).send().await;
        let wire: WireRequest = self.answer(response).await?;
        check_request(id, wire)
    }

    /// `POST /v1/sign-requests/{id}/result` with the certificate and one signature per document.
    pub async fn submit_result(
        &self,
        id: &RequestId,
        certificate_der: &[u8],
        signatures: Vec<(String, Vec<u8>)>,
    ) -> Result<FinishResponse, ClientError> {
        let body = WireResult {
            certificate: BASE64.encode(certificate_der),
            signatures: signatures
                .into_iter()
                .map(|(document_id, sig)| WireSignature {
                    document_id,
                    signature: BASE64.encode(sig),
                })
                .collect(),
        };
        let response = self
            .http
            .post(self.url(id, "/result")?)
            .json(&body)
            .send()
            .await;
        self.answer(response).await
    }

    /// `POST /v1/sign-requests/{id}/cancel`.
    pub async fn cancel(&self, id: &RequestId) -> Result<FinishResponse, ClientError> {
        let response = self.http.post(self.url(id, "/cancel")?).send().await;
        self.answer(response).await
    }

    async fn answer<T: serde::de::DeserializeOwned>(
        &self,
        response: reqwest::Result<reqwest::Response>,
    ) -> Result<T, ClientError> {
        let host = self.base.host_str().unwrap_or("?").to_owned();
        let mut response = response.map_err(|e| unreachable(&host, &e))?;
        let status = response.status();
        if response
            .content_length()
            .is_some_and(|n| n > MAX_BODY_BYTES as u64)
        {
            return Err(bad_answer("the answer is too large"));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| unreachable(&host, &e))? {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(bad_answer("the answer is too large"));
            }
            body.extend_from_slice(&chunk);
        }
        if status.is_success() {
            return serde_json::from_slice(&body).map_err(|_| bad_answer("unexpected answer"));
        }
        Err(server_error(status, &body))
    }
}

/// Maps a server error envelope to our error, keeping the server's code.
fn server_error(status: reqwest::StatusCode, body: &[u8]) -> ClientError {
    match serde_json::from_slice::<WireErrorEnvelope>(body) {
        Ok(envelope) => {
            let quoted = format!("\"{}\"", envelope.error.code);
            let code = serde_json::from_str::<ErrorCode>(&quoted).unwrap_or(ErrorCode::Internal);
            ClientError(ErrorBody::new(
                code,
                envelope.error.message.chars().take(300).collect::<String>(),
            ))
        }
        Err(_) => ClientError::new(
            ErrorCode::Network,
            format!("the SecureSign API answered HTTP {}", status.as_u16()),
        ),
    }
}

fn unreachable(host: &str, err: &reqwest::Error) -> ClientError {
    let what = if err.is_timeout() {
        "did not answer in time"
    } else {
        "cannot be reached"
    };
    ClientError::new(
        ErrorCode::Network,
        format!("the SecureSign API at {host} {what}"),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn server_errors_keep_their_code_and_get_our_resolution() {
        let body = br#"{"success":false,"error":{"code":"SS_SESSION_EXPIRED","message":"the signing session timed out","resolution":"x"}}"#;
        let err = server_error(reqwest::StatusCode::GONE, body);
        assert_eq!(err.code(), ErrorCode::SessionExpired);
        assert_eq!(err.0.resolution, "Re-initiate sign flow");
        let err = server_error(reqwest::StatusCode::BAD_GATEWAY, b"<html>");
        assert_eq!(err.code(), ErrorCode::Network);
        assert!(err.0.message.contains("502"));
        let unknown = br#"{"error":{"code":"SS_NEW_THING","message":"m"}}"#;
        assert_eq!(
            server_error(reqwest::StatusCode::BAD_REQUEST, unknown).code(),
            ErrorCode::Internal
        );
    }
}
