//! The `securesign-server admin` account commands (real binary, real database), and
//! the console's documentation of the error resolutions.

#![allow(clippy::unwrap_used)]

mod common;
mod console_support;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{cli, cli_tenant, database_args, BinaryServer, PORTAL};
use console_support::{ConsoleUser, PASSWORD};
use securesign_core::ErrorCode;

/// Runs `securesign-server admin …` with `stdin`; (success, stdout, stderr).
fn admin(db: &Path, args: &[&str], stdin: &str) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_securesign-server"))
        .args(database_args(db))
        .arg("admin")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[tokio::test]
async fn admin_accounts_are_created_listed_reset_and_removed_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("securesign.db");
    let tenant = cli_tenant(&db, &[PORTAL]);
    let email = "Ops@Portal.example.in";
    let create = |password: &str| {
        admin(
            &db,
            &[
                "create",
                "--tenant",
                &tenant,
                "--email",
                email,
                "--password-stdin",
            ],
            &format!("{password}\n"),
        )
    };

    let (ok, _, err) = create("short");
    assert!(
        !ok && err.contains("the password must be 12 to 1024 bytes long"),
        "{err}"
    );
    let (ok, _, err) = admin(
        &db,
        &[
            "create",
            "--tenant",
            "org_0000000000000000",
            "--email",
            email,
            "--password-stdin",
        ],
        &format!("{PASSWORD}\n"),
    );
    assert!(
        !ok && err.contains("no tenant org_0000000000000000"),
        "{err}"
    );
    let (ok, _, err) = admin(&db, &["create", "--tenant", &tenant, "--email", email], "");
    assert!(
        !ok && err.contains("--password-stdin"),
        "the password is never an argument: {err}"
    );
    let (ok, out, err) = create(PASSWORD);
    assert!(ok, "{err}");
    assert!(out.trim().starts_with("adm_"), "{out}");
    let (ok, _, err) = create(PASSWORD);
    assert!(!ok && err.contains("exists already"), "{err}");
    let list = cli(&db, &["admin", "list", "--tenant", &tenant]);
    assert!(
        list.starts_with(&format!("ops@portal.example.in\t{tenant}\tadm_")),
        "{list}"
    );
    assert!(list.contains("failed=0\t-"), "{list}");
    // The password is kept as an Argon2id hash only.
    assert!(!common::database::stored_bytes(&db)
        .windows(PASSWORD.len())
        .any(|w| w == PASSWORD.as_bytes()));

    let server = BinaryServer::spawn(&db, &dir.path().join("server.log"));
    let mut user = ConsoleUser::signed_in(&server.base(), "ops@portal.example.in").await;

    // A reset ends the session, and only the new password signs in.
    let new_password = "a different long password";
    let (ok, _, err) = admin(
        &db,
        &["reset", "--email", email, "--password-stdin"],
        &format!("{new_password}\n"),
    );
    assert!(ok, "{err}");
    assert_eq!(
        user.get("/admin/keys").await.status,
        303,
        "the session ended"
    );
    let mut other = ConsoleUser::new(&server.base());
    assert_eq!(other.sign_in(email, PASSWORD).await.status, 401);
    assert_eq!(other.sign_in(email, new_password).await.status, 303);
    assert_eq!(other.get("/admin/keys").await.status, 200);

    // Removed: its session ends and it cannot sign in.
    let (ok, _, err) = admin(&db, &["remove", "--email", email], "");
    assert!(ok, "{err}");
    assert_eq!(other.get("/admin/keys").await.status, 303);
    assert_eq!(
        ConsoleUser::new(&server.base())
            .sign_in(email, new_password)
            .await
            .status,
        401
    );
    assert_eq!(cli(&db, &["admin", "list"]), "");
    let (ok, _, err) = admin(&db, &["remove", "--email", email], "");
    assert!(!ok && err.contains("no admin account"), "{err}");
    server.stop();
}

#[test]
fn the_documentation_names_the_console_page_of_each_resolution_that_points_there() {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/ADMIN_CONSOLE.md")).unwrap();
    // The spec's resolutions, exactly, in the error bodies.
    assert_eq!(
        ErrorCode::ApiKeyInvalid.resolution(),
        "Check Admin Console key status"
    );
    assert_eq!(
        ErrorCode::DomainNotAllowed.resolution(),
        "Add domain in Admin Console"
    );
    for (code, page, path) in [
        (ErrorCode::ApiKeyInvalid, "API keys", "/admin/keys"),
        (
            ErrorCode::DomainNotAllowed,
            "Whitelisted origins",
            "/admin/origins",
        ),
    ] {
        let row = doc
            .lines()
            .find(|line| line.starts_with(&format!("| `{}` |", code.as_str())))
            .unwrap_or_else(|| panic!("no row for {}", code.as_str()));
        assert!(row.contains(code.resolution()), "{row}");
        assert!(row.contains(&format!("**{page}** (`{path}`)")), "{row}");
        // The page is titled so.
        let template = std::fs::read_to_string(format!(
            "{}/templates/console/{}.html",
            env!("CARGO_MANIFEST_DIR"),
            path.trim_start_matches("/admin/")
        ))
        .unwrap();
        assert!(template.contains(&format!("<h1>{page}</h1>")), "{path}");
    }
}
