//! One signing pass over the documents of a request that are not signed yet, in the format
//! the portal asked for: the document digests themselves (raw), or for CMS the digests of
//! signed attributes built by `securesign_core::cms::prepare`, signed as one batch on the
//! token and wrapped by `cms::assemble`.

use securesign_core::batch::CancelFlag;
use securesign_core::cms::{self, PreparedSignature};
use securesign_core::token::KeySelector;
use securesign_core::worker::TokenWorker;
use securesign_core::{Error, Result};
use time::OffsetDateTime;

use crate::api::{SignRequest, SignatureFormat};
use crate::state::Current;

/// What is left to sign of a request.
#[derive(Debug, Clone)]
pub struct Pending {
    /// The request.
    pub request: SignRequest,
    /// Indices of the documents without a kept signature.
    pub indices: Vec<usize>,
    /// The certificate the kept signatures were made with.
    pub kept_certificate: Option<Vec<u8>>,
}

impl Pending {
    /// What the request on screen still needs.
    pub fn of(current: &Current) -> Self {
        Self {
            request: current.request.clone(),
            indices: current
                .done
                .iter()
                .enumerate()
                .filter(|(_, sig)| sig.is_none())
                .map(|(i, _)| i)
                .collect(),
            kept_certificate: current.done_with.clone(),
        }
    }
}

/// What one pass produced.
#[derive(Debug)]
pub struct PassResult {
    /// The signer certificate (DER) of these signatures.
    pub certificate_der: Vec<u8>,
    /// `(document index, signature)` for every document signed in this pass.
    pub signed: Vec<(usize, Vec<u8>)>,
    /// Why the pass stopped before the end (cancel, token removed, PIN session ended).
    pub error: Option<Error>,
}

/// Signs `pending` on the token behind `worker` with the key `selector` picks, refusing a
/// key that is not the portal's expected signer (`SS_SIGNER_MISMATCH`). When the
/// token's certificate is not the one of the kept signatures, every document is signed
/// again (signatures of two certificates never go into one result).
pub fn sign_pending(
    worker: &TokenWorker,
    selector: KeySelector,
    pending: Pending,
    cancel: CancelFlag,
) -> Result<PassResult> {
    let signer = worker.signer(selector)?;
    // The token may have been changed since the request screen: never sign as another signer.
    crate::signer_gate::admit(pending.request.expected_signer.as_ref(), &signer)?;
    let documents = &pending.request.documents;
    let indices = match &pending.kept_certificate {
        Some(kept) if *kept != signer.certificate_der => (0..documents.len()).collect(),
        _ => pending.indices,
    };
    let digests = indices
        .iter()
        .map(|&i| {
            documents
                .get(i)
                .map(|d| d.digest)
                .ok_or_else(|| Error::Internal(format!("no document {i}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let prepared = match pending.request.signature_format {
        SignatureFormat::Raw => None,
        SignatureFormat::Cms => {
            let now = OffsetDateTime::now_utc();
            Some(
                digests
                    .iter()
                    .map(|d| cms::prepare(d, now))
                    .collect::<Result<Vec<PreparedSignature>>>()?,
            )
        }
    };
    let to_sign = match &prepared {
        None => digests,
        Some(prepared) => prepared.iter().map(|p| p.to_sign).collect(),
    };
    let outcome = worker.sign_batch(signer.clone(), to_sign, cancel)?;
    let mut error = outcome.error;
    let mut signed = Vec::with_capacity(outcome.signed.len());
    for item in outcome.signed {
        let Some(&index) = indices.get(item.index) else {
            error = Some(Error::Internal("the batch signed an unknown item".into()));
            break;
        };
        let signature = match prepared.as_ref().map(|p| p.get(item.index)) {
            None => item.signature,
            Some(Some(p)) => {
                match cms::assemble(p, &signer.certificate_der, signer.scheme, &item.signature) {
                    Ok(der) => der,
                    Err(err) => {
                        error = Some(err);
                        break;
                    }
                }
            }
            Some(None) => {
                error = Some(Error::Internal("the batch signed an unknown item".into()));
                break;
            }
        };
        signed.push((index, signature));
    }
    Ok(PassResult {
        certificate_der: signer.certificate_der,
        signed,
        error,
    })
}
