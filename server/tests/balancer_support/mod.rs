//! A real HAProxy (Debian's `haproxy`, installed by `server/install-test-deps.sh`) in
//! front of server instances on loopback, for the load balancer and trusted proxy tests:
//! its configuration is generated into a temp directory, it runs in the foreground and
//! is stopped by its PID.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free loopback port (bound and released: the caller binds it again at once).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The response header in which the balancer names the server that answered (`s0`,
/// `s1`, … in the order of the backends given to [`Haproxy::start`]).
pub const BACKEND_HEADER: &str = "x-balancer-server";

/// HAProxy in the foreground on a generated configuration; killed by PID on drop.
pub struct Haproxy {
    child: Child,
    port: u16,
}

impl Haproxy {
    /// Balances round-robin over `backends` (ports on 127.0.0.1), each health-checked
    /// on `/healthz` every 200 ms; each answer names its server in [`BACKEND_HEADER`].
    pub fn start(dir: &Path, backends: &[u16]) -> Self {
        Self::start_with(dir, backends, "")
    }

    /// [`Haproxy::start`] with `defaults` lines added to the `defaults` section (e.g.
    /// `"    option forwardfor\n"`).
    pub fn start_with(dir: &Path, backends: &[u16], defaults: &str) -> Self {
        Self::start_configured(dir, backends, defaults, "")
    }

    /// [`Haproxy::start_with`] with `server_options` added to each `server` line (e.g.
    /// `"send-proxy-v2"`).
    pub fn start_configured(
        dir: &Path,
        backends: &[u16],
        defaults: &str,
        server_options: &str,
    ) -> Self {
        let port = free_port();
        let servers: String = backends
            .iter()
            .enumerate()
            .map(|(i, p)| {
                format!(
                    "    server s{i} 127.0.0.1:{p} check inter 200ms fall 1 rise 1 {server_options}\n"
                )
            })
            .collect();
        // Retries only where no request reached a server (connection refused): a
        // request that may have been handled is never sent twice by the balancer.
        let config = format!(
            "global\n    maxconn 512\n\
             defaults\n    mode http\n    timeout connect 1s\n    timeout client 30s\n    timeout server 30s\n\
             \x20   retries 3\n    option redispatch\n    retry-on conn-failure\n{defaults}\
             frontend api\n    bind 127.0.0.1:{port}\n    default_backend servers\n\
             backend servers\n    balance roundrobin\n    option httpchk GET /healthz\n\
             \x20   http-response set-header {BACKEND_HEADER} %[srv_name]\n{servers}"
        );
        let path = dir.join("haproxy.cfg");
        std::fs::write(&path, config).unwrap();
        let check = Command::new("haproxy")
            .arg("-c")
            .arg("-f")
            .arg(&path)
            .output()
            .expect("haproxy must be installed (server/install-test-deps.sh)");
        assert!(
            check.status.success(),
            "{}",
            String::from_utf8_lossy(&check.stderr)
        );
        let child = Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(dir.join("haproxy.log")).unwrap(),
            ))
            .spawn()
            .unwrap();
        let balancer = Self { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "haproxy did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        balancer
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Waits until the balancer routes to a healthy server (its first health checks
    /// passed): `/healthz` answers 200 through it.
    pub fn wait_until_serving(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let out = Command::new("curl")
                .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
                .arg(format!("{}/healthz", self.base()))
                .output()
                .unwrap();
            if out.stdout == b"200" {
                return;
            }
            assert!(Instant::now() < deadline, "haproxy routes to no server");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
