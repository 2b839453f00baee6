//! Signing a batch one document at a time in one PIN session, handing each signature on as
//! soon as the token made it (a file batch writes it at once), and stopping between
//! documents on Ctrl-C.

use std::io::{IsTerminal, Write};

use securesign_core::batch::CancelFlag;
use securesign_core::clock::{Clock, SystemClock};
use securesign_core::cms;
use securesign_core::digest::Sha256Digest;
use securesign_core::{Error, Result, SignerKey};

use crate::args::SignatureFormat;
use crate::commands::AnyToken;
use crate::interrupt::Interrupt;

/// Signs every `(index, document digest)` of `items` with `key` in `format` (for CMS, the
/// signed attributes are built at the moment each document is signed), calling
/// `completed(index, signature)` right after each one. Returns why it stopped early: a
/// token error, an error of `completed`, or `SS_SIGN_CANCELLED` after Ctrl-C (the document
/// being signed is finished first).
pub fn sign_each(
    token: &mut AnyToken,
    key: &SignerKey,
    format: SignatureFormat,
    items: &[(usize, Sha256Digest)],
    interrupt: &Interrupt,
    show_progress: bool,
    mut completed: impl FnMut(usize, Vec<u8>) -> Result<()>,
) -> Option<Error> {
    let show_progress = show_progress && std::io::stderr().is_terminal();
    let mut stopped = None;
    for (done, (index, digest)) in items.iter().enumerate() {
        if interrupt.raised() {
            stopped = Some(Error::Cancelled);
            break;
        }
        if show_progress {
            eprint!("\rSigning {}/{}", done + 1, items.len());
            let _ = std::io::stderr().flush();
        }
        if let Err(e) = sign_one(token, key, format, digest).and_then(|sig| completed(*index, sig))
        {
            stopped = Some(e);
            break;
        }
    }
    if show_progress {
        eprintln!();
    }
    stopped
}

fn sign_one(
    token: &mut AnyToken,
    key: &SignerKey,
    format: SignatureFormat,
    digest: &Sha256Digest,
) -> Result<Vec<u8>> {
    let prepared = match format {
        SignatureFormat::Raw => None,
        SignatureFormat::Cms => Some(cms::prepare(digest, SystemClock.wall())?),
    };
    let to_sign = prepared.as_ref().map_or(*digest, |p| p.to_sign);
    let mut outcome = token.sign_batch(
        key,
        std::slice::from_ref(&to_sign),
        &SystemClock,
        &CancelFlag::new(),
        &mut |_| {},
    );
    if let Some(e) = outcome.error.take() {
        return Err(e);
    }
    let signature = outcome
        .signed
        .pop()
        .ok_or_else(|| Error::Internal("the token returned no signature".into()))?
        .signature;
    match prepared {
        None => Ok(signature),
        Some(p) => cms::assemble(&p, &key.certificate_der, key.scheme, &signature),
    }
}
