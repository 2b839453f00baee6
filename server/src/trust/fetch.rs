//! Bounded HTTP fetches of revocation data (CRLs, OCSP responses).
//!
//! A certificate's CRL distribution point and OCSP address are chosen by whoever made
//! the certificate, so they are attacker-influenced input: like callbacks, they are
//! fetched only from public addresses (unless the server runs with
//! `--allow-private-callbacks`), without redirects, within a time limit, and read only up
//! to a size limit.

use std::sync::Arc;
use std::time::Duration;

use crate::webhook::destination::{check_literal_host, DestinationError, PublicOnlyResolver};
use crate::webhook::worker::describe;

/// How long one fetch may take, connection included.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// How long connecting may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a fetch failed (the message names no secret: URLs come from certificates).
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// Not an `http`/`https` URL.
    #[error("{0} is not an http(s) URL")]
    Url(String),
    /// The address is not public.
    #[error("{0}")]
    Destination(String),
    /// Connection, TLS, time-out or protocol failure.
    #[error("{url}: {message}")]
    Transport {
        /// The URL.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// The server answered with another status than 200.
    #[error("{url} answered HTTP {status}")]
    Status {
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
    },
    /// The body is larger than allowed.
    #[error("{url} sent more than {limit} bytes")]
    TooLarge {
        /// The URL.
        url: String,
        /// The limit.
        limit: usize,
    },
}

/// An HTTP client for revocation data.
#[derive(Debug, Clone)]
pub struct RevocationFetcher {
    client: reqwest::Client,
    allow_private: bool,
}

impl RevocationFetcher {
    /// A client that reaches only public addresses unless `allow_private`.
    pub fn new(allow_private: bool) -> Result<Self, reqwest::Error> {
        let mut builder = reqwest::Client::builder();
        if !allow_private {
            builder = builder.dns_resolver(Arc::new(PublicOnlyResolver));
        }
        let client = builder
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(FETCH_TIMEOUT)
            .no_proxy()
            .user_agent(concat!("SecureSign-Revocation/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            client,
            allow_private,
        })
    }

    /// `GET url`, at most `limit` bytes of body.
    pub async fn get(&self, url: &str, limit: usize) -> Result<Vec<u8>, FetchError> {
        let parsed = self.checked_url(url)?;
        self.read(url, self.client.get(parsed), limit).await
    }

    /// `POST url` with `body` of `content_type`, at most `limit` bytes of answer.
    pub async fn post(
        &self,
        url: &str,
        content_type: &'static str,
        body: Vec<u8>,
        limit: usize,
    ) -> Result<Vec<u8>, FetchError> {
        let parsed = self.checked_url(url)?;
        let request = self
            .client
            .post(parsed)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body);
        self.read(url, request, limit).await
    }

    fn checked_url(&self, url: &str) -> Result<reqwest::Url, FetchError> {
        let parsed = reqwest::Url::parse(url).map_err(|_| FetchError::Url(url.to_owned()))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
            return Err(FetchError::Url(url.to_owned()));
        }
        if !self.allow_private {
            check_literal_host(&parsed).map_err(|e| {
                FetchError::Destination(match e {
                    DestinationError::NonGlobalLiteral { addr, range } => {
                        format!("{url}: address {addr} is {range}, not public; refused")
                    }
                    other => format!("{url}: {other}"),
                })
            })?;
        }
        Ok(parsed)
    }

    async fn read(
        &self,
        url: &str,
        request: reqwest::RequestBuilder,
        limit: usize,
    ) -> Result<Vec<u8>, FetchError> {
        let transport = |err: reqwest::Error| FetchError::Transport {
            url: url.to_owned(),
            message: describe(&err),
        };
        let mut response = request.send().await.map_err(transport)?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(FetchError::Status {
                url: url.to_owned(),
                status: response.status().as_u16(),
            });
        }
        let too_large = || FetchError::TooLarge {
            url: url.to_owned(),
            limit,
        };
        if response
            .content_length()
            .is_some_and(|len| len > limit as u64)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(transport)? {
            if body.len() + chunk.len() > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}
