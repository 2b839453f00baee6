//! Noticing that a PKCS#11 token was pulled out, without waiting for the next token call.
//!
//! PC/SC has reader events ([`crate::apdu::pcsc::ReaderWatcher`]); PKCS#11 has
//! `C_WaitForSlotEvent`, which many vendor modules do not implement (or implement only
//! blocking, with no way to stop the wait but `C_Finalize`). So the [`SlotWatcher`] polls
//! `C_GetSlotInfo` for `CKF_TOKEN_PRESENT` on an interval, which every module supports
//! and which logs nothing in and spends nothing. The decision — what a poll means — is
//! the sans-IO [`SlotPresence`], tested without a module.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use cryptoki::slot::Slot;

use super::Pkcs11Module;
use crate::error::{Error, Result};

/// A change of the token in the watched slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotEvent {
    /// The token was taken out (or the slot became unreachable).
    Removed,
    /// A token was put in.
    Inserted,
}

/// What one look at the slot saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotObservation {
    /// `CKF_TOKEN_PRESENT` is set.
    Present,
    /// The slot is there, without a token.
    Absent,
    /// `C_GetSlotInfo` failed (slot gone, device error, module trouble): the token is
    /// unreachable for us, which for a signing session is the same as removed.
    Unreachable,
}

/// Turns observations into events (sans-IO). The first state is the baseline; only
/// changes are reported, each once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotPresence {
    present: bool,
}

impl SlotPresence {
    /// Starts from the baseline observation.
    pub fn new(baseline: SlotObservation) -> Self {
        Self {
            present: baseline == SlotObservation::Present,
        }
    }

    /// Whether the token was present at the last observation.
    pub fn is_present(&self) -> bool {
        self.present
    }

    /// Records an observation; returns the event it means, if any.
    pub fn observe(&mut self, seen: SlotObservation) -> Option<SlotEvent> {
        let now_present = seen == SlotObservation::Present;
        let event = match (self.present, now_present) {
            (true, false) => Some(SlotEvent::Removed),
            (false, true) => Some(SlotEvent::Inserted),
            _ => None,
        };
        self.present = now_present;
        event
    }
}

/// Default time between two looks at the slot: a pulled token is noticed within about
/// this long plus one `C_GetSlotInfo` (OpenSC over the virtual card: ~0.2 s after the
/// card went, with a 100 ms interval).
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(500);

/// How long dropping a [`SlotWatcher`] waits for its thread to end: far more than one
/// `C_GetSlotInfo`, which normally ends within milliseconds.
pub const STOP_WAIT: Duration = Duration::from_secs(2);

/// Polls one slot of a module in its own thread and reports token removal and
/// insertion. Dropping the watcher stops the thread at its next wake-up and joins it
/// (at most one `C_GetSlotInfo` in progress plus no wait). A thread still inside the
/// module after [`STOP_WAIT`] is left behind (detached), not joined: a module can hang
/// for good (OpenSC 0.23 keeps its global lock inside a deadlocked `C_Sign`, and every
/// `C_GetSlotInfo` then waits on it), and dropping the watcher must not hang with it.
pub struct SlotWatcher {
    stop: Option<Sender<()>>,
    /// Disconnected when the thread has ended.
    ended: Receiver<()>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for SlotWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlotWatcher")
            .field("running", &self.thread.is_some())
            .finish()
    }
}

impl SlotWatcher {
    /// Starts watching slot `slot_id` of `module` every `interval`; `on_event` runs on
    /// the watcher thread. The baseline is read before this returns, so a removal right
    /// after `spawn` is seen.
    pub fn spawn(
        module: &Pkcs11Module,
        slot_id: u64,
        interval: Duration,
        on_event: impl FnMut(SlotEvent) + Send + 'static,
    ) -> Result<Self> {
        let ctx = module.ctx.clone();
        let slot = ctx
            .get_all_slots()
            .map_err(|e| Error::Token(format!("C_GetSlotList failed: {e}")))?
            .into_iter()
            .find(|s| s.id() == slot_id)
            .ok_or_else(|| Error::Config(format!("no PKCS#11 slot {slot_id}")))?;
        let look = move |slot: Slot| match ctx.get_slot_info(slot) {
            Ok(info) if info.token_present() => SlotObservation::Present,
            Ok(_) => SlotObservation::Absent,
            Err(_) => SlotObservation::Unreachable,
        };
        let presence = SlotPresence::new(look(slot));
        let (stop, stopped) = mpsc::channel::<()>();
        let (alive, ended) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("securesign-slot-watch".into())
            .spawn(move || {
                // Dropped when the thread ends, after everything else it holds (locals
                // drop in reverse order; the module context may finalize here): that is
                // what `ended` hears.
                let _alive = alive;
                let (look, mut presence, mut on_event) = (look, presence, on_event);
                loop {
                    match stopped.recv_timeout(interval) {
                        Err(RecvTimeoutError::Timeout) => {}
                        // Told to stop, or the watcher is gone.
                        Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
                    }
                    if let Some(event) = presence.observe(look(slot)) {
                        on_event(event);
                    }
                }
            })
            .map_err(|e| Error::Internal(format!("cannot start the slot watcher: {e}")))?;
        Ok(Self {
            stop: Some(stop),
            ended,
            thread: Some(thread),
        })
    }
}

impl Drop for SlotWatcher {
    fn drop(&mut self) {
        // Dropping the sender wakes the thread's wait at once.
        self.stop.take();
        if let Some(thread) = self.thread.take() {
            match self.ended.recv_timeout(STOP_WAIT) {
                Err(RecvTimeoutError::Timeout) => {
                    // Stuck in the module: leave it behind; it ends if the module answers.
                }
                Ok(()) | Err(RecvTimeoutError::Disconnected) => {
                    let _ = thread.join();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use SlotObservation::{Absent, Present, Unreachable};

    #[test]
    fn removal_and_insertion_are_reported_once_each() {
        let mut slot = SlotPresence::new(Present);
        assert_eq!(slot.observe(Present), None);
        assert_eq!(slot.observe(Absent), Some(SlotEvent::Removed));
        assert_eq!(slot.observe(Absent), None);
        assert_eq!(slot.observe(Present), Some(SlotEvent::Inserted));
        assert_eq!(slot.observe(Present), None);
        assert!(slot.is_present());
    }

    #[test]
    fn an_unreachable_slot_is_a_removal_and_its_return_an_insertion() {
        let mut slot = SlotPresence::new(Present);
        assert_eq!(slot.observe(Unreachable), Some(SlotEvent::Removed));
        assert_eq!(slot.observe(Unreachable), None);
        assert_eq!(slot.observe(Absent), None);
        assert_eq!(slot.observe(Present), Some(SlotEvent::Inserted));
    }

    #[test]
    fn the_baseline_is_not_an_event() {
        let mut empty = SlotPresence::new(Absent);
        assert!(!empty.is_present());
        assert_eq!(empty.observe(Absent), None);
        let mut broken = SlotPresence::new(Unreachable);
        assert_eq!(broken.observe(Unreachable), None);
        assert_eq!(broken.observe(Present), Some(SlotEvent::Inserted));
    }
}
