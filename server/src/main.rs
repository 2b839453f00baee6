//! `securesign-server`: the REST API server and its admin commands.

#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use securesign_core::cert::IndiaPkiClass;
use securesign_server::admin::{Admin, DEFAULT_RPM};
use securesign_server::api_key::KeyMode;
use securesign_server::clock::format_rfc3339;
use securesign_server::console::accounts::Accounts;
use securesign_server::console::usage::spawn_flusher;
use securesign_server::http::client_address::TrustedProxies;
use securesign_server::http::client_limits::DEFAULT_APP_RPM_PER_ADDRESS;
use securesign_server::http::connections::{serve_with, ServeOptions};
use securesign_server::http::well_known::{AppLinks, AppLinksSettings};
use securesign_server::rate_limit::{RateLimits, Scope};
use securesign_server::trust::{RevocationPolicy, SignerTrust, TrustSettings};
use securesign_server::webhook::DeliveryPolicy;
use securesign_server::{
    router, spawn_webhook_worker, AppState, Clock, RouterOptions, Store, SystemClock,
};
use tracing_subscriber::EnvFilter;

/// SecureSign REST API server.
#[derive(Debug, Parser)]
#[command(name = "securesign-server", version)]
struct Cli {
    /// SQLite database file (created if missing). The default database.
    #[arg(
        long,
        global = true,
        env = "SECURESIGN_DB",
        default_value = "securesign.db"
    )]
    db: PathBuf,
    /// PostgreSQL database instead of the SQLite file: `postgres://user@host/dbname`
    /// (migrated on start). Needs `--secrets-key`: the key that seals webhook secrets
    /// is a file on the server, never in the database.
    #[arg(
        long,
        global = true,
        env = "SECURESIGN_DATABASE_URL",
        conflicts_with = "db"
    )]
    database_url: Option<String>,
    /// File holding the key that seals webhook secrets in the database (created with
    /// mode 0600 if missing). Default (SQLite): the database path plus `.secrets-key`.
    /// Keep it out of database backups.
    #[arg(long, global = true, env = "SECURESIGN_SECRETS_KEY_FILE")]
    secrets_key: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the API server.
    Serve(Box<ServeArgs>),
    /// Manage tenants.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Manage API keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Manage a tenant's whitelisted origins.
    #[command(subcommand)]
    Domain(DomainCommand),
    /// Inspect callback deliveries.
    #[command(subcommand)]
    Webhook(WebhookCommand),
    /// Manage Admin Console accounts (a tenant's admins, who sign in at /admin/).
    #[command(subcommand)]
    Admin(AdminCommand),
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Create an account for a tenant's admin; the password is read from stdin (one
    /// line, at least 12 characters).
    Create {
        /// Tenant id (`org_…`): the only tenant the account sees and changes.
        #[arg(long)]
        tenant: String,
        /// E-mail address (the sign-in name).
        #[arg(long)]
        email: String,
        /// Read the password from stdin (required: never on the command line).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// List accounts (address, tenant, created, failed sign-ins, lock).
    List {
        /// Only this tenant's accounts.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Remove an account; its sessions end at once.
    Remove {
        /// E-mail address.
        #[arg(long)]
        email: String,
    },
    /// Set a new password (from stdin), lift a lock and end the account's sessions.
    Reset {
        /// E-mail address.
        #[arg(long)]
        email: String,
        /// Read the password from stdin (required).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the chosen address is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Also serve `POST /v1/bench/trivial` (benchmark baseline).
    #[arg(long)]
    bench_routes: bool,
    /// Where API keys' requests are counted: `shared` (in the PostgreSQL database, so a
    /// key's limit is its total over every instance: the default on PostgreSQL) or
    /// `per-instance` (in this process: the SQLite default; on PostgreSQL each
    /// instance then allows the full limit on its own).
    #[arg(long, value_enum)]
    rate_limit_scope: Option<RateLimitScopeArg>,
    /// Attempts per callback event before it is marked failed.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=30))]
    webhook_max_attempts: u32,
    /// Wait after the first failed callback attempt, doubled after each further one.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    webhook_backoff: Duration,
    /// Whole-request timeout of a callback attempt.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    webhook_timeout: Duration,
    /// Also deliver callbacks to loopback, private, link-local and other non-public
    /// addresses, and fetch CRLs from them. For local development and tests only:
    /// without it, a whitelisted host whose DNS points into our own network is refused
    /// (SSRF), and so is a certificate's CRL distribution point there.
    #[arg(long)]
    allow_private_callbacks: bool,
    /// PEM bundle of trust anchors (root CA certificates; in production, India's CCA
    /// roots). Without one, live keys' results are refused (SS_SIGNER_UNTRUSTED).
    #[arg(long, env = "SECURESIGN_TRUST_ANCHORS")]
    trust_anchors: Option<PathBuf>,
    /// PEM bundle of CA certificates used to build signers' paths (e.g. the licensed
    /// CAs under the CCA root); trusted only through an anchor.
    #[arg(long, env = "SECURESIGN_INTERMEDIATES")]
    intermediates: Option<PathBuf>,
    /// Directory of CRLs (DER or PEM, *.crl|*.der|*.pem) loaded at start, beside those
    /// fetched from the certificates' distribution points.
    #[arg(long, env = "SECURESIGN_CRL_DIR")]
    crl_dir: Option<PathBuf>,
    /// `required`: a signer whose revocation status cannot be learnt is refused;
    /// `best-effort`: accepted with revocation status `unknown`. Revoked is always refused.
    #[arg(long, value_enum, default_value = "required")]
    revocation: RevocationArg,
    /// Time a client has to send a request's line and headers; also how long an idle
    /// keep-alive connection is kept. Past it, the connection is closed.
    #[arg(long, default_value = "10s", value_parser = positive_duration)]
    header_read_timeout: Duration,
    /// Time a client has to send a request's whole body, from its headers. Past it, the
    /// request is answered SS_BAD_REQUEST ("… timed out …") and the connection closed.
    /// The default lets the largest result body (~14 MB) come at about 2 Mbit/s.
    #[arg(long, default_value = "60s", value_parser = positive_duration)]
    body_read_timeout: Duration,
    /// Open connections at most; further ones wait in the listen backlog (0: no limit;
    /// keep it below the open-files limit).
    #[arg(long, default_value_t = ServeOptions::MAX_CONNECTIONS)]
    max_connections: usize,
    /// Open connections from one client address at most (IPv6: per /64); a further one
    /// is closed at once (0: no limit). Not applied to --trusted-proxy peers.
    #[arg(long, default_value_t = ServeOptions::MAX_CONNECTIONS_PER_ADDRESS)]
    max_connections_per_ip: usize,
    /// Requests per minute from one client address (IPv6: per /64) on the app routes
    /// (/v1/sign-requests/…, which no API key limits); over it, 429 SS_RATE_LIMITED with
    /// Retry-After (0: no limit). Portal routes are limited per API key (--rpm of the key).
    #[arg(long, default_value_t = DEFAULT_APP_RPM_PER_ADDRESS)]
    app_rpm_per_ip: u32,
    /// A reverse proxy or load balancer (CIDR range or address), repeatable (env:
    /// comma-separated): from a peer inside it, the client address of the per-address
    /// limits is the rightmost X-Forwarded-For entry that is not itself a trusted proxy,
    /// and its connections are not capped per address (cap them at the proxy). From any
    /// other peer X-Forwarded-For is ignored.
    #[arg(
        long = "trusted-proxy",
        env = "SECURESIGN_TRUSTED_PROXIES",
        value_delimiter = ',',
        value_parser = TrustedProxies::parse_range
    )]
    trusted_proxies: Vec<ipnet::IpNet>,
    /// Connections from --trusted-proxy peers start with a PROXY protocol header (v1 or
    /// v2: HAProxy's send-proxy-v2) naming the client, so the per-address connection cap
    /// counts clients too; a trusted peer's connection without one is closed.
    #[arg(long, requires = "trusted_proxies")]
    proxy_protocol: bool,
    /// Android package name named in /.well-known/assetlinks.json (default: the app's
    /// identifier, in.securesign.app).
    #[arg(long, env = "SECURESIGN_ANDROID_PACKAGE")]
    android_package: Option<String>,
    /// SHA-256 fingerprint of an Android signing certificate (AA:BB:…:FF or 64 hex
    /// digits); repeatable (env: comma-separated). Without one, assetlinks.json is 404.
    #[arg(
        long = "android-cert-fingerprint",
        env = "SECURESIGN_ANDROID_CERT_FINGERPRINTS",
        value_delimiter = ','
    )]
    android_cert_fingerprints: Vec<String>,
    /// Apple developer Team ID (10 characters) for /.well-known/apple-app-site-association;
    /// without it, that file is 404.
    #[arg(long, env = "SECURESIGN_APPLE_TEAM_ID")]
    apple_team_id: Option<String>,
    /// iOS bundle id in the apple-app-site-association (default: the app's identifier,
    /// in.securesign.app).
    #[arg(long, env = "SECURESIGN_APPLE_BUNDLE_ID")]
    apple_bundle_id: Option<String>,
}

/// A `humantime` duration that is not zero.
fn positive_duration(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text) {
        Ok(d) if d.is_zero() => Err("must be longer than zero".to_owned()),
        Ok(d) => Ok(d),
        Err(err) => Err(err.to_string()),
    }
}

fn parse_class(name: &str) -> Result<IndiaPkiClass, String> {
    serde_json::from_value(serde_json::Value::String(name.to_owned()))
        .map_err(|_| format!("unknown class {name:?}"))
}

/// `--rate-limit-scope`.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum RateLimitScopeArg {
    Shared,
    PerInstance,
}

/// `--revocation`.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum RevocationArg {
    Required,
    BestEffort,
}

#[derive(Debug, Subcommand)]
enum TenantCommand {
    /// Create a tenant; prints its id (stdout) and its webhook secret, once (stderr).
    Create {
        /// Name shown to signers.
        #[arg(long)]
        name: String,
    },
    /// List tenants: id, created, state (`active` or `disabled since …`), name.
    List,
    /// Disable a tenant: every instance refuses its API keys (SS_API_KEY_INVALID) from
    /// its next request on, and its pending sessions expire. `tenant enable` undoes it.
    Disable {
        /// Tenant id (`org_…`).
        #[arg(long)]
        tenant: String,
    },
    /// Enable a disabled tenant: its API keys work again (sessions expired by the
    /// disable stay expired).
    Enable {
        /// Tenant id (`org_…`).
        #[arg(long)]
        tenant: String,
    },
    /// Accept only signers of these India PKI classes (class1, class2, class3,
    /// ekyc_single_factor, ekyc_multi_factor, document_signer) in the tenant's new sessions;
    /// no class accepts any again. Prints the classes in effect.
    PolicyClasses {
        /// Tenant id (`org_…`).
        #[arg(long)]
        tenant: String,
        /// The accepted classes.
        #[arg(value_parser = parse_class)]
        classes: Vec<IndiaPkiClass>,
    },
    /// Manage the tenant's webhook secret (it signs callback events).
    #[command(subcommand)]
    WebhookSecret(WebhookSecretCommand),
}

#[derive(Debug, Subcommand)]
enum WebhookSecretCommand {
    /// Replace the secret; prints the new one once. The old one stops signing at once,
    /// or after `--grace` (until then callbacks carry a signature with each).
    Roll {
        /// Tenant id (`org_…`).
        #[arg(long)]
        tenant: String,
        /// How long the old secret keeps signing beside the new one (e.g. `24h`).
        #[arg(long, value_parser = humantime::parse_duration, default_value = "0s")]
        grace: Duration,
    },
}

#[derive(Debug, Subcommand)]
enum WebhookCommand {
    /// List a session's callback events: id, type, status, attempts, last HTTP status,
    /// last error, and when it was delivered or is next tried.
    Deliveries {
        /// Session id (`sess_…`).
        #[arg(long)]
        session: String,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ModeArg {
    Live,
    Test,
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Create a key; prints it once.
    Create {
        /// Tenant id (`org_…`).
        #[arg(long)]
        tenant: String,
        /// `live` (https origins) or `test` (also http://localhost).
        #[arg(long, value_enum)]
        mode: ModeArg,
        /// Requests per minute.
        #[arg(long, default_value_t = DEFAULT_RPM)]
        rpm: u32,
    },
    /// List keys (prefix and last four characters only).
    List {
        /// Only this tenant's keys.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Revoke a key at once.
    Revoke {
        /// Key id (`key_…`).
        key_id: String,
    },
    /// Replace a key; the old one works until the grace period ends.
    Roll {
        /// Key id (`key_…`).
        key_id: String,
        /// How long the old key keeps working, e.g. `24h`, `30m`, `0s`.
        #[arg(long, value_parser = humantime::parse_duration)]
        grace: Duration,
    },
}

#[derive(Debug, Subcommand)]
enum DomainCommand {
    /// Whitelist an origin (`https://host[:port]`, or `http://localhost[:port]`).
    Add {
        /// Tenant id.
        #[arg(long)]
        tenant: String,
        /// Origin.
        origin: String,
    },
    /// Remove an origin.
    Remove {
        /// Tenant id.
        #[arg(long)]
        tenant: String,
        /// Origin.
        origin: String,
    },
    /// List a tenant's origins.
    List {
        /// Tenant id.
        #[arg(long)]
        tenant: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    let store = match &cli.database_url {
        Some(url) => {
            let key_path = cli.secrets_key.as_deref().ok_or(
                "--database-url needs --secrets-key FILE (or SECURESIGN_SECRETS_KEY_FILE): \
                 the key that seals webhook secrets is kept out of the database",
            )?;
            Store::open_postgres(url, key_path).await
        }
        None => {
            let key_path = cli
                .secrets_key
                .clone()
                .unwrap_or_else(|| Store::default_secrets_key_path(&cli.db));
            Store::open_with_secrets_key(&cli.db, &key_path).await
        }
    }
    .map_err(|e| e.to_string())?;
    let clock = SystemClock::new();
    let result = match cli.command {
        Command::Serve(args) => run_server(store.clone(), *args).await,
        Command::Tenant(cmd) => tenant(&Admin::new(&store, &clock), cmd).await,
        Command::Key(cmd) => key(&Admin::new(&store, &clock), &clock, cmd).await,
        Command::Domain(cmd) => domain(&Admin::new(&store, &clock), cmd).await,
        Command::Webhook(cmd) => webhook(&Admin::new(&store, &clock), cmd).await,
        Command::Admin(cmd) => console_accounts(&Accounts::new(&store, &clock), cmd).await,
    };
    store.close().await;
    result
}

async fn run_server(store: Store, args: ServeArgs) -> Result<(), String> {
    // Checked before anything starts: a wrong file would make phones verify nothing.
    let app_links = AppLinks::new(&AppLinksSettings {
        android_package: args.android_package.clone(),
        android_cert_fingerprints: args.android_cert_fingerprints.clone(),
        apple_team_id: args.apple_team_id.clone(),
        apple_bundle_id: args.apple_bundle_id.clone(),
    })
    .map_err(|e| format!("app links configuration: {e}"))?;
    tracing::info!(
        assetlinks = app_links.assetlinks().is_some(),
        apple_app_site_association = app_links.apple_app_site_association().is_some(),
        "/.well-known/ app link files"
    );
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock::new());
    let trust = SignerTrust::load(&TrustSettings {
        anchors: args.trust_anchors.clone(),
        intermediates: args.intermediates.clone(),
        crl_dir: args.crl_dir.clone(),
        revocation: match args.revocation {
            RevocationArg::Required => RevocationPolicy::Required,
            RevocationArg::BestEffort => RevocationPolicy::BestEffort,
        },
        allow_private_fetches: args.allow_private_callbacks,
    })
    .map_err(|e| format!("trust configuration: {e}"))?;
    if trust.anchor_count() == 0 {
        tracing::warn!("no trust anchors (--trust-anchors): results of live keys will be refused as SS_SIGNER_UNTRUSTED");
    }
    let scope = match args.rate_limit_scope {
        Some(RateLimitScopeArg::Shared) => Scope::Shared,
        Some(RateLimitScopeArg::PerInstance) => Scope::PerInstance,
        None => RateLimits::default_scope(&store),
    };
    let limits = RateLimits::with_scope(&store, clock.clone(), scope).map_err(|e| e.to_string())?;
    tracing::info!(?scope, "API key rate limits");
    let state = AppState::with_limits(store, clock, Arc::new(trust), limits);
    let policy = DeliveryPolicy {
        max_attempts: args.webhook_max_attempts,
        base_backoff: args.webhook_backoff,
        request_timeout: args.webhook_timeout,
        allow_private_destinations: args.allow_private_callbacks,
        ..DeliveryPolicy::default()
    };
    let (stop_worker, worker_stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = spawn_webhook_worker(&state, policy, async {
        let _ = worker_stopped.await;
    })
    .map_err(|e| e.to_string())?;
    let (stop_flusher, flusher_stopped) = tokio::sync::oneshot::channel::<()>();
    let flusher = spawn_flusher(
        state.store.clone(),
        state.clock.clone(),
        state.usage.clone(),
        async {
            let _ = flusher_stopped.await;
        },
    );
    let app = router(
        state,
        RouterOptions {
            bench_routes: args.bench_routes,
            app_rpm_per_address: args.app_rpm_per_ip,
            app_links: Arc::new(app_links),
        },
    );
    let limits = ServeOptions {
        header_read_timeout: args.header_read_timeout,
        body_read_timeout: args.body_read_timeout,
        max_connections: args.max_connections,
        max_connections_per_address: args.max_connections_per_ip,
        trusted_proxies: TrustedProxies::new(args.trusted_proxies.clone()),
        proxy_protocol: args.proxy_protocol,
    };
    // Tests and scripts read the bound address from this line.
    println!("listening on {addr}");
    if args.allow_private_callbacks {
        tracing::warn!(
            "callbacks may reach private and loopback addresses (--allow-private-callbacks)"
        );
    }
    tracing::info!(%addr, bench_routes = args.bench_routes, ?limits, app_rpm_per_ip = args.app_rpm_per_ip, "securesign-server started");
    let served = serve_with(listener, app, limits, shutdown_signal()).await;
    let _ = stop_worker.send(());
    let _ = worker.await;
    let _ = stop_flusher.send(());
    let _ = flusher.await;
    served.map_err(|e| e.to_string())?;
    tracing::info!("securesign-server stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

async fn tenant(admin: &Admin<'_>, cmd: TenantCommand) -> Result<(), String> {
    match cmd {
        TenantCommand::Create { name } => {
            let created = admin
                .create_tenant_with_secret(&name)
                .await
                .map_err(|e| e.to_string())?;
            // stdout stays the id alone (scripts read it); the secret goes to the terminal.
            eprintln!(
                "created {}; its webhook secret is shown only this once:\n{}",
                created.tenant.id,
                created.webhook_secret.expose()
            );
            println!("{}", created.tenant.id);
        }
        TenantCommand::WebhookSecret(WebhookSecretCommand::Roll { tenant, grace }) => {
            let secret = admin
                .roll_webhook_secret(&tenant, grace)
                .await
                .map_err(|e| e.to_string())?;
            let old = if grace.is_zero() {
                "the old one no longer signs".to_owned()
            } else {
                format!(
                    "the old one signs beside it for {}",
                    humantime::format_duration(grace)
                )
            };
            eprintln!("new webhook secret for {tenant}; {old}; shown only this once:");
            println!("{}", secret.expose());
        }
        TenantCommand::PolicyClasses { tenant, classes } => {
            admin
                .set_policy_classes(&tenant, &classes)
                .await
                .map_err(|e| e.to_string())?;
            let names: Vec<&str> = classes.iter().map(|c| c.label()).collect();
            if names.is_empty() {
                println!("any class");
            } else {
                println!("{}", names.join(", "));
            }
        }
        TenantCommand::List => {
            for t in admin.tenants().await.map_err(|e| e.to_string())? {
                let state = match t.disabled_at {
                    Some(at) => format!("disabled since {}", format_rfc3339(at)),
                    None => "active".to_owned(),
                };
                println!(
                    "{}\t{}\t{state}\t{}",
                    t.id,
                    format_rfc3339(t.created_at),
                    t.display_name
                );
            }
        }
        TenantCommand::Disable { tenant } => {
            let done = admin
                .disable_tenant(&tenant)
                .await
                .map_err(|e| e.to_string())?;
            let since = format_rfc3339(done.disabled_at);
            if done.already {
                eprintln!("{tenant} was already disabled (since {since})");
            } else {
                eprintln!("{tenant} disabled: its API keys are refused from now on");
            }
            if done.expired_sessions > 0 {
                eprintln!("{} pending session(s) expired", done.expired_sessions);
            }
            println!("disabled since {since}");
        }
        TenantCommand::Enable { tenant } => {
            let was_disabled = admin
                .enable_tenant(&tenant)
                .await
                .map_err(|e| e.to_string())?;
            if !was_disabled {
                eprintln!("{tenant} was not disabled");
            }
            println!("active");
        }
    }
    Ok(())
}

async fn key(admin: &Admin<'_>, clock: &dyn Clock, cmd: KeyCommand) -> Result<(), String> {
    match cmd {
        KeyCommand::Create { tenant, mode, rpm } => {
            let mode = match mode {
                ModeArg::Live => KeyMode::Live,
                ModeArg::Test => KeyMode::Test,
            };
            let issued = admin
                .create_key(&tenant, mode, rpm)
                .await
                .map_err(|e| e.to_string())?;
            eprintln!(
                "created {} ({} key, {} rpm) for {tenant}; it is shown only this once:",
                issued.record.id, issued.record.mode, issued.record.rpm
            );
            println!("{}", issued.secret.expose());
        }
        KeyCommand::List { tenant } => {
            let now = clock.now_unix();
            for k in admin
                .keys(tenant.as_deref())
                .await
                .map_err(|e| e.to_string())?
            {
                let status = if k.revoked_at.is_some() {
                    "revoked".to_owned()
                } else if let Some(end) = k.expires_at {
                    if now < end {
                        format!("grace-until {}", format_rfc3339(end))
                    } else {
                        "expired".to_owned()
                    }
                } else {
                    "active".to_owned()
                };
                println!(
                    "{}\t{}\tss_{}_…{}\t{} rpm\t{}",
                    k.id, k.tenant_id, k.mode, k.last4, k.rpm, status
                );
            }
        }
        KeyCommand::Revoke { key_id } => {
            admin.revoke_key(&key_id).await.map_err(|e| e.to_string())?;
            eprintln!("revoked {key_id}");
        }
        KeyCommand::Roll { key_id, grace } => {
            let issued = admin
                .roll_key(&key_id, grace)
                .await
                .map_err(|e| e.to_string())?;
            eprintln!(
                "rolled {key_id} into {}; the old key works for {}; the new key is shown only this once:",
                issued.record.id,
                humantime::format_duration(grace)
            );
            println!("{}", issued.secret.expose());
        }
    }
    Ok(())
}

async fn webhook(admin: &Admin<'_>, cmd: WebhookCommand) -> Result<(), String> {
    match cmd {
        WebhookCommand::Deliveries { session } => {
            let millis = |ms: i64| format_rfc3339(ms.div_euclid(1000));
            for d in admin
                .deliveries(&session)
                .await
                .map_err(|e| e.to_string())?
            {
                let when = match (d.status.as_str(), d.delivered_at) {
                    (_, Some(at)) => format!("delivered-at {}", millis(at)),
                    ("pending", None) => format!("next-attempt {}", millis(d.next_attempt_at)),
                    _ => "-".to_owned(),
                };
                println!(
                    "{}\t{}\t{}\tattempts={}\t{}\t{}\t{}",
                    d.id,
                    d.event_type,
                    d.status,
                    d.attempts,
                    d.last_status
                        .map_or("-".to_owned(), |s| format!("http={s}")),
                    d.last_error.as_deref().unwrap_or("-"),
                    when
                );
            }
        }
    }
    Ok(())
}

async fn domain(admin: &Admin<'_>, cmd: DomainCommand) -> Result<(), String> {
    match cmd {
        DomainCommand::Add { tenant, origin } => {
            let origin = admin
                .add_domain(&tenant, &origin)
                .await
                .map_err(|e| e.to_string())?;
            println!("{origin}");
        }
        DomainCommand::Remove { tenant, origin } => {
            if !admin
                .remove_domain(&tenant, &origin)
                .await
                .map_err(|e| e.to_string())?
            {
                return Err(format!("{origin} was not whitelisted for {tenant}"));
            }
        }
        DomainCommand::List { tenant } => {
            for d in admin.domains(&tenant).await.map_err(|e| e.to_string())? {
                println!("{}", d.origin);
            }
        }
    }
    Ok(())
}

/// Reads one line (the password) from stdin, without its line ending.
fn password_from_stdin() -> Result<zeroize::Zeroizing<String>, String> {
    use std::io::BufRead;
    let mut line = zeroize::Zeroizing::new(String::new());
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the password from stdin: {e}"))?;
    let trimmed = line.trim_end_matches(['\r', '\n']).len();
    line.truncate(trimmed);
    Ok(line)
}

async fn console_accounts(accounts: &Accounts<'_>, cmd: AdminCommand) -> Result<(), String> {
    match cmd {
        AdminCommand::Create { tenant, email, .. } => {
            let password = password_from_stdin()?;
            let account = accounts
                .create(&tenant, &email, password)
                .await
                .map_err(|e| e.to_string())?;
            eprintln!("created admin {} of {}", account.email, account.tenant_id);
            println!("{}", account.id);
        }
        AdminCommand::List { tenant } => {
            for a in accounts
                .list(tenant.as_deref())
                .await
                .map_err(|e| e.to_string())?
            {
                let lock = a.locked_until.map_or("-".to_owned(), |t| {
                    format!("locked-until {}", format_rfc3339(t))
                });
                println!(
                    "{}\t{}\t{}\t{}\tfailed={}\t{}",
                    a.email,
                    a.tenant_id,
                    a.id,
                    format_rfc3339(a.created_at),
                    a.failed_logins,
                    lock
                );
            }
        }
        AdminCommand::Remove { email } => {
            accounts.remove(&email).await.map_err(|e| e.to_string())?;
            eprintln!("removed admin {email}");
        }
        AdminCommand::Reset { email, .. } => {
            let password = password_from_stdin()?;
            accounts
                .reset(&email, password)
                .await
                .map_err(|e| e.to_string())?;
            eprintln!("new password set for {email}; its sessions were ended");
        }
    }
    Ok(())
}
