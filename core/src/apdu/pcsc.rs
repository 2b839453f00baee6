//! The PC/SC transport (pcsc-lite, WinSCard, CryptoTokenKit) on the `pcsc` crate, and a
//! watcher that reports card removal from reader events.
//!
//! The card is opened in shared mode, and every logical command (with its chaining) runs
//! inside a PC/SC transaction, so another application cannot slip an APDU between the
//! parts of a chained command or a GET RESPONSE sequence. A connection that broke is
//! dropped with a card reset (which clears a verified PIN); a normal close leaves the
//! card as it is, after the backend logged out.

use std::ffi::CString;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use pcsc::{Card, Context, Protocols, ReaderState, Scope, ShareMode, State};
use serde::Serialize;

use super::chain::exchange_with;
use super::{ApduTransport, Command, Response, TransportError};

/// A reader and whether it holds a card, as `securesign readers` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReaderInfo {
    /// PC/SC reader name, e.g. `Virtual PCD 00 00`.
    pub name: String,
    /// Whether a card is inserted.
    pub card_present: bool,
}

/// Every PC/SC reader and whether it holds a card.
pub fn list_readers() -> Result<Vec<ReaderInfo>, TransportError> {
    let context = establish()?;
    let names = match context.list_readers_owned() {
        Ok(names) => names,
        Err(pcsc::Error::NoReadersAvailable) => return Ok(Vec::new()),
        Err(e) => return Err(map_error(e)),
    };
    let mut states: Vec<ReaderState> = names
        .into_iter()
        .map(|name| ReaderState::new(name, State::UNAWARE))
        .collect();
    context
        .get_status_change(std::time::Duration::ZERO, &mut states)
        .map_err(map_error)?;
    Ok(states
        .iter()
        .map(|s| ReaderInfo {
            name: s.name().to_string_lossy().into_owned(),
            card_present: s.event_state().contains(State::PRESENT),
        })
        .collect())
}

fn establish() -> Result<Context, TransportError> {
    Context::establish(Scope::User).map_err(map_error)
}

/// The card in one PC/SC reader.
pub struct PcscTransport {
    context: Context,
    reader: CString,
    reader_name: String,
    card: Option<Card>,
}

impl std::fmt::Debug for PcscTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcscTransport")
            .field("reader", &self.reader_name)
            .field("connected", &self.card.is_some())
            .finish()
    }
}

impl PcscTransport {
    /// Connects to the card in the reader named `reader` (exact PC/SC name).
    ///
    /// Fails with [`TransportError::ReaderUnavailable`] for an unknown reader and
    /// [`TransportError::CardAbsent`] when it is empty.
    pub fn open(reader: &str) -> Result<Self, TransportError> {
        let reader_c = CString::new(reader)
            .map_err(|_| TransportError::ReaderUnavailable("reader name contains NUL".into()))?;
        let mut transport = Self {
            context: establish()?,
            reader: reader_c,
            reader_name: reader.to_owned(),
            card: None,
        };
        transport.card()?;
        Ok(transport)
    }

    fn card(&mut self) -> Result<&mut Card, TransportError> {
        if self.card.is_none() {
            let card = self
                .context
                .connect(&self.reader, ShareMode::Shared, Protocols::ANY)
                .map_err(map_error)?;
            self.card = Some(card);
        }
        self.card
            .as_mut()
            .ok_or_else(|| TransportError::Other("card handle vanished".into()))
    }

    /// Forgets a broken connection; the next call connects again.
    fn broken(&mut self) {
        self.card = None;
    }
}

/// Lets go of the card without resetting it, so other applications' sessions survive;
/// the PIV backend logs out (VERIFY `P1=FF`) before. If the disconnect fails, dropping
/// the handle resets the card.
impl Drop for PcscTransport {
    fn drop(&mut self) {
        if let Some(card) = self.card.take() {
            let _ = card.disconnect(pcsc::Disposition::LeaveCard);
        }
    }
}

/// Sends one short APDU on `card`.
fn transmit_on(card: &Card, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
    let mut buffer = [0u8; pcsc::MAX_BUFFER_SIZE];
    card.transmit(apdu, &mut buffer)
        .map(<[u8]>::to_vec)
        .map_err(map_error)
}

impl ApduTransport for PcscTransport {
    fn reader_name(&self) -> &str {
        &self.reader_name
    }

    fn card_present(&mut self) -> Result<bool, TransportError> {
        let mut states = [ReaderState::new(self.reader.clone(), State::UNAWARE)];
        self.context
            .get_status_change(std::time::Duration::ZERO, &mut states)
            .map_err(map_error)?;
        Ok(states[0].event_state().contains(State::PRESENT))
    }

    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        let result = transmit_on(self.card()?, apdu);
        if result.is_err() {
            self.broken();
        }
        result
    }

    fn exchange(&mut self, command: &Command) -> Result<Response, TransportError> {
        let mut answers = self.exchange_sequence(std::slice::from_ref(command))?;
        answers
            .pop()
            .ok_or_else(|| TransportError::Other("no answer".into()))
    }

    fn exchange_sequence(&mut self, commands: &[Command]) -> Result<Vec<Response>, TransportError> {
        let card = self.card()?;
        let result = match card.transaction() {
            Ok(transaction) => {
                let mut answers = Vec::with_capacity(commands.len());
                let mut failure = None;
                for command in commands {
                    match exchange_with(&mut |apdu| transmit_on(&transaction, apdu), command) {
                        Ok(answer) => {
                            let ok = answer.sw.is_ok();
                            answers.push(answer);
                            if !ok {
                                break;
                            }
                        }
                        Err(e) => {
                            failure = Some(e);
                            break;
                        }
                    }
                }
                // The transaction ends here (LeaveCard) when `transaction` drops.
                failure.map_or(Ok(answers), Err)
            }
            Err(e) => Err(map_error(e)),
        };
        if result.is_err() {
            self.broken();
        }
        result
    }
}

/// What a PC/SC error means for a card application.
fn map_error(err: pcsc::Error) -> TransportError {
    use pcsc::Error as E;
    match err {
        E::NoSmartcard | E::RemovedCard | E::UnpoweredCard | E::UnresponsiveCard => {
            TransportError::CardAbsent
        }
        E::ResetCard => TransportError::CardReset,
        E::UnknownReader
        | E::ReaderUnavailable
        | E::NoReadersAvailable
        | E::NoService
        | E::ServiceStopped
        | E::Shutdown => TransportError::ReaderUnavailable(err.to_string()),
        other => TransportError::Other(other.to_string()),
    }
}

/// A change of the card in the watched reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardEvent {
    /// The card was taken out (or the reader went away).
    Removed,
    /// A card was put in.
    Inserted,
}

/// Watches one reader with `SCardGetStatusChange` in its own thread and reports card
/// removal and insertion. Blocks in PC/SC between events (no polling); dropping the
/// watcher cancels the wait and joins the thread.
pub struct ReaderWatcher {
    context: Context,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ReaderWatcher {
    /// Starts watching `reader`; `on_event` runs on the watcher thread. The first state
    /// seen is the baseline: nothing is reported for it.
    pub fn spawn(
        reader: &str,
        mut on_event: impl FnMut(CardEvent) + Send + 'static,
    ) -> Result<Self, TransportError> {
        let context = establish()?;
        let name = CString::new(reader)
            .map_err(|_| TransportError::ReaderUnavailable("reader name contains NUL".into()))?;
        // Read the baseline before returning, so a removal right after `spawn` is seen.
        let mut states = [ReaderState::new(name, State::UNAWARE)];
        context
            .get_status_change(std::time::Duration::ZERO, &mut states)
            .map_err(map_error)?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread_context = context.clone();
        let thread_stop = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("securesign-reader-watch".into())
            .spawn(move || watch(&thread_context, states, &thread_stop, &mut on_event))
            .map_err(|e| TransportError::Other(format!("cannot start reader watcher: {e}")))?;
        Ok(Self {
            context,
            stop,
            thread: Some(thread),
        })
    }
}

/// How long one status wait lasts before the watcher re-checks whether it was dropped.
const STOP_CHECK_INTERVAL: std::time::Duration = std::time::Duration::from_millis(250);

fn watch(
    context: &Context,
    mut states: [ReaderState; 1],
    stop: &AtomicBool,
    on_event: &mut dyn FnMut(CardEvent),
) {
    let mut present = states[0].event_state().contains(State::PRESENT);
    let mut count = states[0].event_count();
    states[0].sync_current_state();
    while !stop.load(Ordering::SeqCst) {
        // A bounded wait: a cancel that lands between the stop check and the call would
        // otherwise be lost and the wait would never return (SCardCancel only cancels a
        // call in progress). Timeouts just re-check the stop flag.
        match context.get_status_change(Some(STOP_CHECK_INTERVAL), &mut states) {
            Ok(()) => {}
            Err(pcsc::Error::Timeout) => continue,
            Err(_) => {
                // Cancelled (drop), or the daemon went away: the card is unreachable either way.
                if !stop.load(Ordering::SeqCst) && present {
                    on_event(CardEvent::Removed);
                }
                return;
            }
        }
        let state = states[0].event_state();
        let gone = state.intersects(State::UNAVAILABLE | State::UNKNOWN | State::IGNORE);
        let now_present = state.contains(State::PRESENT) && !gone;
        // A quick out-and-in shows as a changed event count with the card still present.
        let swapped = now_present && present && states[0].event_count() != count;
        if present && (!now_present || swapped) {
            on_event(CardEvent::Removed);
        }
        if now_present && (!present || swapped) {
            on_event(CardEvent::Inserted);
        }
        present = now_present;
        count = states[0].event_count();
        states[0].sync_current_state();
        if gone {
            return;
        }
    }
}

impl Drop for ReaderWatcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.context.cancel();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
