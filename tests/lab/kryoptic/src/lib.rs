//! Empty on purpose: this crate exists only so Cargo builds the `kryoptic`
//! dependency, whose `cdylib` (`libkryoptic_pkcs11.so`) is the PKCS#11 module
//! the SecureSign token lab loads. See `tests/lab/build-kryoptic.sh`.
