//! Watches a phone token's [`Presence`] on its own thread and reports, once, that the
//! token went away, so that the token worker ends the PIN session at once rather than
//! at its next transfer.

use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::token::{Look, Presence};

/// Time between two looks (a USB look waits this long for an interrupt message itself).
pub const DEFAULT_LOOK_INTERVAL: Duration = Duration::from_millis(500);

/// The watching thread. Dropping it stops the thread after at most one look and joins it.
pub struct PresenceWatcher {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for PresenceWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PresenceWatcher")
            .field("running", &self.thread.is_some())
            .finish()
    }
}

impl PresenceWatcher {
    /// Looks at `presence` every `interval`; `on_gone` runs once, on the watcher thread,
    /// when the token is gone, and the thread ends.
    pub fn spawn(
        mut presence: Presence,
        interval: Duration,
        on_gone: impl FnOnce() + Send + 'static,
    ) -> std::io::Result<Self> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("securesign-phone-token-watch".into())
            .spawn(move || loop {
                let wait = if presence.paces_itself() {
                    Duration::ZERO
                } else {
                    interval
                };
                match stopped.recv_timeout(wait) {
                    Err(RecvTimeoutError::Timeout) => {}
                    Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
                }
                if presence.look(interval) == Look::Gone {
                    on_gone();
                    return;
                }
            })?;
        Ok(Self {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for PresenceWatcher {
    fn drop(&mut self) {
        // Dropping the sender ends the thread's wait at once (a USB look in progress
        // finishes first, at most one interval).
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
