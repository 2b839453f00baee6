//! The lab PKI (root → licensed CA → DSC), judged by the real `openssl` CLI: strict path
//! validation with the CCA policy, CRL revocation and freshness, the OCSP responder, and
//! the paths that must be refused. Certificates are parsed with x509-parser.

use std::fs;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use securesign_testlab::{
    CrlFreshness, DscKeyUsage, DscSpec, LabKey, LabPki, LabToken, PkiUrls, POLICY_CLASS2,
    POLICY_CLASS3,
};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension};

const CRL_BASE: &str = "http://127.0.0.1:41234";

fn parse(der: &[u8]) -> X509Certificate<'_> {
    let (rest, cert) = x509_parser::parse_x509_certificate(der).expect("valid DER certificate");
    assert!(rest.is_empty(), "no trailing bytes");
    cert
}

fn policy_oids(cert: &X509Certificate<'_>) -> Vec<String> {
    cert.extensions()
        .iter()
        .filter_map(|ext| match ext.parsed_extension() {
            ParsedExtension::CertificatePolicies(policies) => Some(policies),
            _ => None,
        })
        .flat_map(|policies| policies.iter().map(|p| p.policy_id.to_id_string()))
        .collect()
}

fn crl_urls(cert: &X509Certificate<'_>) -> Vec<String> {
    let mut urls = Vec::new();
    for ext in cert.extensions() {
        if let ParsedExtension::CRLDistributionPoints(points) = ext.parsed_extension() {
            for point in points.iter() {
                if let Some(DistributionPointName::FullName(names)) = &point.distribution_point {
                    for name in names {
                        if let GeneralName::URI(uri) = name {
                            urls.push((*uri).to_owned());
                        }
                    }
                }
            }
        }
    }
    urls
}

fn ocsp_urls(cert: &X509Certificate<'_>) -> Vec<String> {
    let mut urls = Vec::new();
    for ext in cert.extensions() {
        if let ParsedExtension::AuthorityInfoAccess(aia) = ext.parsed_extension() {
            for desc in &aia.accessdescs {
                if desc.access_method.to_id_string() == "1.3.6.1.5.5.7.48.1" {
                    if let GeneralName::URI(uri) = &desc.access_location {
                        urls.push((*uri).to_owned());
                    }
                }
            }
        }
    }
    urls
}

/// Runs openssl; returns (success, stdout + stderr).
fn openssl<I, S>(args: I) -> (bool, String)
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("run openssl");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

fn pki(urls: PkiUrls) -> (tempfile::TempDir, LabPki) {
    let dir = tempfile::tempdir().expect("temp dir");
    let pki = LabPki::create(&dir.path().join("pki"), urls).expect("create the lab PKI");
    (dir, pki)
}

/// `openssl verify -CAfile root -untrusted ca <extra args> cert`.
fn verify(pki: &LabPki, extra: &[&str], cert: &Path) -> (bool, String) {
    let mut args = vec![
        "verify".to_owned(),
        "-CAfile".to_owned(),
        path(pki.root_pem()),
        "-untrusted".to_owned(),
        path(pki.ca_pem()),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args.push(path(cert));
    openssl(args)
}

/// Both DER CRLs of `crl_dir` as one PEM file (`openssl verify -CRLfile` takes one file).
fn crl_bundle(crl_dir: &Path, out: &Path) -> PathBuf {
    let mut pem = String::new();
    for name in ["ca.crl", "root.crl"] {
        let file = crl_dir.join(name);
        assert!(file.is_file(), "{} written", file.display());
        let (ok, text) = openssl([
            "crl",
            "-inform",
            "DER",
            "-in",
            &path(&file),
            "-outform",
            "PEM",
        ]);
        assert!(ok, "{name} is a DER CRL: {text}");
        pem.push_str(&text);
    }
    fs::write(out, pem).expect("write the CRL bundle");
    out.to_owned()
}

#[test]
fn class3_dsc_verifies_strictly_under_the_cca_policy() {
    let urls = PkiUrls {
        crl_base: Some(CRL_BASE.to_owned()),
        ocsp: Some("http://127.0.0.1:41235".to_owned()),
    };
    let (_tmp, pki) = pki(urls);
    let dsc = pki.issue(&DscSpec::class3("Asha Rao")).expect("issue");
    let strict = ["-x509_strict", "-policy", POLICY_CLASS3, "-explicit_policy"];
    let (ok, text) = verify(&pki, &strict, &dsc.cert_pem);
    assert!(ok, "openssl verify: {text}");
    assert!(text.contains(": OK"), "{text}");

    let cert = parse(&dsc.cert_der);
    let serial = DscSpec::class3("Asha Rao").serial_number.expect("serial");
    assert_eq!(
        cert.subject().to_string(),
        format!("CN=Asha Rao, serialNumber={serial}, O=Personal, ST=Karnataka, C=IN")
    );
    let ca = parse(pki.ca_der());
    let root = parse(pki.root_der());
    assert_eq!(cert.issuer(), ca.subject());
    assert_eq!(ca.issuer(), root.subject());
    assert_eq!(
        root.subject().to_string(),
        "CN=CCA India Lab Root, O=India PKI Lab, C=IN"
    );
    assert_eq!(
        ca.subject().to_string(),
        "CN=SecureSign Lab Licensed CA, O=SecureSign Lab, C=IN"
    );
    assert!(!cert.is_ca());
    assert_eq!(policy_oids(&cert), vec![POLICY_CLASS3.to_owned()]);
    let usage = cert.key_usage().expect("well-formed").expect("keyUsage");
    assert!(usage.critical);
    assert!(usage.value.digital_signature() && usage.value.non_repudiation());
    assert!(!usage.value.key_encipherment() && !usage.value.key_cert_sign());
    assert_eq!(crl_urls(&cert), vec![format!("{CRL_BASE}/ca.crl")]);
    assert_eq!(ocsp_urls(&cert), vec!["http://127.0.0.1:41235".to_owned()]);

    // The licensed CA: CA:true pathlen:0 (critical), the CCA policies, CRL DP → root.crl.
    let bc = ca
        .basic_constraints()
        .expect("well-formed")
        .expect("basicConstraints");
    assert!(bc.critical && bc.value.ca);
    assert_eq!(bc.value.path_len_constraint, Some(0));
    assert!(policy_oids(&ca).contains(&POLICY_CLASS3.to_owned()));
    assert_eq!(crl_urls(&ca), vec![format!("{CRL_BASE}/root.crl")]);
    assert!(ocsp_urls(&ca).is_empty());
    // The root: self-signed CA with keyCertSign + cRLSign (critical).
    assert_eq!(root.issuer(), root.subject());
    let root_usage = root.key_usage().expect("well-formed").expect("keyUsage");
    assert!(root_usage.critical);
    assert!(root_usage.value.key_cert_sign() && root_usage.value.crl_sign());
    for ca_cert in [&root, &ca] {
        let spki = ca_cert.public_key().raw.to_vec();
        assert!(
            rsa::pkcs8::DecodePublicKey::from_public_key_der(&spki)
                .map(|key: rsa::RsaPublicKey| rsa::traits::PublicKeyParts::size(&key) == 256)
                .unwrap_or(false),
            "RSA-2048 CA key"
        );
    }

    // A class-2 EC certificate verifies too, but not under an explicit class-3 policy.
    let ec = pki
        .issue(&DscSpec {
            key: LabKey::Ec,
            policy: POLICY_CLASS2,
            ..DscSpec::class3("Ravi Kumar")
        })
        .expect("issue EC");
    let ec_spki = parse(&ec.cert_der).public_key().raw.to_vec();
    p256::pkcs8::DecodePublicKey::from_public_key_der(&ec_spki)
        .map(|_: p256::PublicKey| ())
        .expect("P-256 key");
    let (ok, text) = verify(&pki, &["-x509_strict"], &ec.cert_pem);
    assert!(ok, "EC DSC verifies: {text}");
    let (ok, text) = verify(&pki, &strict, &ec.cert_pem);
    assert!(
        !ok,
        "class 2 accepted under an explicit class-3 policy: {text}"
    );

    // An encryption certificate: keyEncipherment + dataEncipherment only.
    let enc = pki
        .issue(&DscSpec {
            key_usage: DscKeyUsage::EncipherOnly,
            crl_dp: false,
            ocsp: false,
            serial_number: None,
            ..DscSpec::class3("Asha Rao")
        })
        .expect("issue encryption certificate");
    let enc_cert = parse(&enc.cert_der);
    let usage = enc_cert
        .key_usage()
        .expect("well-formed")
        .expect("keyUsage");
    assert!(usage.critical && usage.value.key_encipherment() && usage.value.data_encipherment());
    assert!(!usage.value.digital_signature() && !usage.value.non_repudiation());
    assert!(crl_urls(&enc_cert).is_empty() && ocsp_urls(&enc_cert).is_empty());
    assert_eq!(
        enc_cert.subject().to_string(),
        "CN=Asha Rao, O=Personal, ST=Karnataka, C=IN"
    );

    // Key files: PKCS#8 DER private key matching the certificate.
    let (ok, text) = openssl([
        "pkey",
        "-inform",
        "DER",
        "-in",
        &path(&dsc.private_key_der),
        "-pubout",
        "-outform",
        "DER",
    ]);
    assert!(ok, "{text}");
    assert_eq!(
        fs::read(&dsc.public_key_der).expect("public key"),
        cert.public_key().raw
    );
}

#[test]
fn without_urls_no_crl_dp_or_ocsp_and_reopened_pki_issues_under_the_same_root() {
    let (_tmp, pki) = pki(PkiUrls::default());
    let dsc = pki.issue(&DscSpec::class3("Asha Rao")).expect("issue");
    let cert = parse(&dsc.cert_der);
    assert!(crl_urls(&cert).is_empty() && ocsp_urls(&cert).is_empty());
    assert!(crl_urls(&parse(pki.ca_der())).is_empty());

    let reopened = LabPki::open(pki.dir()).expect("reopen");
    assert_eq!(reopened.root_der(), pki.root_der());
    assert_eq!(reopened.ca_der(), pki.ca_der());
    let second = reopened
        .issue(&DscSpec::class3("Ravi Kumar"))
        .expect("issue again");
    assert_ne!(
        second.cert_pem, dsc.cert_pem,
        "a new directory per issuance"
    );
    let (ok, text) = verify(&pki, &["-x509_strict"], &second.cert_pem);
    assert!(ok, "{text}");
}

#[test]
fn crls_revoke_and_expire() {
    let urls = PkiUrls {
        crl_base: Some(CRL_BASE.to_owned()),
        ocsp: None,
    };
    let (tmp, pki) = pki(urls);
    let revoked = pki
        .issue(&DscSpec::class3("Revoked Signer"))
        .expect("issue");
    let good = pki.issue(&DscSpec::class3("Good Signer")).expect("issue");
    pki.revoke(&revoked).expect("revoke");

    let crl_dir = pki.publish_crls(CrlFreshness::Current).expect("publish");
    assert_eq!(crl_dir, pki.dir().join("crl"));
    let bundle = crl_bundle(&crl_dir, &tmp.path().join("crls.pem"));
    let check = ["-crl_check_all", "-CRLfile", &path(&bundle)];
    let (ok, text) = verify(&pki, &check, &revoked.cert_pem);
    assert!(!ok, "revoked certificate accepted: {text}");
    assert!(text.contains("certificate revoked"), "{text}");
    let (ok, text) = verify(&pki, &check, &good.cert_pem);
    assert!(ok, "good certificate refused: {text}");

    // The CRL's own dates: lastUpdate ~1 h ago, nextUpdate ~7 days ahead.
    let (ok, text) = openssl([
        "crl",
        "-inform",
        "DER",
        "-in",
        &path(&crl_dir.join("ca.crl")),
        "-noout",
        "-lastupdate",
        "-nextupdate",
    ]);
    assert!(
        ok && text.contains("lastUpdate=") && text.contains("nextUpdate="),
        "{text}"
    );

    pki.publish_crls(CrlFreshness::Expired)
        .expect("publish expired");
    let bundle = crl_bundle(&crl_dir, &tmp.path().join("expired.pem"));
    let check = ["-crl_check_all", "-CRLfile", &path(&bundle)];
    let (ok, text) = verify(&pki, &check, &good.cert_pem);
    assert!(!ok, "expired CRL accepted: {text}");
    assert!(text.contains("CRL has expired"), "{text}");
}

fn ocsp_status(pki: &LabPki, url: &str, cert: &Path) -> (bool, String) {
    openssl([
        "ocsp",
        "-issuer",
        &path(pki.ca_pem()),
        "-cert",
        &path(cert),
        "-url",
        url,
        "-CAfile",
        &path(pki.root_pem()),
        "-verify_other",
        &path(pki.ca_pem()),
        "-timeout",
        "10",
    ])
}

#[test]
fn ocsp_responder_answers_good_and_revoked_and_stops_on_drop() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let urls = PkiUrls {
        crl_base: None,
        ocsp: Some(url.clone()),
    };
    let (_tmp, pki) = pki(urls);
    let good = pki.issue(&DscSpec::class3("Good Signer")).expect("issue");
    let revoked = pki
        .issue(&DscSpec::class3("Revoked Signer"))
        .expect("issue");
    pki.revoke(&revoked).expect("revoke");
    let ec = pki
        .issue(&DscSpec {
            key: LabKey::Ec,
            ..DscSpec::class3("Ec Signer")
        })
        .expect("issue EC");

    let responder = pki.start_ocsp_responder(port).expect("start the responder");
    assert_eq!(responder.url(), url);
    assert_eq!(responder.signer_cert_pem(), pki.ocsp_signer_pem());
    let signer = fs::read(pki.ocsp_signer_pem()).expect("responder certificate");
    assert!(!signer.is_empty());

    for (cert, expected) in [
        (&good.cert_pem, "good"),
        (&revoked.cert_pem, "revoked"),
        (&ec.cert_pem, "good"),
    ] {
        let (ok, text) = ocsp_status(&pki, &url, cert);
        assert!(ok, "openssl ocsp: {text}");
        assert!(text.contains("Response verify OK"), "{text}");
        assert!(
            text.contains(&format!("{}: {expected}", path(cert))),
            "expected {expected}: {text}"
        );
    }
    // A revocation after the start shows too (the responder re-reads the database).
    pki.revoke(&ec).expect("revoke");
    let (ok, text) = ocsp_status(&pki, &url, &ec.cert_pem);
    assert!(ok && text.contains(": revoked"), "{text}");
    // It keeps serving.
    for _ in 0..3 {
        let (ok, text) = ocsp_status(&pki, &url, &good.cert_pem);
        assert!(ok && text.contains(": good"), "{text}");
    }

    drop(responder);
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    assert!(
        TcpStream::connect_timeout(&address, Duration::from_secs(1)).is_err(),
        "the responder still listens after drop"
    );
}

#[test]
fn too_long_chain_and_look_alike_are_refused() {
    let (tmp, pki) = pki(PkiUrls::default());
    let (extra, ee) = pki
        .issue_under_extra_ca(&DscSpec::class3("Deep Signer"))
        .expect("issue under the extra CA");
    assert!(parse(&extra.cert_der).is_ca());
    assert_eq!(
        parse(&extra.cert_der).issuer(),
        parse(pki.ca_der()).subject()
    );
    let untrusted = tmp.path().join("untrusted.pem");
    let mut bundle = fs::read(pki.ca_pem()).expect("ca.pem");
    bundle.extend(fs::read(&extra.cert_pem).expect("extra CA"));
    fs::write(&untrusted, bundle).expect("write bundle");
    let (ok, text) = openssl([
        "verify",
        "-CAfile",
        &path(pki.root_pem()),
        "-untrusted",
        &path(&untrusted),
        &path(&ee.cert_pem),
    ]);
    assert!(!ok, "too-long path accepted: {text}");
    assert!(text.contains("path length constraint exceeded"), "{text}");

    let spec = DscSpec::class3("Asha Rao");
    let real = pki.issue(&spec).expect("issue");
    let fake = pki.self_signed_look_alike(&spec).expect("look-alike");
    let (real_cert, fake_cert) = (parse(&real.cert_der), parse(&fake.cert_der));
    assert_eq!(fake_cert.subject(), real_cert.subject());
    assert_eq!(fake_cert.issuer(), fake_cert.subject(), "self-signed");
    assert_eq!(policy_oids(&fake_cert), policy_oids(&real_cert));
    let (ok, text) = verify(&pki, &[], &fake.cert_pem);
    assert!(!ok, "look-alike accepted: {text}");
    let (ok, text) = verify(&pki, &[], &real.cert_pem);
    assert!(ok, "{text}");
}

#[test]
fn token_certificates_chain_to_the_token_pki() {
    let tok = LabToken::softhsm().expect("provision");
    let pki = tok.pki();
    assert_eq!(tok.ca_cert_der(), pki.ca_der());
    let dir = tempfile::tempdir().expect("temp dir");
    for key in LabKey::ALL {
        let pem = dir.path().join(format!("{key:?}.der"));
        fs::write(&pem, tok.cert_der(key)).expect("write");
        let (ok, text) = openssl([
            "verify",
            "-x509_strict",
            "-policy",
            key.policy_oid(),
            "-explicit_policy",
            "-CAfile",
            &path(pki.root_pem()),
            "-untrusted",
            &path(pki.ca_pem()),
            // openssl verify reads PEM or DER certificates.
            &path(&pem),
        ]);
        assert!(ok, "{key:?}: {text}");
        let cert = parse(tok.cert_der(key));
        assert!(cert
            .subject()
            .to_string()
            .starts_with("CN=Demo Signer, serialNumber="));
    }
}
