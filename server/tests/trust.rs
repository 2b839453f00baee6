//! Signer trust, case by case, over HTTP: a result is posted for a live-key session with
//! each kind of signer certificate from lab PKIs (made with the openssl CLI), and the
//! server's decision is compared with `openssl verify` on the same files. The test
//! fails when the two disagree.
//!
//! The server trusts the lab roots only (no intermediates preloaded: paths are built
//! from the posted `chain`), fetches CRLs over HTTP from the distribution points in the
//! certificates (a loopback file server) or asks the OCSP responder they name (a real
//! `openssl ocsp` on loopback), and requires a revocation status.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::routing::get;
use common::*;
use securesign_server::trust::{RevocationPolicy, SignerTrust, TrustSettings};
use securesign_testlab::{
    CertValidity, CrlFreshness, DscKeyUsage, DscSpec, IssuedDsc, LabKey, LabPki, PkiUrls,
    POLICY_CLASS2, POLICY_CLASS3,
};
use serde_json::{json, Value};

/// Serves `<dir of pki>/crl/*` as `/<pki name>/<file>`, counting requests.
#[derive(Clone, Default)]
struct CrlServer {
    dirs: Arc<parking_lot::Mutex<HashMap<String, PathBuf>>>,
    hits: Arc<AtomicUsize>,
}

async fn serve_crl(
    State(server): State<CrlServer>,
    UrlPath((pki, file)): UrlPath<(String, String)>,
) -> Result<Vec<u8>, StatusCode> {
    server.hits.fetch_add(1, Ordering::SeqCst);
    let dir = server
        .dirs
        .lock()
        .get(&pki)
        .cloned()
        .ok_or(StatusCode::NOT_FOUND)?;
    if file.contains('/') || file.contains("..") {
        return Err(StatusCode::NOT_FOUND);
    }
    std::fs::read(dir.join(&file)).map_err(|_| StatusCode::NOT_FOUND)
}

impl CrlServer {
    /// Starts on a free loopback port; returns the server and its base URL.
    async fn start() -> (Self, String) {
        let server = Self::default();
        let app = axum::Router::new()
            .route("/{pki}/{file}", get(serve_crl))
            .with_state(server.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (server, base)
    }

    /// A lab PKI whose certificates name `<base>/<name>/ca.crl` (and `root.crl`), and
    /// the OCSP responder `ocsp` when given.
    fn pki(&self, base: &str, name: &str, dir: &Path, ocsp: Option<String>) -> LabPki {
        let pki = LabPki::create(
            &dir.join(name),
            PkiUrls {
                crl_base: Some(format!("{base}/{name}")),
                ocsp,
            },
        )
        .unwrap();
        self.dirs.lock().insert(name.to_owned(), pki.crl_dir());
        pki
    }
}

/// A class 3 DSC with a CRL distribution point and no OCSP responder.
fn spec(common_name: &str) -> DscSpec {
    DscSpec {
        ocsp: false,
        ..DscSpec::class3(common_name)
    }
}

/// A class 3 DSC with an OCSP responder and no CRL distribution point.
fn ocsp_spec(common_name: &str) -> DscSpec {
    DscSpec {
        crl_dp: false,
        ..DscSpec::class3(common_name)
    }
}

/// A loopback port nothing listens on (bound, then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `openssl ocsp` asking `url` about `cert`: `Ok` when it answers `good` with a
/// response that verifies against `root`.
fn openssl_ocsp(root: &Path, issuer: &Path, cert: &Path, url: &str) -> Result<(), String> {
    let out = Command::new("openssl")
        .args(["ocsp", "-timeout", "5", "-CAfile"])
        .arg(root)
        .arg("-issuer")
        .arg(issuer)
        .arg("-cert")
        .arg(cert)
        .args(["-url", url])
        .output()
        .expect("openssl must be installed");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() && text.contains("Response verify OK") && text.contains(": good") {
        Ok(())
    } else {
        Err(text)
    }
}

/// `openssl verify` of `cert` against `root` with the chain and CRLs given: `Ok` or the
/// error line.
fn openssl_verify(
    root: &Path,
    chain: &[&Path],
    crls: &[PathBuf],
    policy: Option<&str>,
    cert: &Path,
) -> Result<(), String> {
    let mut cmd = Command::new("openssl");
    cmd.args(["verify", "-x509_strict", "-purpose", "smimesign", "-CAfile"])
        .arg(root);
    for c in chain {
        cmd.arg("-untrusted").arg(c);
    }
    if !crls.is_empty() {
        cmd.arg("-crl_check_all");
        for crl in crls {
            cmd.arg("-CRLfile").arg(crl);
        }
    }
    if let Some(oid) = policy {
        cmd.args(["-policy", oid, "-explicit_policy"]);
    }
    let out = cmd.arg(cert).output().expect("openssl must be installed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    if out.status.success() && stdout.trim_end().ends_with(": OK") {
        Ok(())
    } else {
        Err(format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)))
    }
}

fn crl_files(pki: &LabPki) -> Vec<PathBuf> {
    vec![pki.crl_dir().join("ca.crl"), pki.crl_dir().join("root.crl")]
}

/// One row: the signer, what is posted with it, what the session asks, and the expected
/// verdict (`None`: completes; `Some((code, words))`: refused with that code, the
/// message containing the words).
struct Case {
    name: &'static str,
    signer: IssuedDsc,
    chain: Vec<PathBuf>,
    session_signer: Option<Value>,
    expect: Option<(&'static str, &'static str)>,
    /// What `openssl verify` gets: root, CRLs, policy.
    judge_root: PathBuf,
    judge_crls: Vec<PathBuf>,
    judge_policy: Option<&'static str>,
    /// For OCSP rows, the responder `openssl ocsp` asks too: issuer PEM and URL.
    judge_ocsp: Option<(PathBuf, String)>,
}

async fn post_result(
    f: &Fixture,
    signer: &IssuedDsc,
    chain: &[PathBuf],
    session_signer: Option<&Value>,
) -> (Reply, String) {
    let digest = sha256(b"%PDF-1.7 trust table");
    let mut body = json!({"origin": PORTAL, "documents": documents_json(&[digest])});
    if let Some(expected) = session_signer {
        body["signer"] = expected.clone();
    }
    let created = f.post_bearer("/v1/auth/session", &f.live_key, &body).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let session_id = created.body["sessionId"].as_str().unwrap().to_owned();
    let request_id = created.body["deepLink"]
        .as_str()
        .unwrap()
        .strip_prefix("securesign://sign?requestId=")
        .unwrap()
        .to_owned();
    let key = Signer::issued(signer.clone());
    let chain_b64: Vec<String> = chain
        .iter()
        .map(|pem| {
            let der = Command::new("openssl")
                .args(["x509", "-outform", "DER", "-in"])
                .arg(pem)
                .output()
                .unwrap()
                .stdout;
            b64(&der)
        })
        .collect();
    let reply = f
        .post(
            &format!("/v1/sign-requests/{request_id}/result"),
            &json!({
                "certificate": b64(&signer.cert_der),
                "chain": chain_b64,
                "signatures": [{"documentId": "doc-0", "signature": b64(&key.sign(&digest))}],
            }),
        )
        .await;
    (reply, session_id)
}

/// The result was refused with `code`, its message saying `words`, and the session is
/// still pending with no signer.
async fn assert_refused(f: &Fixture, reply: &Reply, session_id: &str, code: &str, words: &str) {
    reply.assert_error(422, code);
    let message = reply.body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(words), "{message:?} should say {words:?}");
    let status = f
        .get_bearer(&format!("/v1/auth/session/{session_id}"), &f.live_key)
        .await;
    assert_eq!(
        status.body["status"], "pending",
        "a refused result leaves the session pending"
    );
    assert!(status.body.get("signer").is_none());
}

#[tokio::test]
async fn every_trust_decision_agrees_with_openssl_verify() {
    let work = tempfile::tempdir().unwrap();
    let (crl_server, base) = CrlServer::start().await;
    // The main lab PKI (with an OCSP responder), one whose published CRLs have expired,
    // one whose OCSP responder is down, and one the server does not trust.
    let ocsp_url = format!("http://127.0.0.1:{}", free_port());
    let lab = crl_server.pki(&base, "lab", work.path(), Some(ocsp_url.clone()));
    let stale = crl_server.pki(&base, "stale", work.path(), None);
    let dead_url = format!("http://127.0.0.1:{}", free_port());
    let down = crl_server.pki(&base, "down", work.path(), Some(dead_url.clone()));
    let foreign = crl_server.pki(&base, "foreign", work.path(), None);

    let trusted = lab.issue(&spec("Anita Sharma")).unwrap();
    let revoked = lab.issue(&spec("Revoked Signer")).unwrap();
    lab.revoke(&revoked).unwrap();
    let expired = lab
        .issue(&DscSpec {
            validity: CertValidity::Expired,
            ..spec("Expired Signer")
        })
        .unwrap();
    let not_yet = lab
        .issue(&DscSpec {
            validity: CertValidity::DaysFromNow {
                not_before: 2,
                not_after: 30,
            },
            ..spec("Future Signer")
        })
        .unwrap();
    let encipher_only = lab
        .issue(&DscSpec {
            key_usage: DscKeyUsage::EncipherOnly,
            ..spec("Encryption Only")
        })
        .unwrap();
    let ec_class2 = lab
        .issue(&DscSpec {
            key: LabKey::Ec,
            policy: POLICY_CLASS2,
            ..spec("Class Two Signer")
        })
        .unwrap();
    let look_alike = lab.self_signed_look_alike(&spec("Anita Sharma")).unwrap();
    let (extra_ca, too_deep) = lab.issue_under_extra_ca(&spec("Deep Signer")).unwrap();
    let stale_signer = stale.issue(&spec("Stale CRL Signer")).unwrap();
    let ocsp_good = lab.issue(&ocsp_spec("Ocsp Signer")).unwrap();
    let ocsp_revoked = lab.issue(&ocsp_spec("Ocsp Revoked Signer")).unwrap();
    lab.revoke(&ocsp_revoked).unwrap();
    let responder_down = down
        .issue(&ocsp_spec("Unreachable Responder Signer"))
        .unwrap();
    let foreign_signer = foreign.issue(&spec("Foreign Signer")).unwrap();
    lab.publish_crls(CrlFreshness::Current).unwrap();
    stale.publish_crls(CrlFreshness::Expired).unwrap();
    foreign.publish_crls(CrlFreshness::Current).unwrap();
    down.publish_crls(CrlFreshness::Current).unwrap();
    let port = ocsp_url.rsplit(':').next().unwrap().parse().unwrap();
    let _responder = lab.start_ocsp_responder(port).unwrap();

    let anchors = work.path().join("anchors.pem");
    std::fs::write(
        &anchors,
        [
            std::fs::read(lab.root_pem()).unwrap(),
            std::fs::read(stale.root_pem()).unwrap(),
            std::fs::read(down.root_pem()).unwrap(),
        ]
        .concat(),
    )
    .unwrap();
    let trust = SignerTrust::load(&TrustSettings {
        anchors: Some(anchors),
        intermediates: None,
        crl_dir: None,
        revocation: RevocationPolicy::Required,
        allow_private_fetches: true,
    })
    .unwrap();
    let f = Fixture::start_with_trust(trust).await;

    let lab_chain = vec![lab.ca_pem().to_owned()];
    let lab_root = lab.root_pem().to_owned();
    let case = |name, signer: &IssuedDsc, expect| Case {
        name,
        signer: signer.clone(),
        chain: lab_chain.clone(),
        session_signer: None,
        expect,
        judge_root: lab_root.clone(),
        judge_crls: crl_files(&lab),
        judge_policy: None,
        judge_ocsp: None,
    };
    let ocsp_case = |name, signer: &IssuedDsc, expect| Case {
        judge_crls: Vec::new(),
        judge_ocsp: Some((lab.ca_pem().to_owned(), ocsp_url.clone())),
        ..case(name, signer, expect)
    };
    let untrusted = |words| Some(("SS_SIGNER_UNTRUSTED", words));
    let cases = vec![
        case("trusted signer", &trusted, None),
        Case {
            name: "trusted signer of the required class",
            session_signer: Some(json!({"policyClasses": ["class3"]})),
            judge_policy: Some(POLICY_CLASS3),
            ..case("", &trusted, None)
        },
        case("expired", &expired, untrusted("expired")),
        case("not yet valid", &not_yet, untrusted("not valid before")),
        case("wrong key usage", &encipher_only, untrusted("key usage")),
        Case {
            chain: Vec::new(),
            ..case(
                "missing intermediate (none posted)",
                &trusted,
                untrusted("does not chain to a trusted CA"),
            )
        },
        case("revoked by CRL", &revoked, untrusted("revoked")),
        Case {
            chain: vec![stale.ca_pem().to_owned()],
            judge_root: stale.root_pem().to_owned(),
            judge_crls: crl_files(&stale),
            ..case("CRL expired", &stale_signer, untrusted("CRL"))
        },
        ocsp_case("trusted signer, status by OCSP", &ocsp_good, None),
        ocsp_case("revoked by OCSP", &ocsp_revoked, untrusted("revoked")),
        Case {
            chain: vec![down.ca_pem().to_owned()],
            judge_root: down.root_pem().to_owned(),
            judge_ocsp: Some((down.ca_pem().to_owned(), dead_url.clone())),
            ..ocsp_case(
                "OCSP responder down",
                &responder_down,
                untrusted("revocation status is unknown"),
            )
        },
        Case {
            chain: vec![foreign.ca_pem().to_owned()],
            ..case(
                "unknown root",
                &foreign_signer,
                untrusted("does not chain to a trusted CA"),
            )
        },
        case(
            "self-signed look-alike with the same subject",
            &look_alike,
            untrusted("does not chain to a trusted CA"),
        ),
        Case {
            session_signer: Some(json!({"policyClasses": ["class3"]})),
            judge_policy: Some(POLICY_CLASS3),
            ..case("wrong policy class", &ec_class2, untrusted("policy"))
        },
        Case {
            session_signer: Some(json!({"subject": {"serialNumber": "ABCDE1234F-hash"}})),
            ..case(
                "signer mismatch",
                &trusted,
                Some(("SS_SIGNER_MISMATCH", "serialNumber")),
            )
        },
        Case {
            chain: vec![extra_ca.cert_pem.clone(), lab.ca_pem().to_owned()],
            ..case("chain too long", &too_deep, untrusted("too long"))
        },
    ];

    let mut disagreements = Vec::new();
    for case in &cases {
        let chain: Vec<&Path> = case.chain.iter().map(PathBuf::as_path).collect();
        let judged = openssl_verify(
            &case.judge_root,
            &chain,
            &case.judge_crls,
            case.judge_policy,
            &case.signer.cert_pem,
        )
        .and_then(|()| match &case.judge_ocsp {
            Some((issuer, url)) => {
                openssl_ocsp(&case.judge_root, issuer, &case.signer.cert_pem, url)
            }
            None => Ok(()),
        });
        let (reply, session_id) =
            post_result(&f, &case.signer, &case.chain, case.session_signer.as_ref()).await;
        match case.expect {
            None => {
                let status = f
                    .get_bearer(&format!("/v1/auth/session/{session_id}"), &f.live_key)
                    .await;
                assert_eq!(reply.status, 200, "{}: {}", case.name, reply.body);
                assert_eq!(status.body["status"], "completed", "{}", case.name);
                let signer = &status.body["signer"];
                assert_eq!(signer["trusted"], true, "{}: {signer}", case.name);
                assert_eq!(signer["revocation"]["status"], "good", "{}", case.name);
                let source = if case.judge_ocsp.is_some() {
                    "ocsp"
                } else {
                    "crl"
                };
                assert_eq!(signer["revocation"]["source"], source, "{}", case.name);
                assert_eq!(
                    signer["chainSha256"].as_array().map(Vec::len),
                    Some(3),
                    "{}: signer, licensed CA, root",
                    case.name
                );
                assert_eq!(signer["policyClasses"], json!(["class3"]), "{}", case.name);
            }
            Some((code, words)) => {
                eprintln!("case: {}", case.name);
                assert_refused(&f, &reply, &session_id, code, words).await;
            }
        }
        // openssl judges the chain only: it cannot know which signer the portal expects,
        // so for a mismatch it must find the chain valid.
        let chain_valid = matches!(case.expect, None | Some(("SS_SIGNER_MISMATCH", _)));
        if judged.is_ok() != chain_valid {
            disagreements.push(format!(
                "{}: server {}, openssl {:?}",
                case.name, reply.body, judged
            ));
        }
    }
    assert!(
        disagreements.is_empty(),
        "server and openssl disagree:\n{}",
        disagreements.join("\n")
    );
    assert!(
        crl_server.hits.load(Ordering::SeqCst) >= 4,
        "the CRLs were fetched from the distribution points"
    );
    f.stop().await;
}

/// A self-signed software key and certificate, as anyone holding a `requestId` could make.
fn forged_signer(dir: &Path) -> IssuedDsc {
    let key = dir.join("forged.key.pem");
    let cert = dir.join("forged.cert.pem");
    let cert_der = dir.join("forged.cert.der");
    let run = |args: &[&str]| {
        let out = Command::new("openssl").args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        key.to_str().unwrap(),
        "-subj",
        "/CN=Anita Sharma/C=IN",
        "-days",
        "30",
        "-out",
        cert.to_str().unwrap(),
    ]);
    run(&[
        "x509",
        "-in",
        cert.to_str().unwrap(),
        "-outform",
        "DER",
        "-out",
        cert_der.to_str().unwrap(),
    ]);
    IssuedDsc {
        key: LabKey::Rsa,
        key_pem: key.clone(),
        private_key_der: key.clone(),
        public_key_der: key,
        cert_pem: cert,
        cert_der: std::fs::read(&cert_der).unwrap(),
        cert_der_path: cert_der,
    }
}

/// The issue's forged scenario: a result signed with a self-signed software key is
/// refused for a live key and the session stays pending; a test key's session completes,
/// marked untrusted with the reason.
#[tokio::test]
async fn a_forged_self_signed_result_is_refused_for_live_keys_and_marked_for_test_keys() {
    let work = tempfile::tempdir().unwrap();
    let forged = forged_signer(work.path());
    let f = Fixture::start_with_trust(lab_trust()).await;
    let (reply, session_id) = post_result(&f, &forged, &[], None).await;
    assert_refused(
        &f,
        &reply,
        &session_id,
        "SS_SIGNER_UNTRUSTED",
        "self-signed",
    )
    .await;

    // The same with a test key: completed, but nobody may take it for a trusted signer.
    let digest = sha256(b"%PDF-1.7 trust table");
    let created = f
        .post_bearer(
            "/v1/auth/session",
            &f.test_key,
            &json!({"origin": PORTAL, "documents": documents_json(&[digest])}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let request_id = created.body["deepLink"]
        .as_str()
        .unwrap()
        .strip_prefix("securesign://sign?requestId=")
        .unwrap()
        .to_owned();
    let key = Signer::issued(forged.clone());
    let done = f
        .post(
            &format!("/v1/sign-requests/{request_id}/result"),
            &json!({"certificate": b64(&forged.cert_der),
                    "signatures": [{"documentId": "doc-0", "signature": b64(&key.sign(&digest))}]}),
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    let signer = &done.body["signer"];
    assert_eq!(signer["trusted"], false);
    assert!(
        signer["untrustedReason"]
            .as_str()
            .unwrap()
            .contains("does not chain to a trusted CA"),
        "{signer}"
    );
    assert_eq!(signer["chainSha256"], json!([]));
    let status = f
        .get_bearer(
            &format!(
                "/v1/auth/session/{}",
                created.body["sessionId"].as_str().unwrap()
            ),
            &f.test_key,
        )
        .await;
    assert_eq!(status.body["status"], "completed");
    assert_eq!(&status.body["signer"], signer);
    f.stop().await;
}

/// Without trust anchors, live keys fail closed even for a real lab DSC.
#[tokio::test]
async fn without_anchors_a_live_result_is_refused() {
    let f = Fixture::start_with_trust(SignerTrust::none()).await;
    let signer = lab_pki().issue(&signer_spec(LabKey::Ec)).unwrap();
    let (reply, session_id) = post_result(&f, &signer, &[], None).await;
    assert_refused(
        &f,
        &reply,
        &session_id,
        "SS_SIGNER_UNTRUSTED",
        "no trust anchors",
    )
    .await;
    f.stop().await;
}

/// A distribution point on loopback is attacker-influenced input like a callback URL: not
/// fetched unless private fetches are allowed, so the status is unknown and, with
/// revocation required, the signer is refused; with `best-effort` it completes marked
/// `unknown`. The CRL server never sees a request.
#[tokio::test]
async fn a_crl_on_a_private_address_is_not_fetched_without_the_switch() {
    let work = tempfile::tempdir().unwrap();
    let (crl_server, base) = CrlServer::start().await;
    let lab = crl_server.pki(&base, "lab", work.path(), None);
    let signer = lab.issue(&spec("Anita Sharma")).unwrap();
    lab.publish_crls(CrlFreshness::Current).unwrap();
    let settings = |revocation| TrustSettings {
        anchors: Some(lab.root_pem().to_owned()),
        intermediates: Some(lab.ca_pem().to_owned()),
        crl_dir: None,
        revocation,
        allow_private_fetches: false,
    };

    let f = Fixture::start_with_trust(
        SignerTrust::load(&settings(RevocationPolicy::Required)).unwrap(),
    )
    .await;
    let (reply, session_id) = post_result(&f, &signer, &[], None).await;
    assert_refused(
        &f,
        &reply,
        &session_id,
        "SS_SIGNER_UNTRUSTED",
        "address 127.0.0.1 is loopback, not public",
    )
    .await;
    assert!(reply.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("revocation status is unknown"));
    f.stop().await;

    let f = Fixture::start_with_trust(
        SignerTrust::load(&settings(RevocationPolicy::BestEffort)).unwrap(),
    )
    .await;
    let (reply, _) = post_result(&f, &signer, &[], None).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["signer"]["trusted"], true);
    assert_eq!(reply.body["signer"]["revocation"]["status"], "unknown");
    assert_eq!(reply.body["signer"]["revocation"]["source"], "none");
    f.stop().await;
    assert_eq!(crl_server.hits.load(Ordering::SeqCst), 0);
}

/// A tenant that accepts only class 3 signers: its sessions require class 3 (the app sees
/// it in `expectedSigner`), a class 2 signer is refused, a session may not ask for
/// another class, and lifting the restriction accepts any class again.
#[tokio::test]
async fn a_tenant_restricted_to_class_3_refuses_a_class_2_signer() {
    use securesign_core::cert::IndiaPkiClass;
    let f = Fixture::start_now().await;
    f.admin()
        .set_policy_classes(&f.tenant_id, &[IndiaPkiClass::Class3])
        .await
        .unwrap();
    assert_eq!(
        f.admin().policy_classes(&f.tenant_id).await.unwrap(),
        vec![IndiaPkiClass::Class3]
    );
    let class2 = lab_pki()
        .issue(&DscSpec {
            key: LabKey::Ec,
            policy: POLICY_CLASS2,
            ..signer_spec(LabKey::Ec)
        })
        .unwrap();
    let (reply, session_id) = post_result(&f, &class2, &[], None).await;
    assert_refused(&f, &reply, &session_id, "SS_SIGNER_UNTRUSTED", "Class 3").await;

    // The app is told which class is expected.
    let (_, request_id) = f.create_session(&[sha256(b"x")], None).await;
    let request = f.get(&format!("/v1/sign-requests/{request_id}")).await;
    assert_eq!(
        request.body["expectedSigner"],
        json!({"policyClasses": ["class3"]})
    );
    // A session may not ask for a class the tenant does not accept.
    let refused = f
        .post_bearer(
            "/v1/auth/session",
            &f.live_key,
            &json!({"origin": PORTAL, "documents": documents_json(&[sha256(b"x")]),
                    "signer": {"policyClasses": ["class2"]}}),
        )
        .await;
    refused.assert_error(400, "SS_BAD_REQUEST");

    // A class 3 signer completes.
    let class3 = lab_pki().issue(&signer_spec(LabKey::Rsa)).unwrap();
    let (reply, _) = post_result(&f, &class3, &[], None).await;
    assert_eq!(reply.status, 200, "{}", reply.body);

    // Lifted: the class 2 signer completes.
    f.admin()
        .set_policy_classes(&f.tenant_id, &[])
        .await
        .unwrap();
    let (reply, _) = post_result(&f, &class2, &[], None).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["signer"]["policyClasses"], json!(["class2"]));
    f.stop().await;
}

/// A certificate that does not chain to an anchor names URLs of its maker's choosing: no
/// request goes to them (the path is built before any CRL is fetched).
#[tokio::test]
async fn an_untrusted_certificate_gets_no_fetch_on_its_behalf() {
    let work = tempfile::tempdir().unwrap();
    let (crl_server, base) = CrlServer::start().await;
    let foreign = crl_server.pki(&base, "foreign", work.path(), None);
    let signer = foreign.issue(&spec("Foreign Signer")).unwrap();
    foreign.publish_crls(CrlFreshness::Current).unwrap();
    let f = Fixture::start_with_trust(lab_trust()).await;
    let (reply, session_id) = post_result(&f, &signer, &[foreign.ca_pem().to_owned()], None).await;
    assert_refused(
        &f,
        &reply,
        &session_id,
        "SS_SIGNER_UNTRUSTED",
        "does not chain to a trusted CA",
    )
    .await;
    assert_eq!(crl_server.hits.load(Ordering::SeqCst), 0);
    f.stop().await;
}
