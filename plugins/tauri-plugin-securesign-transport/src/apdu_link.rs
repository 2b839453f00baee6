//! NFC (Android IsoDep, iOS NFCISO7816Tag) and iOS TKSmartCard: links that carry one APDU
//! per call. The platform transceives; chaining, `61xx`/`6Cxx` and PIV stay in the core.

use std::time::Duration;

use securesign_core::apdu::{ApduTransport, TransportError};

use crate::models::{ApduLinkInfo, ApduLinkKind, NFC_MIN_TIMEOUT};
use crate::raw::{RawError, RawTransfers};

/// How long [`PlatformApduTransport::open`] waits for a card by default.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(60);

/// One card on a platform APDU link, as the core's [`ApduTransport`].
///
/// After any failure the link is broken: the next call connects again (the user taps the
/// card again) and the card application must be selected again, as the trait says.
#[derive(Debug)]
pub struct PlatformApduTransport<T: RawTransfers> {
    raw: T,
    kind: ApduLinkKind,
    wait: Duration,
    info: Option<ApduLinkInfo>,
    name: String,
}

impl<T: RawTransfers> PlatformApduTransport<T> {
    /// Waits up to `wait` for a card on the `kind` link and connects to it.
    pub fn open(mut raw: T, kind: ApduLinkKind, wait: Duration) -> Result<Self, RawError> {
        let info = raw.apdu_connect(kind, wait, NFC_MIN_TIMEOUT)?;
        Ok(Self {
            raw,
            kind,
            wait,
            name: info.name.clone(),
            info: Some(info),
        })
    }

    /// What the platform said about the link, while connected.
    pub fn info(&self) -> Option<&ApduLinkInfo> {
        self.info.as_ref()
    }

    fn connected(&mut self) -> Result<&ApduLinkInfo, TransportError> {
        if self.info.is_none() {
            let info = self
                .raw
                .apdu_connect(self.kind, self.wait, NFC_MIN_TIMEOUT)?;
            self.info = Some(info);
        }
        self.info
            .as_ref()
            .ok_or_else(|| TransportError::Other("no APDU link".into()))
    }

    fn broken<E: Into<TransportError>>(&mut self, e: E) -> TransportError {
        self.info = None;
        e.into()
    }
}

impl<T: RawTransfers> ApduTransport for PlatformApduTransport<T> {
    fn reader_name(&self) -> &str {
        &self.name
    }

    fn card_present(&mut self) -> Result<bool, TransportError> {
        if self.info.is_none() {
            return Ok(false);
        }
        match self.raw.apdu_present() {
            Ok(present) => {
                if !present {
                    self.info = None;
                }
                Ok(present)
            }
            Err(RawError::CardAbsent) => {
                self.info = None;
                Ok(false)
            }
            Err(e) => Err(self.broken(e)),
        }
    }

    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        let max = self.connected()?.max_apdu_len;
        if apdu.len() < 4 || apdu.len() > max {
            // Refused before the card: nothing was sent, the link stays up.
            return Err(TransportError::Other(format!(
                "a command APDU of {} bytes does not fit this link (4..={max})",
                apdu.len()
            )));
        }
        let response = match self.raw.apdu_transmit(apdu) {
            Ok(response) => response,
            Err(e) => return Err(self.broken(e)),
        };
        if response.len() < 2 {
            return Err(self.broken(TransportError::Malformed(format!(
                "a response of {} bytes has no status word",
                response.len()
            ))));
        }
        Ok(response)
    }
}

impl<T: RawTransfers> Drop for PlatformApduTransport<T> {
    fn drop(&mut self) {
        // Ends reader mode / the NFC session; nothing to do if it is already gone.
        let _ = self.raw.apdu_disconnect();
    }
}
