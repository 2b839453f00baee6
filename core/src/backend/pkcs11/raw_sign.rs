//! Single-part `C_Sign` on an operation that `C_SignInit` already started.
//!
//! A key with `CKA_ALWAYS_AUTHENTICATE` needs `C_SignInit` → `C_Login(CKU_CONTEXT_SPECIFIC)`
//! → `C_Sign` (PKCS#11 3.0 §5.6, §5.13). cryptoki 0.12 offers `sign_init` and the
//! context-specific login, but its single-part `sign` always calls `C_SignInit` itself, and
//! the multi-part `sign_update`/`sign_final` are not allowed for `CKM_RSA_PKCS` and
//! `CKM_ECDSA`. This module is the missing call: it opens the module library once more
//! (`dlopen` hands back the instance cryptoki already loaded and initialised), reads `C_Sign`
//! from the module's function list, and calls it on a cryptoki session's handle.
//!
//! This is the only place in the crate with `unsafe` code.
#![allow(unsafe_code)]

use std::path::Path;
use std::ptr;

use cryptoki::context::Function;
use cryptoki::error::{Error as CkError, Rv, RvError};
use cryptoki::session::Session;
use cryptoki_sys::{CK_FUNCTION_LIST, CK_RV, CK_ULONG};
use libloading::Library;

/// `C_GetFunctionList` (PKCS#11 2.40 §5.2): the entry point every module exports.
type GetFunctionList = unsafe extern "C" fn(*mut *mut CK_FUNCTION_LIST) -> CK_RV;

/// The module's `C_Sign` (the `Some` of `cryptoki_sys::CK_C_Sign`).
type SignFn = unsafe extern "C" fn(
    cryptoki_sys::CK_SESSION_HANDLE,
    cryptoki_sys::CK_BYTE_PTR,
    CK_ULONG,
    cryptoki_sys::CK_BYTE_PTR,
    cryptoki_sys::CK_ULONG_PTR,
) -> CK_RV;

/// Why the module's `C_Sign` could not be reached.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LoadError {
    /// `dlopen` or `dlsym` failed.
    #[error("cannot open the PKCS#11 module again: {0}")]
    Library(#[from] libloading::Error),
    /// `C_GetFunctionList` returned an error.
    #[error("C_GetFunctionList failed: {0}")]
    FunctionList(CkError),
    /// The module answered with no function list.
    #[error("C_GetFunctionList returned no function list")]
    NoFunctionList,
    /// The function list is from a PKCS#11 version whose layout we do not know.
    #[error("the module's function list has version {major}.{minor}; 2.x or 3.x expected")]
    UnknownVersion {
        /// `CK_VERSION.major`.
        major: u8,
        /// `CK_VERSION.minor`.
        minor: u8,
    },
    /// The function list has no `C_Sign`.
    #[error("the module does not provide C_Sign")]
    NoSign,
}

/// The module's `C_Sign`, valid as long as this value (which keeps the library loaded).
pub(crate) struct RawSign {
    c_sign: SignFn,
    /// Keeps the module mapped while `c_sign` may be called (declared after it: dropped last).
    _library: Library,
}

impl RawSign {
    /// Opens the module at `path` (the path cryptoki loaded it from) and reads its `C_Sign`.
    pub(crate) fn load(path: &Path) -> Result<Self, LoadError> {
        // SAFETY: `path` names the PKCS#11 module this process already loaded through
        // cryptoki, so `dlopen` returns the same mapping (raising its reference count) and
        // runs no library initialisers a second time.
        let library = unsafe { Library::new(path) }?;
        // SAFETY: `C_GetFunctionList` has this signature in every PKCS#11 version (2.40 §5.2,
        // 3.0 §5.4); the symbol is only used while `library` is alive (within this function).
        let get_function_list = unsafe { library.get::<GetFunctionList>(b"C_GetFunctionList\0") }?;
        let mut list: *mut CK_FUNCTION_LIST = ptr::null_mut();
        // SAFETY: the module writes one pointer to its static function list into `list`,
        // which is a valid, writable location for the duration of the call.
        let rv = unsafe { get_function_list(&mut list) };
        Rv::from(rv)
            .into_result(Function::GetFunctionList)
            .map_err(LoadError::FunctionList)?;
        if list.is_null() {
            return Err(LoadError::NoFunctionList);
        }
        // SAFETY: `list` is non-null and points to the module's function list, which stays
        // valid while the module is loaded. Its 2.x layout (`CK_FUNCTION_LIST`) is the prefix
        // of the 3.x lists, so reading it through `CK_FUNCTION_LIST` is valid for both.
        let list = unsafe { &*list };
        let version = list.version;
        if !(2..=3).contains(&version.major) {
            return Err(LoadError::UnknownVersion {
                major: version.major,
                minor: version.minor,
            });
        }
        let c_sign = list.C_Sign.ok_or(LoadError::NoSign)?;
        Ok(Self {
            c_sign,
            _library: library,
        })
    }

    /// Completes the single-part signature of `data` on `session`, where `C_SignInit` (and,
    /// for an always-authenticate key, the context-specific login) already happened.
    ///
    /// Two calls, as PKCS#11 prescribes: the length query (which leaves the operation
    /// active), then the signature (which ends it, successful or not).
    pub(crate) fn sign(&self, session: &Session, data: &[u8]) -> Result<Vec<u8>, CkError> {
        let data_len = CK_ULONG::try_from(data.len())?;
        // `C_Sign` takes a non-const pointer for the input but never writes through it.
        let data_ptr = data.as_ptr().cast_mut();
        let mut signature_len: CK_ULONG = 0;
        // SAFETY: the session handle is valid while `session` is borrowed; `data_ptr` is
        // readable for `data_len` bytes; a null output buffer asks only for the length,
        // which the module writes into `signature_len`, a valid location.
        let rv = unsafe {
            (self.c_sign)(
                session.handle(),
                data_ptr,
                data_len,
                ptr::null_mut(),
                &mut signature_len,
            )
        };
        Rv::from(rv).into_result(Function::Sign)?;
        let mut signature = vec![0u8; usize::try_from(signature_len)?];
        // SAFETY: as above; `signature` is writable for `signature_len` bytes, the length the
        // module asked for and passed back in the same variable.
        let rv = unsafe {
            (self.c_sign)(
                session.handle(),
                data_ptr,
                data_len,
                signature.as_mut_ptr(),
                &mut signature_len,
            )
        };
        Rv::from(rv).into_result(Function::Sign)?;
        let written = usize::try_from(signature_len)?;
        if written > signature.len() {
            // A module that claims to have written past the buffer it was given.
            return Err(CkError::Pkcs11(RvError::GeneralError, Function::Sign));
        }
        signature.truncate(written);
        Ok(signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_is_a_load_error() {
        let err = RawSign::load(Path::new("/nonexistent/securesign-test-module.so"))
            .err()
            .expect("no such library");
        assert!(matches!(err, LoadError::Library(_)), "{err}");
    }

    #[test]
    fn a_file_that_is_not_a_library_is_a_load_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("not-a-module.so");
        std::fs::write(&path, b"not an ELF object").expect("write");
        let err = RawSign::load(&path).err().expect("not a library");
        assert!(matches!(err, LoadError::Library(_)), "{err}");
    }

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn a_library_without_c_get_function_list_is_refused() {
        // glibc's libc is always loadable and exports no PKCS#11 entry point.
        let err = RawSign::load(Path::new("libc.so.6"))
            .err()
            .expect("not a PKCS#11 module");
        assert!(matches!(err, LoadError::Library(_)), "{err}");
        assert!(err.to_string().contains("C_GetFunctionList"), "{err}");
    }
}
