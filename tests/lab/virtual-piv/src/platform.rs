//! The trussed platform the PIV application runs on.
//!
//! `piv-authenticator` needs a trussed client that offers the core API plus four extensions
//! (PIN storage, chunked I/O, key wrapping to files, HPKE) and, for RSA keys, the software RSA
//! backend. This module wires those backends into one dispatcher and runs the client on
//! trussed's virtual platform, with its littlefs store either in RAM or in files.

use std::path::{Path, PathBuf};

use trussed::{
    backend::{Backend as _, BackendId},
    serde_extensions::{ExtensionDispatch, ExtensionId, ExtensionImpl as _},
    service::ServiceResources,
    types::Context,
    virt::{self, StorageConfig, StoreConfig},
    Platform,
};
use trussed_auth::AuthExtension;
use trussed_auth_backend::{AuthBackend, AuthContext, FilesystemLayout};
use trussed_chunked::ChunkedExtension;
use trussed_core::{
    api::{reply, request, Reply, Request},
    types::Location,
    Error,
};
use trussed_hpke::HpkeExtension;
use trussed_rsa_alloc::SoftwareRsa;
use trussed_staging::{StagingBackend, StagingContext};
use trussed_wrap_key_to_file::WrapKeyToFileExtension;

/// The trussed client type handed to the PIV application.
pub type CardClient<'a> = virt::Client<'a, Dispatcher>;

/// Trussed client id of the PIV application (also the name of its directory in the store).
const CLIENT_ID: &str = "piv";

/// File name of the internal flash (PINs, retry counters, keys, RNG seed) in `--state DIR`.
const INTERNAL_STORE: &str = "internal.littlefs";
/// File name of the external flash (PIV data objects: certificates, CHUID) in `--state DIR`.
const EXTERNAL_STORE: &str = "external.littlefs";
/// Both store files.
pub const STORE_FILES: [&str; 2] = [INTERNAL_STORE, EXTERNAL_STORE];
/// Size trussed's file store gives (and insists on for) each store file: 128 blocks of 512 bytes.
pub const STORE_FILE_LEN: u64 = 512 * 128;

/// Backends consulted, in order, for every request of the PIV client.
///
/// A backend answers `RequestNotAvailable` for what it does not handle, so the next one is tried;
/// the trussed core comes last.
const BACKENDS: &[BackendId<BackendIds>] = &[
    BackendId::Custom(BackendIds::Rsa),
    BackendId::Custom(BackendIds::Staging),
    BackendId::Custom(BackendIds::Auth),
    BackendId::Core,
];

/// Custom backends known to [`Dispatcher`].
#[derive(Debug, Clone, Copy)]
pub enum BackendIds {
    /// PIN/PUK storage with retry counters (`trussed-auth-backend`).
    Auth,
    /// Chunked I/O, key wrapping to files, HPKE (`trussed-staging`).
    Staging,
    /// RSA-2048/3072/4096 in software (`trussed-rsa-alloc`).
    Rsa,
}

/// Serde extensions known to [`Dispatcher`]; the numbers are the wire ids the client sends.
#[derive(Debug, Clone, Copy)]
pub enum ExtensionIds {
    /// `trussed-auth`.
    Auth = 0,
    /// `trussed-chunked`.
    Chunked = 1,
    /// `trussed-wrap-key-to-file`.
    WrapKeyToFile = 2,
    /// `trussed-hpke`.
    Hpke = 3,
}

impl From<ExtensionIds> for u8 {
    fn from(id: ExtensionIds) -> Self {
        id as u8
    }
}

impl TryFrom<u8> for ExtensionIds {
    type Error = Error;

    fn try_from(value: u8) -> Result<Self, Error> {
        match value {
            0 => Ok(Self::Auth),
            1 => Ok(Self::Chunked),
            2 => Ok(Self::WrapKeyToFile),
            3 => Ok(Self::Hpke),
            _ => Err(Error::FunctionNotSupported),
        }
    }
}

/// Per-client state of the custom backends.
#[derive(Default)]
pub struct DispatchContext {
    auth: AuthContext,
    staging: StagingContext,
}

/// Routes trussed requests to the auth, staging and RSA backends.
pub struct Dispatcher {
    auth: AuthBackend,
    staging: StagingBackend,
}

impl Default for Dispatcher {
    fn default() -> Self {
        Self {
            // PINs and their retry counters live in the internal (persistent) store.
            auth: AuthBackend::new(Location::Internal, FilesystemLayout::V0),
            staging: StagingBackend::new(),
        }
    }
}

impl ExtensionId<AuthExtension> for Dispatcher {
    type Id = ExtensionIds;
    const ID: ExtensionIds = ExtensionIds::Auth;
}

impl ExtensionId<ChunkedExtension> for Dispatcher {
    type Id = ExtensionIds;
    const ID: ExtensionIds = ExtensionIds::Chunked;
}

impl ExtensionId<WrapKeyToFileExtension> for Dispatcher {
    type Id = ExtensionIds;
    const ID: ExtensionIds = ExtensionIds::WrapKeyToFile;
}

impl ExtensionId<HpkeExtension> for Dispatcher {
    type Id = ExtensionIds;
    const ID: ExtensionIds = ExtensionIds::Hpke;
}

impl ExtensionDispatch for Dispatcher {
    type BackendId = BackendIds;
    type Context = DispatchContext;
    type ExtensionId = ExtensionIds;

    fn core_request<P: Platform>(
        &mut self,
        backend: &BackendIds,
        ctx: &mut Context<DispatchContext>,
        request: &Request,
        resources: &mut ServiceResources<P>,
    ) -> Result<Reply, Error> {
        match backend {
            BackendIds::Rsa => SoftwareRsa.request(&mut ctx.core, &mut (), request, resources),
            BackendIds::Staging => {
                self.staging
                    .request(&mut ctx.core, &mut ctx.backends.staging, request, resources)
            }
            BackendIds::Auth => Err(Error::RequestNotAvailable),
        }
    }

    fn extension_request<P: Platform>(
        &mut self,
        backend: &BackendIds,
        extension: &ExtensionIds,
        ctx: &mut Context<DispatchContext>,
        request: &request::SerdeExtension,
        resources: &mut ServiceResources<P>,
    ) -> Result<reply::SerdeExtension, Error> {
        let core = &mut ctx.core;
        let staging = &mut ctx.backends.staging;
        match (backend, extension) {
            (BackendIds::Auth, ExtensionIds::Auth) => {
                self.auth.extension_request_serialized(
                    core,
                    &mut ctx.backends.auth,
                    request,
                    resources,
                )
            }
            (BackendIds::Staging, ExtensionIds::Chunked) => {
                <StagingBackend as trussed::serde_extensions::ExtensionImpl<ChunkedExtension>>::extension_request_serialized(
                    &mut self.staging, core, staging, request, resources,
                )
            }
            (BackendIds::Staging, ExtensionIds::WrapKeyToFile) => {
                <StagingBackend as trussed::serde_extensions::ExtensionImpl<WrapKeyToFileExtension>>::extension_request_serialized(
                    &mut self.staging, core, staging, request, resources,
                )
            }
            (BackendIds::Staging, ExtensionIds::Hpke) => {
                <StagingBackend as trussed::serde_extensions::ExtensionImpl<HpkeExtension>>::extension_request_serialized(
                    &mut self.staging, core, staging, request, resources,
                )
            }
            _ => Err(Error::RequestNotAvailable),
        }
    }
}

/// Where the card keeps its flash.
#[derive(Debug, Clone)]
pub enum CardStorage {
    /// Everything in RAM: a factory-fresh card every start.
    Ram,
    /// Internal and external flash in two files in this directory, so keys, certificates,
    /// PIN/PUK and their retry counters survive a restart. Volatile memory stays in RAM.
    Directory(PathBuf),
}

impl CardStorage {
    fn store_config(&self) -> StoreConfig<'static> {
        match self {
            Self::Ram => StoreConfig::ram(),
            Self::Directory(dir) => StoreConfig {
                internal: StorageConfig::filesystem(dir.join(INTERNAL_STORE)),
                external: StorageConfig::filesystem(dir.join(EXTERNAL_STORE)),
                volatile: StorageConfig::ram(),
            },
        }
    }

    /// The state directory, if the storage is persistent.
    pub fn directory(&self) -> Option<&Path> {
        match self {
            Self::Ram => None,
            Self::Directory(dir) => Some(dir),
        }
    }
}

/// Runs `f` with a trussed client for the PIV application on the virtual platform.
///
/// The trussed service runs on a helper thread for as long as `f` runs.
pub fn with_card_client<R>(storage: &CardStorage, f: impl FnOnce(CardClient<'_>) -> R) -> R {
    virt::with_platform(storage.store_config(), |platform| {
        platform.run_client_with_backends(CLIENT_ID, Dispatcher::default(), BACKENDS, f)
    })
}
