//! What the running app holds: settings, the token worker, the request on screen.
//!
//! Locks are held only for a field copy, never across an `.await` or a token call.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

// PC/SC is desktop only (core's `pcsc` feature, see Cargo.toml); phones have no PC/SC.
#[cfg(desktop)]
use securesign_core::apdu::pcsc::{list_readers, CardEvent, ReaderWatcher};
#[cfg(desktop)]
use securesign_core::backend::piv::PivBackend;
use securesign_core::backend::pkcs11::watch::DEFAULT_POLL_INTERVAL;
use securesign_core::backend::pkcs11::{Pkcs11Module, SlotEvent, SlotWatcher, TokenSelector};
use securesign_core::backend::TokenBackend;
use securesign_core::batch::CancelFlag;
use securesign_core::biometric::{BiometricAuthenticator, BiometricGate, GateStep};
use securesign_core::clock::SystemClock;
use securesign_core::token::{KeySelector, SignerKey};
use securesign_core::worker::{stalled, TokenEvent, TokenWorker, WorkerOptions};
use securesign_core::{Error, ErrorBody, ErrorCode};
use tauri_plugin_securesign_transport::apdu_link::DEFAULT_WAIT as TAP_WAIT;
use tauri_plugin_securesign_transport::presence_watch::DEFAULT_LOOK_INTERVAL;
use tauri_plugin_securesign_transport::{OpenPhoneToken, Presence, PresenceWatcher};

use crate::api::SignRequest;
use crate::error::{CommandError, CommandResult};
use crate::settings::{Settings, TokenSource};

/// How long the exit waits for the token to be logged out and closed
/// ([`AppState::close_for_exit`]).
pub const EXIT_CLOSE_WAIT: Duration = Duration::from_secs(3);

/// Links that may wait while a request is open.
pub const MAX_WAITING_LINKS: usize = 8;

/// Where token events go (the main window, or a test).
pub type EventSink = Arc<dyn Fn(&TokenEvent) + Send + Sync>;

/// The request on screen and how far its flow got.
pub struct Current {
    /// The request as loaded from the API.
    pub request: SignRequest,
    /// The checked signing key, when the token and certificate are usable.
    pub signer: Option<SignerKey>,
    /// The biometric gate of this request.
    pub gate: BiometricGate,
    /// The gate's latest step.
    pub step: GateStep,
    /// Signatures already made, by document index; kept when a batch stops early
    /// (cancel, token removed) so that resuming signs only what is left.
    pub done: Vec<Option<Vec<u8>>>,
    /// The certificate (DER) the kept signatures belong to.
    pub done_with: Option<Vec<u8>>,
    /// Why the token's signer may not sign this request (`SS_SIGNER_MISMATCH`,
    /// `SS_CERT_KEY_USAGE`): no PIN is sent and nothing is signed while it is set.
    pub refused: Option<ErrorBody>,
}

impl Current {
    /// The request on screen, nothing signed yet.
    pub fn new(
        request: SignRequest,
        signer: Option<SignerKey>,
        gate: BiometricGate,
        step: GateStep,
    ) -> Self {
        let done = vec![None; request.documents.len()];
        Self {
            request,
            signer,
            gate,
            step,
            done,
            done_with: None,
            refused: None,
        }
    }

    /// Documents signed so far.
    pub fn signed_count(&self) -> usize {
        self.done.iter().filter(|d| d.is_some()).count()
    }

    /// True once the gate let the flow through to the PIN or to signing.
    pub fn gate_passed(&self) -> bool {
        matches!(self.step, GateStep::SkipPin | GateStep::AskPin { .. })
    }
}

/// Reports token removal to the worker: reader events for a PC/SC card, `C_GetSlotInfo`
/// polling for a PKCS#11 token, the platform's presence for a phone token. Held for its
/// `Drop`, which stops it.
enum RemovalWatcher {
    #[cfg(desktop)]
    Reader(#[allow(dead_code)] ReaderWatcher),
    Slot(#[allow(dead_code)] SlotWatcher),
    Phone(#[allow(dead_code)] PresenceWatcher),
}

/// An open token. Fields drop in declaration order: the removal watcher (which holds a
/// worker handle to report removal) stops before the worker's own handle goes.
struct OpenToken {
    /// Reports removal to the worker (held for its `Drop`).
    _watcher: RemovalWatcher,
    /// Set by the watcher when the card went away; the next use opens the token afresh.
    removed: Arc<AtomicBool>,
    worker: TokenWorker,
}

/// App state managed by Tauri.
pub struct AppState {
    config_dir: PathBuf,
    settings: Mutex<Settings>,
    token: Arc<Mutex<Option<OpenToken>>>,
    /// Held while a command waits for a token to open (an NFC tap may take a minute), so
    /// that one opens at a time while `token` stays free for quick looks.
    opening: Arc<Mutex<()>>,
    /// Set while an open that outlived its wait still runs on its thread (a driver that
    /// stopped answering): token commands then fail at once instead of opening again.
    stuck_open: Arc<AtomicBool>,
    /// How token workers and token opens guard the commands (the stall limit).
    worker_options: Mutex<WorkerOptions>,
    /// Bumped when the token source changes: a token opened from the old source is
    /// not kept.
    source_generation: Arc<AtomicU64>,
    /// How phone tokens are reached (the transport plugin; set on phones, and by tests).
    phone: OnceLock<Arc<dyn OpenPhoneToken>>,
    current: Mutex<Option<Current>>,
    cancel: Mutex<Option<CancelFlag>>,
    pending_links: Mutex<VecDeque<String>>,
    sink: OnceLock<EventSink>,
    biometrics: Arc<dyn BiometricAuthenticator>,
}

/// Locks, recovering from a panic in another holder (the data are plain values).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl AppState {
    /// State with settings loaded from `config_dir`.
    pub fn new(
        config_dir: PathBuf,
        biometrics: Arc<dyn BiometricAuthenticator>,
    ) -> securesign_core::Result<Self> {
        let settings = Settings::load(&config_dir)?;
        Ok(Self {
            config_dir,
            settings: Mutex::new(settings),
            token: Arc::new(Mutex::new(None)),
            opening: Arc::new(Mutex::new(())),
            stuck_open: Arc::new(AtomicBool::new(false)),
            worker_options: Mutex::new(WorkerOptions::default()),
            source_generation: Arc::new(AtomicU64::new(0)),
            phone: OnceLock::new(),
            current: Mutex::new(None),
            cancel: Mutex::new(None),
            pending_links: Mutex::new(VecDeque::new()),
            sink: OnceLock::new(),
            biometrics,
        })
    }

    /// Sets where token events go (once, at setup).
    pub fn set_event_sink(&self, sink: EventSink) {
        let _ = self.sink.set(sink);
    }

    /// Sets how phone tokens are reached (once, at setup on phones; tests use a scripted
    /// platform). Without it, a phone token source is `SS_CONFIG`.
    pub fn set_phone_tokens(&self, phone: Arc<dyn OpenPhoneToken>) {
        let _ = self.phone.set(phone);
    }

    /// Sets how token workers and token opens guard the commands (default: a 30 s stall
    /// limit; tests shorten it). Applies to tokens opened from now on.
    pub fn set_worker_options(&self, options: WorkerOptions) {
        *lock(&self.worker_options) = options;
    }

    /// How token workers and token opens guard the commands now.
    pub fn worker_options(&self) -> WorkerOptions {
        *lock(&self.worker_options)
    }

    /// True while an open that gave up waiting (its driver stopped answering) still runs
    /// on its thread; token commands fail at once with the stalled error meanwhile, and
    /// open afresh once it ended.
    pub fn opening_stuck(&self) -> bool {
        self.stuck_open.load(Ordering::SeqCst)
    }

    /// The settings now.
    pub fn settings(&self) -> Settings {
        lock(&self.settings).clone()
    }

    /// Saves new settings and applies them to the running token.
    pub fn replace_settings(&self, new: Settings) -> CommandResult<()> {
        new.save(&self.config_dir)?;
        let mut settings = lock(&self.settings);
        let source_changed = settings.token_source != new.token_source;
        *settings = new.clone();
        drop(settings);
        if source_changed {
            self.source_generation.fetch_add(1, Ordering::SeqCst);
            let old = lock(&self.token).take();
            close(old);
        } else if let Some(open) = lock(&self.token).as_ref() {
            open.worker.set_policy(new.session_policy())?;
        }
        Ok(())
    }

    /// The platform's biometric prompt.
    pub fn biometrics(&self) -> Arc<dyn BiometricAuthenticator> {
        self.biometrics.clone()
    }

    /// The request on screen.
    pub fn current(&self) -> MutexGuard<'_, Option<Current>> {
        lock(&self.current)
    }

    /// Queues a link until the UI takes it (cold start, or another request is open). At
    /// most [`MAX_WAITING_LINKS`] wait; the same link twice waits once; beyond that the
    /// oldest is dropped.
    pub fn set_pending_link(&self, link: String) {
        let mut links = lock(&self.pending_links);
        if links.contains(&link) {
            return;
        }
        if links.len() == MAX_WAITING_LINKS {
            links.pop_front();
        }
        links.push_back(link);
    }

    /// Takes the oldest waiting link.
    pub fn take_pending_link(&self) -> Option<String> {
        lock(&self.pending_links).pop_front()
    }

    /// How many links wait.
    pub fn waiting_links(&self) -> usize {
        lock(&self.pending_links).len()
    }

    /// A fresh cancel flag for a batch about to start.
    pub fn new_cancel_flag(&self) -> CancelFlag {
        let flag = CancelFlag::new();
        *lock(&self.cancel) = Some(flag.clone());
        flag
    }

    /// Cancels the running batch; `false` when none runs.
    pub fn cancel_batch(&self) -> bool {
        match lock(&self.cancel).as_ref() {
            Some(flag) => {
                flag.cancel();
                true
            }
            None => false,
        }
    }

    /// Forgets the batch's cancel flag when it ended.
    pub fn batch_ended(&self) {
        *lock(&self.cancel) = None;
    }

    /// The token worker, if one is open (never opens one).
    pub fn open_worker(&self) -> Option<TokenWorker> {
        lock(&self.token)
            .as_ref()
            .filter(|open| !open.removed.load(Ordering::SeqCst))
            .map(|open| open.worker.clone())
    }

    /// Closes the token (it went away): the next use opens it afresh.
    pub fn forget_token(&self) {
        let old = lock(&self.token).take();
        close(old);
    }

    /// Logs the token out and lets go of it as the app exits; returns whether that was
    /// done within [`EXIT_CLOSE_WAIT`].
    ///
    /// A card in a PC/SC reader keeps a verified PIN until it is reset or told otherwise,
    /// whoever connects next; a process that just ends leaves that to pcscd, which does not
    /// always reset the card. So the worker is dropped here (its thread logs out: VERIFY
    /// `P1=FF` for a PIV card, `C_Logout` for PKCS#11) — on a thread of its own, waited
    /// for at most [`EXIT_CLOSE_WAIT`], so a token that stopped answering cannot hold the
    /// exit.
    pub fn close_for_exit(&self) -> bool {
        let Some(open) = lock(&self.token).take() else {
            return true;
        };
        let (closed, wait) = std::sync::mpsc::channel();
        let closer = std::thread::Builder::new()
            .name("securesign-token-exit".into())
            .spawn(move || {
                drop(open);
                let _ = closed.send(());
            });
        closer.is_ok() && wait.recv_timeout(EXIT_CLOSE_WAIT).is_ok()
    }

    /// Runs `f` with the token worker on a blocking thread, opening the token first if
    /// needed. A lost token closes the worker so that the next call opens it afresh.
    pub async fn with_token<T, F>(&self, f: F) -> CommandResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&TokenWorker) -> securesign_core::Result<T> + Send + 'static,
    {
        let opener = Opener {
            slot: self.token.clone(),
            opening: self.opening.clone(),
            stuck: self.stuck_open.clone(),
            generation: self.source_generation.clone(),
            phone: self.phone.get().cloned(),
            sink: self.sink.get().cloned(),
            options: self.worker_options(),
        };
        // The generation goes with the settings it belongs to.
        let generation = self.source_generation.load(Ordering::SeqCst);
        let settings = self.settings();
        let result = tauri::async_runtime::spawn_blocking(move || {
            let worker = opener.worker(&settings, generation)?;
            let result = f(&worker);
            if let Err(Error::TokenNotPresent | Error::Token(_)) = &result {
                let old = lock(&opener.slot).take();
                close(old);
            }
            result
        })
        .await
        .map_err(|e| CommandError::new(ErrorCode::Internal, format!("token task: {e}")))?;
        Ok(result?)
    }

    /// The key selector from the settings.
    pub fn key_selector(&self) -> KeySelector {
        match self.settings().signing_key {
            Some(key) => KeySelector::IdOrLabel(key),
            None => KeySelector::Only,
        }
    }
}

/// Closes a token (call it without holding the token lock).
///
/// A phone token closes here and now: the platform holds one USB device or NFC link, and
/// the old transport's close (IccPowerOff, `usbClose`, `apduDisconnect`) must not land
/// after the next token opened it again. Its watcher stops within one look (500 ms).
///
/// Any other token closes off the caller's thread. Dropping an [`OpenToken`] joins the
/// reader watcher and the worker; the core's `ReaderWatcher` can miss its cancel when the
/// drop races a card event (the stop flag is checked before `SCardGetStatusChange` waits
/// with no timeout), and its join then never returns. A command must not hang on that: the
/// close runs on its own thread (at worst that thread and the old card handle stay behind).
fn close(open: Option<OpenToken>) {
    let Some(open) = open else { return };
    if matches!(open._watcher, RemovalWatcher::Phone(_)) {
        drop(open);
        return;
    }
    let closer = std::thread::Builder::new()
        .name("securesign-token-close".into())
        .spawn(move || drop(open));
    if let Err(e) = closer {
        // No thread to spare: close here, accepting the (rare) wait.
        eprintln!("securesign: closing the token on the caller's thread: {e}");
    }
}

/// What opening a token needs, moved to the blocking thread that opens it.
struct Opener {
    slot: Arc<Mutex<Option<OpenToken>>>,
    opening: Arc<Mutex<()>>,
    /// Set while an open that outlived its wait still runs (see [`AppState`]).
    stuck: Arc<AtomicBool>,
    generation: Arc<AtomicU64>,
    phone: Option<Arc<dyn OpenPhoneToken>>,
    sink: Option<EventSink>,
    options: WorkerOptions,
}

impl Opener {
    /// The open worker, or a new one from `settings`' token source (read at source
    /// generation `generation`).
    ///
    /// The open runs on its own thread and is waited for at most the stall limit (phone
    /// tokens: [`TAP_WAIT`] plus the stall limit, an NFC tap may take that long). An open
    /// that does not come back in time fails with [`stalled`] and is left running;
    /// until it ends, every later open fails at once with the same error. Whatever it
    /// opens after all is closed, and the next command opens afresh.
    fn worker(&self, settings: &Settings, generation: u64) -> securesign_core::Result<TokenWorker> {
        if let Some(worker) = self.open_worker() {
            return Ok(worker);
        }
        self.refuse_while_stuck()?;
        // One open at a time; `slot` stays free meanwhile (an NFC tap may take a minute).
        let _opening = lock(&self.opening);
        if let Some(worker) = self.open_worker() {
            return Ok(worker); // another command opened it while we waited
        }
        self.refuse_while_stuck()?; // another command gave up on its open while we waited
        let open = self.open_bounded(settings)?;
        let worker = open.worker.clone();
        let mut slot = lock(&self.slot);
        if self.generation.load(Ordering::SeqCst) != generation {
            // The settings changed the token source while this one was opened.
            drop(slot);
            close(Some(open));
            return Err(Error::Config(
                "the token source changed while the token was opened: try again".into(),
            ));
        }
        let replaced = slot.replace(open);
        drop(slot);
        close(replaced);
        Ok(worker)
    }

    /// [`stalled`] while an earlier open is stuck.
    fn refuse_while_stuck(&self) -> securesign_core::Result<()> {
        if self.stuck.load(Ordering::SeqCst) {
            return Err(stalled());
        }
        Ok(())
    }

    /// Opens `settings`' token source on a thread of its own, waiting for it at most
    /// the stall limit (plus [`TAP_WAIT`] for a phone token).
    fn open_bounded(&self, settings: &Settings) -> securesign_core::Result<OpenToken> {
        let wait = match settings.token_source {
            TokenSource::Phone(_) => TAP_WAIT.saturating_add(self.options.stall_limit),
            _ => self.options.stall_limit,
        };
        let handoff = Arc::new(Handoff::default());
        let job = OpenJob {
            settings: settings.clone(),
            phone: self.phone.clone(),
            sink: self.sink.clone(),
            options: self.options,
        };
        let (theirs, stuck) = (handoff.clone(), self.stuck.clone());
        std::thread::Builder::new()
            .name("securesign-token-open".into())
            .spawn(move || {
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.open()))
                    .unwrap_or_else(|_| Err(Error::Internal("opening the token panicked".into())));
                if let Some(late) = theirs.deliver(result) {
                    // The command gave up on this open: close what came too late, then
                    // let the next command open afresh.
                    if let Ok(open) = late {
                        close(Some(open));
                    }
                    stuck.store(false, Ordering::SeqCst);
                }
            })
            .map_err(|e| Error::Internal(format!("cannot start the token open thread: {e}")))?;
        handoff.wait(wait, &self.stuck)
    }

    /// The open worker, unless its token was removed (then it is closed here).
    fn open_worker(&self) -> Option<TokenWorker> {
        let mut guard = lock(&self.slot);
        match guard.as_ref() {
            Some(open) if !open.removed.load(Ordering::SeqCst) => Some(open.worker.clone()),
            // Removed card: drop the watcher and worker (here, not on the watcher's thread).
            Some(_) => {
                let removed = guard.take();
                drop(guard);
                close(removed);
                None
            }
            None => None,
        }
    }
}

/// What the opening thread needs: a token source to open and where its events go.
struct OpenJob {
    settings: Settings,
    phone: Option<Arc<dyn OpenPhoneToken>>,
    sink: Option<EventSink>,
    options: WorkerOptions,
}

impl OpenJob {
    /// Opens the token, starts its worker (`Token::new` reads the token's info), its
    /// event thread and its removal watcher. May block as long as the driver does.
    fn open(self) -> securesign_core::Result<OpenToken> {
        let (backend, watched) = open_backend(&self.settings, self.phone.as_deref())?;
        let (worker, events) = TokenWorker::spawn_with(
            backend,
            self.settings.session_policy(),
            Arc::new(SystemClock),
            self.options,
        )?;
        let sink = self.sink;
        std::thread::Builder::new()
            .name("securesign-token-events".into())
            .spawn(move || {
                // Ends when the worker (the events' sender) is gone.
                for event in events {
                    if let Some(sink) = &sink {
                        sink(&event);
                    }
                }
            })
            .map_err(|e| Error::Internal(format!("cannot start the event thread: {e}")))?;
        let removed = Arc::new(AtomicBool::new(false));
        let watcher = watch_removal(watched, &worker, &removed)?;
        Ok(OpenToken {
            _watcher: watcher,
            removed,
            worker,
        })
    }
}

/// Where an open stands, between its thread and the command waiting for it.
#[derive(Default)]
enum OpenStage {
    /// The thread is still opening.
    #[default]
    Running,
    /// The thread finished; the command has not taken the result yet.
    Done(securesign_core::Result<OpenToken>),
    /// The command took the result, or gave up waiting for it.
    Taken,
}

/// Hands an open's result from its thread to the waiting command, or back to the thread
/// (to close it) once the command gave up. One lock decides which, so nothing opened is
/// lost or dropped on the command's thread.
#[derive(Default)]
struct Handoff {
    stage: Mutex<OpenStage>,
    done: Condvar,
}

impl Handoff {
    /// From the opening thread: hands `result` to the command, or gives it back when the
    /// command gave up waiting.
    fn deliver(
        &self,
        result: securesign_core::Result<OpenToken>,
    ) -> Option<securesign_core::Result<OpenToken>> {
        let mut stage = lock(&self.stage);
        if matches!(*stage, OpenStage::Taken) {
            return Some(result);
        }
        *stage = OpenStage::Done(result);
        self.done.notify_one();
        None
    }

    /// From the command: the open's result within `limit`, else [`stalled`] with `stuck`
    /// set (under the same lock, so the thread clears it only after).
    fn wait(&self, limit: Duration, stuck: &AtomicBool) -> securesign_core::Result<OpenToken> {
        let stage = lock(&self.stage);
        let (mut stage, _) = self
            .done
            .wait_timeout_while(stage, limit, |s| matches!(s, OpenStage::Running))
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match std::mem::replace(&mut *stage, OpenStage::Taken) {
            OpenStage::Done(result) => result,
            OpenStage::Running | OpenStage::Taken => {
                stuck.store(true, Ordering::SeqCst);
                Err(stalled())
            }
        }
    }
}

/// Opens the settings' token source: its backend and what to watch for its removal.
fn open_backend(
    settings: &Settings,
    phone: Option<&dyn OpenPhoneToken>,
) -> securesign_core::Result<(Box<dyn TokenBackend>, Watched)> {
    Ok(match &settings.token_source {
        TokenSource::Pkcs11 {
            module_path,
            token_label,
        } => {
            let module = Pkcs11Module::discover(module_path.as_deref())?;
            let selector = match token_label {
                Some(label) => TokenSelector::Label(label.clone()),
                None => TokenSelector::Only,
            };
            let backend = module.open(&selector)?;
            let slot = backend.slot_id();
            (Box::new(backend), Watched::Slot(module, slot))
        }
        #[cfg(desktop)]
        TokenSource::PcscReader { reader } => {
            let name = reader_name(reader.as_deref())?;
            (
                Box::new(PivBackend::open_reader(&name)?),
                Watched::Reader(name),
            )
        }
        #[cfg(mobile)]
        TokenSource::PcscReader { .. } => {
            return Err(Error::Config(
                "PC/SC readers exist on desktop only: choose another token source".into(),
            ))
        }
        TokenSource::Phone(link) => {
            let phone = phone.ok_or_else(|| {
                Error::Config(
                    "USB (OTG) and NFC tokens are reached on phones only: choose another token source"
                        .into(),
                )
            })?;
            let token = phone.open_token(link, TAP_WAIT)?;
            (token.backend, Watched::Phone(token.presence))
        }
    })
}

/// The reader to use: the configured one, else the one reader holding a card, else the
/// only reader there is (virtual and multi-slot drivers show several readers).
#[cfg(desktop)]
fn reader_name(configured: Option<&str>) -> securesign_core::Result<String> {
    if let Some(name) = configured {
        return Ok(name.to_owned());
    }
    let readers = list_readers().map_err(|_| Error::TokenNotPresent)?;
    let with_card: Vec<&str> = readers
        .iter()
        .filter(|r| r.card_present)
        .map(|r| r.name.as_str())
        .collect();
    match (with_card.as_slice(), readers.as_slice()) {
        ([one], _) => Ok((*one).to_owned()),
        ([], [only]) => Ok(only.name.clone()),
        ([], _) => Err(Error::TokenNotPresent),
        (many, _) => Err(Error::Config(format!(
            "cards in several readers ({}): choose one in Settings",
            many.join(", ")
        ))),
    }
}

/// Where the open token lives, for its removal watcher.
enum Watched {
    /// A PC/SC reader, by name.
    #[cfg(desktop)]
    Reader(String),
    /// A PKCS#11 module's slot.
    Slot(Pkcs11Module, u64),
    /// A phone token's link (USB interrupt endpoint, NFC/TKSmartCard presence).
    Phone(Presence),
}

/// Tells `worker` when the token leaves its reader or slot (ending its PIN session as
/// "removed", which also drops any PIN the backend kept) and marks it for reopening.
fn watch_removal(
    watched: Watched,
    worker: &TokenWorker,
    removed: &Arc<AtomicBool>,
) -> securesign_core::Result<RemovalWatcher> {
    let notify = worker.clone();
    let flag = Arc::clone(removed);
    let gone = move || {
        flag.store(true, Ordering::SeqCst);
        let _ = notify.token_removed();
    };
    match watched {
        #[cfg(desktop)]
        Watched::Reader(reader) => ReaderWatcher::spawn(&reader, move |event| {
            if event == CardEvent::Removed {
                gone();
            }
        })
        .map(RemovalWatcher::Reader)
        .map_err(|e| Error::Token(format!("cannot watch reader {reader:?}: {e}"))),
        Watched::Slot(module, slot) => {
            SlotWatcher::spawn(&module, slot, DEFAULT_POLL_INTERVAL, move |event| {
                if event == SlotEvent::Removed {
                    gone();
                }
            })
            .map(RemovalWatcher::Slot)
        }
        Watched::Phone(presence) => PresenceWatcher::spawn(presence, DEFAULT_LOOK_INTERVAL, gone)
            .map(RemovalWatcher::Phone)
            .map_err(|e| Error::Internal(format!("cannot watch the phone token: {e}"))),
    }
}
