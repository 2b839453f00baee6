#![allow(clippy::unwrap_used)]
//! Module discovery against real modules: the vendor table resolves the modules installed
//! on this machine (SoftHSM2, OpenSC), the same table mechanism resolves the lab's kryoptic
//! build, and the discovered modules list the lab token and its certificates, no login.

mod common;

use std::path::Path;

use common::lab;
use securesign_core::backend::pkcs11::vendors::{
    present_modules, KnownModule, ModuleKind, Os, KNOWN_MODULES,
};
use securesign_core::backend::pkcs11::{
    discover_modules, find_tokens, ModuleOrigin, Pkcs11Module, UnblockStyle,
};
use securesign_core::cert::{CertificateInfo, IndiaPkiClass};
use securesign_testlab::{Module, OPENSC_PKCS11};

const SOFTHSM2_VENDOR: &str = "SoftHSM2";

#[test]
fn known_modules_resolve_on_this_machine() {
    let found = present_modules(KNOWN_MODULES, Os::Linux);
    let softhsm = found.iter().find(|(m, _)| m.vendor == SOFTHSM2_VENDOR);
    // The descriptor is a kind the UI words in the user's language, not English in the name.
    assert_eq!(
        softhsm.map(|(m, _)| m.kind),
        Some(Some(ModuleKind::SoftwareToken))
    );
    assert_eq!(
        softhsm.map(|(_, p)| p.as_path()),
        Some(Path::new("/usr/lib/softhsm/libsofthsm2.so")),
        "{found:?}"
    );
    let opensc = found.iter().find(|(m, _)| m.vendor == "OpenSC");
    assert_eq!(
        opensc.map(|(_, p)| p.as_path()),
        Some(Path::new(OPENSC_PKCS11)),
        "{found:?}"
    );
    // Each of them is a PKCS#11 module that loads.
    for (m, path) in &found {
        Pkcs11Module::load(path)
            .unwrap_or_else(|e| panic!("{} at {}: {e}", m.vendor, path.display()));
    }
}

#[test]
fn discovery_lists_the_lab_token_and_its_certificates_without_login() {
    let tok = lab(Module::SoftHsm2);
    // Only the table and p11-kit: no configured path, no environment variable.
    std::env::remove_var(securesign_core::backend::pkcs11::MODULE_ENV);
    let modules = discover_modules(None);
    let softhsm = modules
        .iter()
        .find(|m| m.vendor == Some(SOFTHSM2_VENDOR))
        .unwrap_or_else(|| panic!("SoftHSM2 not discovered: {modules:?}"));
    // Debian registers SoftHSM2 with p11-kit too: found once, named by the table.
    assert_eq!(softhsm.origin, ModuleOrigin::P11Kit);
    assert_eq!(
        modules
            .iter()
            .filter(|m| m.path.canonicalize().ok() == softhsm.path.canonicalize().ok())
            .count(),
        1
    );

    let found = find_tokens(None);
    let entry = found
        .iter()
        .find(|m| m.module.vendor == Some(SOFTHSM2_VENDOR))
        .unwrap();
    assert_eq!(entry.error, None);
    let token = entry
        .tokens
        .iter()
        .find(|t| t.info.label == tok.label())
        .unwrap_or_else(|| panic!("lab token not listed: {:?}", entry.tokens));
    assert_eq!(
        token.pin.retries.indicator,
        securesign_core::RetryIndicator::MoreThanOne
    );

    let module = Pkcs11Module::load(&entry.module.path).unwrap();
    let certs = module.slot_certificates(token.slot).unwrap();
    assert_eq!(certs.len(), 2, "{certs:?}");
    let rsa = certs.iter().find(|c| c.id.to_hex() == "01").unwrap();
    assert_eq!(rsa.der, tok.rsa_cert_der());
    let info = CertificateInfo::from_der(&rsa.der).unwrap();
    assert_eq!(info.common_name.as_deref(), Some("Demo Signer"));
    assert!(info.india_pki.contains(&IndiaPkiClass::Class3), "{info:?}");
    // Listing touched no try and did not log in.
    let mut backend = module
        .open(&securesign_core::backend::pkcs11::TokenSelector::Slot(
            token.slot,
        ))
        .unwrap();
    assert!(!backend.token_logged_in().unwrap());
}

#[test]
fn the_same_table_mechanism_resolves_the_labs_kryoptic_module() {
    let tok = lab(Module::Kryoptic);
    let path: &'static str = Box::leak(tok.module_path().display().to_string().into_boxed_str());
    let paths: &'static [(Os, &'static str)] = Box::leak(Box::new([(Os::Linux, path)]));
    let table = [KnownModule {
        vendor: "kryoptic (lab build)",
        kind: Some(ModuleKind::SoftwareToken),
        paths,
        verified: true,
    }];
    let found = present_modules(&table, Os::Linux);
    assert_eq!(found.len(), 1);
    let module = Pkcs11Module::load(&found[0].1).unwrap();
    let tokens = module.tokens().unwrap();
    assert!(
        tokens.iter().any(|t| t.info.label == tok.label()),
        "{tokens:?}"
    );
    // A standard module: the PUK (SO PIN) unblocks through SO login + C_InitPIN.
    assert_eq!(module.unblock_style(), UnblockStyle::SoInitPin);
}
