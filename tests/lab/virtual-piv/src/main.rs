//! `securesign-virtual-piv`: a virtual PIV smart card for the SecureSign token lab.
//!
//! Nitrokey's `piv-authenticator` runs on trussed's software platform and is plugged into
//! pcscd through vsmartcard's vpcd driver, so PC/SC clients (OpenSC, the `pcsc` crate) see a
//! card in the reader "Virtual PCD 00 00" (port 35963) or "Virtual PCD 00 01" (port 35964).
//!
//! This is test equipment: the trussed virtual platform starts from a fixed RNG seed, so a fresh
//! card generates the same keys every time. Never keep anything real on it.

mod args;
mod card;
mod link;
mod platform;

use std::{io::Write as _, process::ExitCode};

use piv_authenticator::{Authenticator, Options};

use crate::{
    args::{Args, ArgsError},
    card::VirtualPivCard,
    link::{LinkError, VpcdLink},
    platform::{with_card_client, CardStorage},
};

/// Everything that stops the card.
#[derive(Debug, thiserror::Error)]
enum CardError {
    #[error(transparent)]
    Args(#[from] ArgsError),
    #[error(transparent)]
    State(#[from] args::StateError),
    #[error(transparent)]
    Link(#[from] LinkError),
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(CardError::Args(ArgsError::HelpRequested)) => {
            println!("{}", args::USAGE);
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("securesign-virtual-piv: {err}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), CardError> {
    let args = Args::parse(std::env::args().skip(1))?;
    let storage = args.storage()?;
    let link = VpcdLink::connect(args.port)?;
    with_card_client(&storage, |client| {
        let mut card = VirtualPivCard::new(Authenticator::new(client, Options::default()));
        announce_ready(&link, &storage);
        link.serve(&mut card, args.quickack)
    })?;
    eprintln!("securesign-virtual-piv: vpcd closed the link, card removed");
    Ok(())
}

/// Prints the line start scripts wait for.
fn announce_ready(link: &VpcdLink, storage: &CardStorage) {
    let state = storage
        .directory()
        .map_or_else(|| "ram".to_owned(), |dir| dir.display().to_string());
    println!(
        "securesign-virtual-piv ready pid={} vpcd={} state={}",
        std::process::id(),
        link.addr(),
        state
    );
    // The line is the readiness signal: it must not sit in a buffer.
    let _ = std::io::stdout().flush();
}
