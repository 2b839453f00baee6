//! The PKCS#11 backend on `cryptoki`: vendor modules of SafeNet, ePass, ProxKey, mToken …
//!
//! Facts this code relies on: `C_Initialize` runs once per module per process (the loaded
//! contexts are kept in a process-wide registry); a `Session` is `Send` but not `Sync`, so a
//! [`Pkcs11Backend`] is owned by one thread (see [`crate::worker`]).
//!
//! A private key with `CKA_ALWAYS_AUTHENTICATE` (e.g. PIV 9C through OpenSC) needs the PIN
//! again for every signature: `C_SignInit` → `C_Login(CKU_CONTEXT_SPECIFIC)` → `C_Sign`. To
//! sign a batch with one PIN entry, the backend keeps the user's PIN (zeroized on drop) while
//! logged in and uses it only for such keys. It is dropped on logout, removal, PIN change or
//! unblock and on any failure of the context-specific login, so a kept PIN that went stale
//! (changed elsewhere) costs at most one try and is never retried; and it is never sent when
//! the token is down to its final try (that try needs the user's confirmation).

mod counter;
mod discovery;
mod errors;
mod raw_sign;
mod unblock;
pub mod vendors;
pub mod watch;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, CertificateType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, SessionState, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use serde::Serialize;

use counter::CounterResets;
pub use discovery::{
    discover_modules, p11kit_modules, parse_module_file, resolve_module, DiscoveredModule,
    ModuleOrigin, MODULE_ENV,
};
use errors::{classify, token_error, Failure};
use raw_sign::RawSign;
pub use unblock::opensc_style;
pub use watch::{SlotEvent, SlotWatcher};

use super::{KeyId, SignatureScheme, TokenBackend, TokenCertificate, TokenInfo};
use crate::digest::{ecdsa_p256_raw_to_der, Sha256Digest};
use crate::error::{Error, Result};
use crate::pin::{Pin, PinCharset, PinPolicy};
use crate::status::{PinState, PinStatus, Retries, RetryIndicator};

/// A loaded and initialised PKCS#11 module.
#[derive(Clone)]
pub struct Pkcs11Module {
    path: PathBuf,
    ctx: Pkcs11,
    /// Counter resets this process saw and the module's flags do not show yet (one per
    /// module per process, like the module's own state).
    resets: Arc<CounterResets>,
}

/// Which token of a module to use.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TokenSelector {
    /// The only token present (an error when there are several).
    #[default]
    Only,
    /// The token with this label.
    Label(String),
    /// The token in this slot.
    Slot(u64),
}

/// A token found in a slot, as `securesign tokens` lists it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SlotToken {
    /// PKCS#11 slot id.
    pub slot: u64,
    /// What the token says about itself.
    #[serde(flatten)]
    pub info: TokenInfo,
    /// PIN status read from the token flags (no login).
    pub pin: PinState,
    /// Token flags that matter to a signer.
    pub flags: TokenFlags,
}

/// The PKCS#11 token flags (`CKF_*`) a signer cares about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenFlags {
    /// `CKF_LOGIN_REQUIRED`.
    pub login_required: bool,
    /// `CKF_USER_PIN_INITIALIZED`.
    pub user_pin_initialized: bool,
    /// `CKF_USER_PIN_TO_BE_CHANGED`: the issuer asks for a PIN change before use.
    pub user_pin_to_be_changed: bool,
    /// `CKF_PROTECTED_AUTHENTICATION_PATH`: PIN pad on the device.
    pub protected_authentication_path: bool,
    /// `CKF_WRITE_PROTECTED`.
    pub write_protected: bool,
    /// `CKF_SO_PIN_LOCKED`: the PUK / SO PIN is blocked too.
    pub so_pin_locked: bool,
}

impl TokenFlags {
    fn of(info: &cryptoki::slot::TokenInfo) -> Self {
        Self {
            login_required: info.login_required(),
            user_pin_initialized: info.user_pin_initialized(),
            user_pin_to_be_changed: info.user_pin_to_be_changed(),
            protected_authentication_path: info.protected_authentication_path(),
            write_protected: info.write_protected(),
            so_pin_locked: info.so_pin_locked(),
        }
    }
}

/// The modules loaded in this process, by canonical path.
type Registry = Mutex<HashMap<PathBuf, (Pkcs11, Arc<CounterResets>)>>;

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| Mutex::new(HashMap::new()))
}

impl Pkcs11Module {
    /// Loads and initialises the module at `path`, once per process.
    pub fn load(path: &Path) -> Result<Self> {
        let key = path
            .canonicalize()
            .map_err(|e| Error::Config(format!("PKCS#11 module {}: {e}", path.display())))?;
        let mut loaded = registry()
            .lock()
            .map_err(|_| Error::Internal("module registry poisoned".into()))?;
        if let Some((ctx, resets)) = loaded.get(&key) {
            return Ok(Self {
                path: key,
                ctx: ctx.clone(),
                resets: Arc::clone(resets),
            });
        }
        let ctx = Pkcs11::new(&key).map_err(|e| {
            Error::Config(format!("cannot load PKCS#11 module {}: {e}", key.display()))
        })?;
        match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            Ok(()) => {}
            // Another library in this process initialised the module first: its state is ours too.
            Err(cryptoki::error::Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
            Err(e) => return Err(Error::Token(format!("C_Initialize failed: {e}"))),
        }
        let resets = Arc::new(CounterResets::default());
        loaded.insert(key.clone(), (ctx.clone(), Arc::clone(&resets)));
        Ok(Self {
            path: key,
            ctx,
            resets,
        })
    }

    /// Resolves (see [`resolve_module`]) and loads a module.
    pub fn discover(explicit: Option<&Path>) -> Result<Self> {
        Self::load(&resolve_module(explicit)?)
    }

    /// Path of the loaded library.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every initialised token present in the module's slots (an uninitialised token cannot sign).
    pub fn tokens(&self) -> Result<Vec<SlotToken>> {
        let slots = self
            .ctx
            .get_slots_with_initialized_token()
            .map_err(|e| token_error(&e))?;
        slots
            .into_iter()
            .map(|slot| {
                let info = self.ctx.get_token_info(slot).map_err(|e| token_error(&e))?;
                Ok(SlotToken {
                    slot: slot.id(),
                    info: describe(&info),
                    pin: self.user_pin_state(slot, &info),
                    flags: TokenFlags::of(&info),
                })
            })
            .collect()
    }

    /// Opens the selected token, with the unblock style this module supports
    /// ([`Self::unblock_style`]).
    pub fn open(&self, selector: &TokenSelector) -> Result<Pkcs11Backend> {
        let slot = self.select(selector)?;
        let style = self.unblock_style();
        Pkcs11Backend::open(self.clone(), slot).map(|b| b.with_unblock_style(style))
    }

    /// How this module unblocks a PIN with the PUK: SO login + `C_InitPIN` for standard
    /// modules, OpenSC's configured `user_pin_unblock_style` for OpenSC (see `unblock.rs`).
    pub fn unblock_style(&self) -> UnblockStyle {
        match self.ctx.get_library_info() {
            Ok(info) => unblock::for_module(info.manufacturer_id()),
            Err(_) => UnblockStyle::SoInitPin,
        }
    }

    /// The certificates on the token in `slot`, read without logging in (settings list
    /// them to pick the signing key).
    pub fn slot_certificates(&self, slot: u64) -> Result<Vec<TokenCertificate>> {
        let mut backend = self.open(&TokenSelector::Slot(slot))?;
        backend.certificates()
    }

    /// The user PIN's status from the token flags of `slot`, minus what a counter reset
    /// this process saw makes stale (see `counter.rs`).
    fn user_pin_state(&self, slot: Slot, info: &cryptoki::slot::TokenInfo) -> PinState {
        let serial = info.serial_number().trim_end();
        pin_state_of(self.resets.judge(slot.id(), serial, user_pin_words(info)))
    }

    fn select(&self, selector: &TokenSelector) -> Result<Slot> {
        let slots = self
            .ctx
            .get_slots_with_initialized_token()
            .map_err(|e| token_error(&e))?;
        let mut matching = Vec::new();
        for slot in slots {
            let keep = match selector {
                TokenSelector::Only => true,
                TokenSelector::Slot(id) => slot.id() == *id,
                TokenSelector::Label(label) => {
                    let info = self.ctx.get_token_info(slot).map_err(|e| token_error(&e))?;
                    info.label().trim_end() == label.as_str()
                }
            };
            if keep {
                matching.push(slot);
            }
        }
        match (matching.len(), selector) {
            (1, _) => Ok(matching[0]),
            (0, _) => Err(Error::TokenNotPresent),
            // Which token to use is configuration: the app's Settings keep a label, the CLI
            // takes --token LABEL or --slot ID.
            (_, TokenSelector::Only) => Err(Error::Config(format!(
                "{} tokens are present: choose one by its label (Settings; CLI: --token LABEL or --slot ID)",
                matching.len()
            ))),
            (_, _) => Err(Error::Config(
                "several tokens carry that label: choose one by its slot (CLI: --slot ID)".into(),
            )),
        }
    }
}

/// One discovered module and the tokens in it, or why they could not be read.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModuleTokens {
    /// The module.
    #[serde(flatten)]
    pub module: DiscoveredModule,
    /// Its initialised tokens (empty when none is inserted).
    pub tokens: Vec<SlotToken>,
    /// Why the module could not be loaded or asked, when it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<crate::ErrorBody>,
}

/// Every module [`discover_modules`] finds, loaded, with its tokens: what the settings
/// screen lists. Nothing logs in; a module that fails to load is listed with its error.
pub fn find_tokens(configured: Option<&Path>) -> Vec<ModuleTokens> {
    discover_modules(configured)
        .into_iter()
        .map(
            |module| match Pkcs11Module::load(&module.path).and_then(|m| m.tokens()) {
                Ok(tokens) => ModuleTokens {
                    module,
                    tokens,
                    error: None,
                },
                Err(e) => ModuleTokens {
                    module,
                    tokens: Vec::new(),
                    error: Some(e.body()),
                },
            },
        )
        .collect()
}

fn describe(info: &cryptoki::slot::TokenInfo) -> TokenInfo {
    let policy = PinPolicy::from_token(
        info.min_pin_length(),
        info.max_pin_length(),
        PinCharset::PrintableAscii,
    );
    TokenInfo {
        label: info.label().trim_end().to_owned(),
        manufacturer: info.manufacturer_id().trim_end().to_owned(),
        model: info.model().trim_end().to_owned(),
        serial: info.serial_number().trim_end().to_owned(),
        pin_policy: policy,
        puk_policy: policy,
        protected_auth_path: info.protected_authentication_path(),
        exact_retries: false,
    }
}

/// PIN status from the tries in words: PKCS#11 gives flags, never a count. Without
/// FINAL_TRY or LOCKED a wrong PIN does not block the token: more than one try is left.
fn pin_state_of(indicator: RetryIndicator) -> PinState {
    let status = match indicator {
        RetryIndicator::Locked => PinStatus::Blocked,
        RetryIndicator::FinalTry | RetryIndicator::Low => PinStatus::Invalid,
        _ => PinStatus::NotVerified,
    };
    PinState {
        status,
        retries: Retries::flagged(indicator),
    }
}

/// The user PIN's tries in words, as the module's flags say them.
fn user_pin_words(info: &cryptoki::slot::TokenInfo) -> RetryIndicator {
    retry_words(
        info.user_pin_locked(),
        info.user_pin_final_try(),
        info.user_pin_count_low(),
    )
}

fn so_pin_retries(info: &cryptoki::slot::TokenInfo) -> Retries {
    Retries::flagged(retry_words(
        info.so_pin_locked(),
        info.so_pin_final_try(),
        info.so_pin_count_low(),
    ))
}

/// The tries left in words from a PIN's three `CKF_*` flags, the strongest first.
fn retry_words(locked: bool, final_try: bool, count_low: bool) -> RetryIndicator {
    if locked {
        RetryIndicator::Locked
    } else if final_try {
        RetryIndicator::FinalTry
    } else if count_low {
        RetryIndicator::Low
    } else {
        RetryIndicator::MoreThanOne
    }
}

/// One token reached through a PKCS#11 module. Owned by one thread.
pub struct Pkcs11Backend {
    module: Pkcs11Module,
    slot: Slot,
    session: Option<Session>,
    logged_in: bool,
    /// The user's verified PIN, kept only while logged in and only when the token holds an
    /// always-authenticate key.
    context_pin: Option<Pin>,
    key_handles: HashMap<Vec<u8>, PrivateKey>,
    /// The module's own `C_Sign`, loaded on the first always-authenticate signature.
    raw_sign: Option<RawSign>,
    unblock_style: UnblockStyle,
}

/// A private key found on the token.
#[derive(Debug, Clone, Copy)]
struct PrivateKey {
    handle: ObjectHandle,
    /// `CKA_ALWAYS_AUTHENTICATE` (absent = false): each use needs a context-specific login.
    always_authenticate: bool,
}

/// How [`TokenBackend::unblock_pin`] resets the user PIN with the PUK / SO PIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnblockStyle {
    /// The PKCS#11 way: SO login with the PUK, `C_InitPIN(new)`, logout.
    #[default]
    SoInitPin,
    /// `C_SetPIN(PUK, new)` in a session without login: OpenSC's PIV driver with
    /// `user_pin_unblock_style = set_pin_in_unlogged_session;` (RESET RETRY COUNTER).
    /// A PIN change then logs in with the old PIN first.
    SetPinUnlogged,
    /// The module offers no way to unblock through PKCS#11 (OpenSC with its default
    /// `user_pin_unblock_style = none`): refused with `SS_NOT_SUPPORTED` before the token.
    NotSupported,
}

impl Pkcs11Backend {
    fn open(module: Pkcs11Module, slot: Slot) -> Result<Self> {
        let mut backend = Self {
            module,
            slot,
            session: None,
            logged_in: false,
            context_pin: None,
            key_handles: HashMap::new(),
            raw_sign: None,
            unblock_style: UnblockStyle::default(),
        };
        backend.session()?;
        Ok(backend)
    }

    /// Chooses how the PIN is unblocked (default [`UnblockStyle::SoInitPin`]).
    pub fn with_unblock_style(mut self, style: UnblockStyle) -> Self {
        self.unblock_style = style;
        self
    }

    /// The slot this backend uses.
    pub fn slot_id(&self) -> u64 {
        self.slot.id()
    }

    /// The module this backend uses.
    pub fn module(&self) -> &Pkcs11Module {
        &self.module
    }

    /// Whether the token holds a user login for this process, as `C_GetSessionInfo` reports
    /// it (PKCS#11 logins are per application: every session of the process shares one).
    pub fn token_logged_in(&mut self) -> Result<bool> {
        let info = self.session()?.get_session_info();
        let info = info.map_err(|e| self.lost(&e))?;
        Ok(matches!(
            info.session_state(),
            SessionState::RoUser | SessionState::RwUser
        ))
    }

    fn session(&mut self) -> Result<&Session> {
        if self.session.is_none() {
            let session = self
                .module
                .ctx
                .open_rw_session(self.slot)
                .map_err(|e| self.lost(&e))?;
            self.session = Some(session);
        }
        self.session
            .as_ref()
            .ok_or_else(|| Error::Internal("session vanished".into()))
    }

    /// Maps a non-PIN failure, forgetting the session when the token is gone. Any such
    /// failure (device error, lost login, refused operation) also drops the kept PIN.
    fn lost(&mut self, err: &cryptoki::error::Error) -> Error {
        self.context_pin = None;
        let mapped = token_error(err);
        if matches!(mapped, Error::TokenNotPresent) {
            self.forget_session();
        }
        mapped
    }

    /// Drops the session (closing it ends any operation left active in it) with the
    /// login state, the kept PIN, the key handles that belonged to it and any counter
    /// reset seen (the token may be gone or another one).
    fn forget_session(&mut self) {
        self.session = None;
        self.logged_in = false;
        self.context_pin = None;
        self.key_handles.clear();
        self.module.resets.forget(self.slot.id());
    }

    /// A user authentication succeeded, so the token's try counter is reset: reads the
    /// flags once (no try) to learn whether the module shows it (see `counter.rs`).
    fn counter_was_reset(&mut self) {
        // The operation succeeded whatever this read says; a failing read leaves the
        // module's flags as they are, and the next read reports that failure.
        if let Ok(info) = self.module.ctx.get_token_info(self.slot) {
            let serial = info.serial_number().trim_end();
            let after = user_pin_words(&info);
            self.module.resets.succeeded(self.slot.id(), serial, after);
        }
    }

    fn user_pin_state(&mut self) -> Result<PinState> {
        let info = self.token_info()?;
        Ok(self.module.user_pin_state(self.slot, &info))
    }

    fn token_info(&mut self) -> Result<cryptoki::slot::TokenInfo> {
        let ctx = self.module.ctx.clone();
        ctx.get_token_info(self.slot).map_err(|e| self.lost(&e))
    }

    /// The error for a failed user-PIN operation, with the tries left read back from the token.
    fn user_pin_failure(&mut self, err: &cryptoki::error::Error) -> Error {
        match classify(err) {
            Failure::PinIncorrect => {
                // A wrong PIN after a reset: the module's count is the one to show.
                self.module.resets.forget(self.slot.id());
                match self.user_pin_state() {
                    Ok(state) if state.retries.indicator == RetryIndicator::Locked => {
                        Error::PinBlocked
                    }
                    Ok(state) => Error::PinInvalid {
                        retries: state.retries,
                    },
                    Err(e) => e,
                }
            }
            Failure::PinLocked => {
                self.module.resets.forget(self.slot.id());
                Error::PinBlocked
            }
            Failure::PinFormat => {
                let policy = self.token_info().map(|i| describe(&i).pin_policy);
                match policy {
                    Ok(p) => Error::PinFormat {
                        min: p.min_len,
                        max: p.max_len,
                    },
                    Err(e) => e,
                }
            }
            _ => self.lost(err),
        }
    }

    fn so_pin_failure(&mut self, err: &cryptoki::error::Error) -> Error {
        match classify(err) {
            Failure::PinIncorrect => match self.token_info() {
                Ok(info) if info.so_pin_locked() => Error::PukBlocked,
                Ok(info) => Error::PukInvalid {
                    retries: so_pin_retries(&info),
                },
                Err(e) => e,
            },
            Failure::PinLocked => Error::PukBlocked,
            Failure::NotSupported => {
                Error::NotSupported("this token does not allow unblocking with the SO PIN".into())
            }
            _ => self.user_pin_failure(err),
        }
    }

    /// Whether the token (now logged in, so its private objects are visible) holds a key
    /// that asks for the PIN before each signature: only then is the PIN kept in memory.
    /// A module that cannot search by the attribute has no such keys.
    fn holds_always_authenticate_key(&mut self) -> bool {
        let template = [
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::AlwaysAuthenticate(true),
        ];
        matches!(self.find_one(&template), Ok(Some(_)))
    }

    fn find_one(&mut self, template: &[Attribute]) -> Result<Option<ObjectHandle>> {
        let found = self.session()?.find_objects(template);
        let handles = found.map_err(|e| self.lost(&e))?;
        Ok(handles.into_iter().next())
    }

    fn private_key(&mut self, key: &KeyId) -> Result<PrivateKey> {
        if let Some(found) = self.key_handles.get(&key.0) {
            return Ok(*found);
        }
        let template = [
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Id(key.0.clone()),
        ];
        let handle = self
            .find_one(&template)?
            .ok_or_else(|| Error::KeyNotFound(key.to_hex()))?;
        let attrs = self
            .session()?
            .get_attributes(handle, &[AttributeType::AlwaysAuthenticate]);
        // A module that does not know the attribute leaves it out: the key is an ordinary one.
        let always_authenticate = attrs
            .map_err(|e| self.lost(&e))?
            .iter()
            .any(|a| matches!(a, Attribute::AlwaysAuthenticate(true)));
        let found = PrivateKey {
            handle,
            always_authenticate,
        };
        self.key_handles.insert(key.0.clone(), found);
        Ok(found)
    }

    /// Signs `data` with `key` (cryptoki's `sign`: `C_SignInit` + `C_Sign`), or through
    /// [`Self::sign_always_authenticate`] when the key asks for the PIN each time.
    fn sign_with(
        &mut self,
        key: PrivateKey,
        mechanism: &Mechanism,
        data: &[u8],
    ) -> Result<Vec<u8>> {
        if key.always_authenticate {
            return self.sign_always_authenticate(key, mechanism, data);
        }
        let signed = self.session()?.sign(mechanism, key.handle, data);
        signed.map_err(|e| self.lost(&e))
    }

    /// `C_SignInit`, `C_Login(CKU_CONTEXT_SPECIFIC)` with the kept PIN, then the module's
    /// single-part `C_Sign` — nothing else in between on this session.
    fn sign_always_authenticate(
        &mut self,
        key: PrivateKey,
        mechanism: &Mechanism,
        data: &[u8],
    ) -> Result<Vec<u8>> {
        // Taken, not borrowed: it goes back only after the token accepted it again.
        let Some(pin) = self.context_pin.take() else {
            return Err(Error::PinRequired);
        };
        // The kept PIN was right when typed. If tries were spent elsewhere since, it may be
        // stale, and the final try is the user's to confirm (`Token::verify_pin`), never ours.
        // (A FINAL_TRY the module kept from before this process's own successful login is
        // not a try spent elsewhere: `counter.rs`.)
        match self.user_pin_state()?.retries.indicator {
            RetryIndicator::Locked => return Err(Error::PinBlocked),
            RetryIndicator::FinalTry => return Err(Error::PinRequired),
            _ => {}
        }
        if self.raw_sign.is_none() {
            let loaded =
                RawSign::load(self.module.path()).map_err(|e| Error::Token(e.to_string()))?;
            self.raw_sign = Some(loaded);
        }
        let init = self.session()?.sign_init(mechanism, key.handle);
        init.map_err(|e| self.lost(&e))?;
        let secret = AuthPin::from(pin.expose());
        let login = self
            .session()?
            .login(UserType::ContextSpecific, Some(&secret));
        if let Err(e) = login {
            // The PIN changed elsewhere (or the token refused it): this try is spent once and
            // the PIN is not kept. Closing the session ends the sign operation some modules
            // leave active after a failed context-specific login.
            let failure = self.user_pin_failure(&e);
            self.forget_session();
            return Err(failure);
        }
        self.context_pin = Some(pin);
        let signed = match (self.session.as_ref(), self.raw_sign.as_ref()) {
            (Some(session), Some(raw)) => raw.sign(session, data),
            _ => return Err(Error::Internal("session or C_Sign vanished".into())),
        };
        signed.map_err(|e| self.lost(&e))
    }
}

impl TokenBackend for Pkcs11Backend {
    fn info(&mut self) -> Result<TokenInfo> {
        self.token_info().map(|i| describe(&i))
    }

    fn pin_state(&mut self) -> Result<PinState> {
        self.user_pin_state()
    }

    fn login(&mut self, pin: &Pin) -> Result<()> {
        self.context_pin = None;
        let secret = AuthPin::from(pin.expose());
        let first = self.session()?.login(UserType::User, Some(&secret));
        let result = match first {
            Err(ref e) if classify(e) == Failure::AlreadyLoggedIn => {
                // Another session of this process holds the login, so the PIN typed now was
                // not checked. Log out and verify it: this is the user's one attempt, not a retry.
                let session = self.session()?;
                match session.logout() {
                    Ok(()) => {}
                    Err(ref e) if classify(e) == Failure::NotLoggedIn => {}
                    Err(e) => return Err(self.lost(&e)),
                }
                self.session()?.login(UserType::User, Some(&secret))
            }
            other => other,
        };
        match result {
            Ok(()) => {
                self.logged_in = true;
                self.counter_was_reset();
                if self.holds_always_authenticate_key() {
                    self.context_pin = Some(Pin::new(pin.expose().to_owned()));
                }
                Ok(())
            }
            Err(e) => {
                self.logged_in = false;
                Err(self.user_pin_failure(&e))
            }
        }
    }

    fn logout(&mut self) -> Result<()> {
        self.key_handles.clear();
        self.context_pin = None;
        let Some(session) = self.session.as_ref() else {
            self.logged_in = false;
            return Ok(());
        };
        let result = session.logout();
        self.logged_in = false;
        match result {
            Ok(()) => Ok(()),
            Err(ref e) if classify(e) == Failure::NotLoggedIn => Ok(()),
            Err(ref e) if classify(e) == Failure::NotPresent => {
                self.forget_session();
                Ok(())
            }
            Err(e) => Err(self.lost(&e)),
        }
    }

    fn change_pin(&mut self, old: &Pin, new: &Pin) -> Result<()> {
        if self.unblock_style == UnblockStyle::SetPinUnlogged && !self.logged_in {
            // With this style C_SetPIN in an unlogged session means "unblock with the PUK":
            // a PIN change needs the user logged in. The login checks `old`: one try, as
            // the change itself would be.
            self.login(old)?;
        }
        // A kept PIN is the old one whatever the outcome: the user logs in again to sign.
        self.context_pin = None;
        let old = AuthPin::from(old.expose());
        let new = AuthPin::from(new.expose());
        let result = self.session()?.set_pin(&old, &new);
        result.map_err(|e| self.user_pin_failure(&e))?;
        self.counter_was_reset();
        Ok(())
    }

    fn unblock_pin(&mut self, puk: &Pin, new: &Pin) -> Result<()> {
        if self.unblock_style == UnblockStyle::NotSupported {
            return Err(Error::NotSupported(
                "this token's PKCS#11 module cannot unblock the PIN (OpenSC: user_pin_unblock_style is none); no PUK try was spent".into(),
            ));
        }
        // SO login is refused while the user is logged in on the same token.
        self.logout()?;
        let puk = AuthPin::from(puk.expose());
        if self.unblock_style == UnblockStyle::SetPinUnlogged {
            let new = AuthPin::from(new.expose());
            let reset = self.session()?.set_pin(&puk, &new);
            reset.map_err(|e| self.so_pin_failure(&e))?;
            self.counter_was_reset();
            return Ok(());
        }
        let login = self.session()?.login(UserType::So, Some(&puk));
        login.map_err(|e| self.so_pin_failure(&e))?;
        let new = AuthPin::from(new.expose());
        let init = self.session()?.init_pin(&new);
        let init = init.map_err(|e| self.so_pin_failure(&e));
        let logout = self.session()?.logout();
        init?;
        logout.map_err(|e| self.lost(&e))?;
        self.counter_was_reset();
        Ok(())
    }

    fn certificates(&mut self) -> Result<Vec<TokenCertificate>> {
        let template = [
            Attribute::Class(ObjectClass::CERTIFICATE),
            Attribute::CertificateType(CertificateType::X_509),
        ];
        let found = self.session()?.find_objects(&template);
        let handles = found.map_err(|e| self.lost(&e))?;
        let wanted = [
            AttributeType::Id,
            AttributeType::Label,
            AttributeType::Value,
        ];
        let mut certs = Vec::with_capacity(handles.len());
        for handle in handles {
            let attrs = self.session()?.get_attributes(handle, &wanted);
            let attrs = attrs.map_err(|e| self.lost(&e))?;
            let mut cert = TokenCertificate {
                id: KeyId(Vec::new()),
                label: String::new(),
                der: Vec::new(),
            };
            for attr in attrs {
                match attr {
                    Attribute::Id(id) => cert.id = KeyId(id),
                    Attribute::Label(label) => {
                        cert.label = String::from_utf8_lossy(&label).into_owned()
                    }
                    Attribute::Value(der) => cert.der = der,
                    _ => {}
                }
            }
            if !cert.der.is_empty() {
                certs.push(cert);
            }
        }
        Ok(certs)
    }

    fn sign_digest(
        &mut self,
        key: &KeyId,
        scheme: SignatureScheme,
        digest: &Sha256Digest,
    ) -> Result<Vec<u8>> {
        if !self.logged_in {
            return Err(Error::PinRequired);
        }
        let private_key = self.private_key(key)?;
        let raw = match scheme {
            SignatureScheme::RsaPkcs1Sha256 => {
                self.sign_with(private_key, &Mechanism::RsaPkcs, &digest.rsa_digest_info())
            }
            SignatureScheme::EcdsaP256Sha256 => {
                self.sign_with(private_key, &Mechanism::Ecdsa, &digest.0)
            }
        }?;
        match scheme {
            SignatureScheme::RsaPkcs1Sha256 => Ok(raw),
            SignatureScheme::EcdsaP256Sha256 => ecdsa_p256_raw_to_der(&raw),
        }
    }
}
