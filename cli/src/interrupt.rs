//! Ctrl-C during a batch: the first SIGINT asks the batch to stop after the document being
//! signed (its signature is completed and written); a second one ends the process at once
//! (the default action), for a token that does not answer.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use securesign_core::{Error, Result};
use signal_hook::consts::SIGINT;

/// Whether Ctrl-C was pressed since [`Interrupt::install`].
#[derive(Debug, Clone)]
pub struct Interrupt(Arc<AtomicBool>);

impl Interrupt {
    /// Catches SIGINT from now on. Installed only once the PIN was entered, so that
    /// Ctrl-C at a prompt still ends the program as usual.
    pub fn install() -> Result<Self> {
        let flag = Arc::new(AtomicBool::new(false));
        let failed = |e: std::io::Error| Error::Internal(format!("cannot catch Ctrl-C: {e}"));
        // Registered first, so it sees the flag before the second handler sets it: a
        // SIGINT with the flag already set takes the default action.
        signal_hook::flag::register_conditional_default(SIGINT, Arc::clone(&flag))
            .map_err(failed)?;
        signal_hook::flag::register(SIGINT, Arc::clone(&flag)).map_err(failed)?;
        Ok(Self(flag))
    }

    /// True once Ctrl-C was pressed.
    pub fn raised(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}
