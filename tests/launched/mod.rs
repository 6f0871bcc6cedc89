//! The `shop` binary as a child process on loopback, as a person runs it:
//! its own temporary data folder, every port moved to a free one, a clean
//! environment. Killed when dropped.

#![allow(dead_code)] // each test file uses part of it

use std::sync::atomic::{AtomicU32, Ordering};
use std::{
    net::{SocketAddr, TcpListener},
    path::PathBuf,
    process::{Child, Command, Stdio},
    thread::JoinHandle,
    time::Duration,
};

/// Every service the whole shop starts: one per package of the contract
/// (the first five, then any `just new-service` added).
pub const SERVICES: &[&str] = shop_proto::identity::SERVICES;

pub struct Shop {
    child: Child,
    pub data: tempfile::TempDir,
    pub web_dir: PathBuf,
    ports: Vec<(&'static str, u16)>,
    /// The command line it was started with, to start it again.
    command: Vec<String>,
    services: Vec<&'static str>,
    /// The CA of its certificates, when it serves TLS (`--tls-dir`).
    pub ca: Option<PathBuf>,
    /// Variables set for it beyond the clean environment.
    env: Vec<(String, String)>,
    log: Log,
    /// What it has logged so far, when its log is kept.
    logged: Option<JoinHandle<String>>,
}

/// Where the shop's log goes.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
enum Log {
    /// The test's output, warnings only.
    #[default]
    Shown,
    /// Read into [`Shop::stop_for_log`]'s answer, at the shop's own default
    /// filter (so `--log-rpcs` works).
    Kept,
}

/// How a shop is started.
#[derive(Default)]
struct Options {
    /// The CA of its certificates, when it serves TLS.
    ca: Option<PathBuf>,
    /// Variables set for it beyond the clean environment.
    env: Vec<(String, String)>,
    log: Log,
    /// The port of the one service started (else a free one).
    port: Option<u16>,
    wait: Wait,
}

/// What starting a shop waits for.
#[derive(Clone, Copy, Default)]
enum Wait {
    /// Every service started says it is ready.
    #[default]
    Ready,
    /// Every service started answers `/readyz`, ready or not, once it has
    /// opened (no longer "starting").
    Answering,
    /// Every service started answers `/readyz` at all, starting included.
    Bound,
}

/// A port nothing listens on (at the moment it is asked for).
///
/// Found below the kernel's ephemeral range (32768-60999 by default):
/// there, a port free now may be the local port of any test's outgoing
/// connection by the time the shop binds it ("Address already in use", a
/// flake CI met). Ports here are handed out once per test process, from an
/// offset of its own.
pub fn free_port() -> u16 {
    const FIRST: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let offset = std::process::id().wrapping_mul(97) % SPAN;
    for _ in 0..SPAN {
        let candidate = FIRST + (offset + NEXT.fetch_add(1, Ordering::Relaxed)) % SPAN;
        let port = u16::try_from(candidate).expect("below 32000");
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {FIRST}..{}", FIRST + SPAN)
}

impl Shop {
    /// The whole shop (`shop` with no subcommand) with `args`.
    pub async fn whole(args: &[&str]) -> Self {
        Self::launch(&[], args, SERVICES).await
    }

    /// One service alone (`shop serve <service>`) with `args`.
    pub async fn serve(service: &'static str, args: &[&str]) -> Self {
        Self::launch(&["serve", service], args, &[service]).await
    }

    /// One service alone with `args` and the variables `env`, its log kept
    /// for [`Self::stop_for_log`].
    pub async fn serve_logged(service: &'static str, args: &[&str], env: &[(&str, &str)]) -> Self {
        let env = env
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        let options = Options {
            env,
            log: Log::Kept,
            ..Options::default()
        };
        Self::launch_with(&["serve", service], args, &[service], options).await
    }

    /// The whole shop with `args` and the variables `env`, its log kept for
    /// [`Self::stop_for_log`].
    pub async fn whole_logged(args: &[&str], env: &[(&str, &str)]) -> Self {
        let env = env
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        let options = Options {
            env,
            log: Log::Kept,
            ..Options::default()
        };
        Self::launch_with(&[], args, SERVICES, options).await
    }

    /// One service alone with `args`, returned once its port answers, as
    /// a service starting or later.
    pub async fn serve_bound(service: &'static str, args: &[&str]) -> Self {
        let options = Options {
            wait: Wait::Bound,
            ..Options::default()
        };
        Self::launch_with(&["serve", service], args, &[service], options).await
    }

    /// The whole shop on TLS from the certificates in `dir` (`shop certs`).
    pub async fn whole_tls(dir: &std::path::Path, args: &[&str]) -> Self {
        let mut args: Vec<&str> = args.to_vec();
        let dir_arg = dir.display().to_string();
        args.extend(["--tls-dir", &dir_arg]);
        let options = Options {
            ca: Some(dir.join("ca.pem")),
            ..Options::default()
        };
        Self::launch_with(&[], &args, SERVICES, options).await
    }

    /// One service alone on TLS from `dir` (`shop serve <service>
    /// --tls-dir`) on `port`, with `args`; returned once it answers
    /// `/readyz`, ready or not.
    pub async fn serve_tls_answering(
        service: &'static str,
        dir: &std::path::Path,
        port: u16,
        args: &[&str],
    ) -> Self {
        let mut args: Vec<&str> = args.to_vec();
        let dir_arg = dir.display().to_string();
        args.extend(["--tls-dir", &dir_arg]);
        let options = Options {
            ca: Some(dir.join("ca.pem")),
            port: Some(port),
            wait: Wait::Answering,
            ..Options::default()
        };
        Self::launch_with(&["serve", service], &args, &[service], options).await
    }

    async fn launch(command: &[&str], args: &[&str], services: &[&'static str]) -> Self {
        Self::launch_with(command, args, services, Options::default()).await
    }

    async fn launch_with(
        command: &[&str],
        args: &[&str],
        services: &[&'static str],
        options: Options,
    ) -> Self {
        let Options {
            ca,
            env,
            log,
            port,
            wait,
        } = options;
        let data = tempfile::tempdir().expect("temp dir");
        let web_dir = data.path().join("web");
        std::fs::create_dir_all(&web_dir).expect("web dir");
        std::fs::write(
            web_dir.join("index.html"),
            "<!doctype html><title>shop</title><p>test page</p>",
        )
        .expect("index.html");
        let ports: Vec<(&'static str, u16)> = SERVICES
            .iter()
            .map(|s| match port {
                Some(port) if services == [*s] => (*s, port),
                _ => (*s, free_port()),
            })
            .collect();
        let mut command: Vec<String> = command.iter().map(|a| (*a).to_owned()).collect();
        command.push("--data-dir".to_owned());
        command.push(data.path().join("data").display().to_string());
        // Each service takes its own flags only: the ports of those run.
        if services.contains(&"gateway") {
            command.push("--web-dir".to_owned());
            command.push(web_dir.display().to_string());
        }
        for (service, port) in ports.iter().filter(|(s, _)| services.contains(s)) {
            command.push(format!("--{service}-port"));
            command.push(port.to_string());
        }
        command.extend(args.iter().map(|a| (*a).to_owned()));
        let (child, logged) = spawn(&command, &env, log);
        let mut shop = Self {
            child,
            data,
            web_dir,
            ports,
            command,
            services: services.to_vec(),
            ca,
            env,
            log,
            logged,
        };
        match wait {
            Wait::Ready => shop.wait_all_ready().await,
            Wait::Answering | Wait::Bound => {
                for service in shop.services.clone() {
                    loop {
                        let (status, said) = shop.readyz(service).await;
                        let starting = said.contains(&format!("{service} is starting"));
                        if status != 0 && (matches!(wait, Wait::Bound) || !starting) {
                            break;
                        }
                        if let Ok(Some(status)) = shop.child.try_wait() {
                            panic!("shop exited before {service} answered: {status}");
                        }
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
        }
        shop
    }

    /// `/readyz` of `service`: its HTTP status (0: no answer) and what it
    /// says.
    pub async fn readyz(&self, service: &str) -> (u16, String) {
        let output = self
            .curl()
            .args([
                "-w",
                "\n%{http_code}",
                &format!("{}/readyz", self.url(service)),
            ])
            .stderr(std::process::Stdio::null())
            .output()
            .await
            .expect("curl");
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let (said, status) = text.rsplit_once('\n').unwrap_or(("", "0"));
        (status.parse().unwrap_or(0), said.trim().to_owned())
    }

    async fn wait_all_ready(&mut self) {
        for service in self.services.clone() {
            self.wait_ready(service).await;
        }
    }

    /// Sends SIGTERM and waits for the process to exit: how it exited and
    /// how long it took.
    pub fn terminate(&mut self) -> (std::process::ExitStatus, Duration) {
        let asked = std::time::Instant::now();
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(sent.success(), "kill -TERM failed");
        let status = self.child.wait().expect("wait");
        (status, asked.elapsed())
    }

    /// Stops the shop (SIGTERM, so its log is flushed) and returns what it
    /// logged since it last started (see [`Self::serve_logged`]).
    pub fn stop_for_log(mut self) -> String {
        self.terminate();
        self.logged
            .take()
            .expect("a shop started with its log kept")
            .join()
            .expect("the log reader")
    }

    /// Starts the shop again, as it was started, on the same data and ports.
    pub async fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        (self.child, self.logged) = spawn(&self.command, &self.env, self.log);
        self.wait_all_ready().await;
    }

    pub fn addr(&self, service: &str) -> SocketAddr {
        let port = self
            .ports
            .iter()
            .find(|(s, _)| *s == service)
            .map(|(_, p)| *p)
            .expect("a known service");
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    pub fn url(&self, service: &str) -> String {
        match self.ca {
            Some(_) => format!("https://localhost:{}", self.addr(service).port()),
            None => format!("http://{}", self.addr(service)),
        }
    }

    /// `curl` trusting the shop's CA (with TLS), quiet but for its errors.
    pub fn curl(&self) -> tokio::process::Command {
        let mut curl = tokio::process::Command::new("curl");
        curl.args(["-sS", "--max-time", "10"]);
        if let Some(ca) = &self.ca {
            curl.arg("--cacert").arg(ca);
        }
        curl
    }

    async fn wait_ready(&mut self, service: &str) {
        let url = format!("{}/readyz", self.url(service));
        let client = reqwest::Client::new();
        for _ in 0..600 {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("shop exited before {service} was ready: {status}");
            }
            let ready = match self.ca {
                Some(_) => self
                    .curl()
                    .args(["-f", "-o", "/dev/null", &url])
                    .stderr(std::process::Stdio::null())
                    .status()
                    .await
                    .is_ok_and(|s| s.success()),
                None => client
                    .get(&url)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success()),
            };
            if ready {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{service} did not get ready at {url}");
    }

    /// Whether `service` still answers its liveness probe.
    pub async fn alive(&self, service: &str) -> bool {
        reqwest::Client::new()
            .get(format!("{}/healthz", self.url(service)))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    }

    /// The process's resident memory, in MiB.
    pub fn rss_mib(&self) -> f64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).expect("status");
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map(|kib| kib / 1024.0)
            .expect("VmRSS")
    }

    /// A Connect JSON call: status and body.
    pub async fn call(
        &self,
        service: &str,
        path: &str,
        body: &serde_json::Value,
    ) -> (u16, serde_json::Value) {
        shop_kit::testing::call_json(&format!("{}{path}", self.url(service)), None, body).await
    }

    /// Signs a new customer up at this shop's users service: their access
    /// token.
    pub async fn signed_up(&self, email: &str) -> String {
        let (status, signed_up) = self
            .call(
                "users",
                "/shop.users.v1.UserService/SignUp",
                &serde_json::json!({"email": email, "password": "correct horse 9", "displayName": "A customer"}),
            )
            .await;
        assert_eq!(status, 200, "{signed_up}");
        signed_up["session"]["accessToken"]
            .as_str()
            .expect("token")
            .to_owned()
    }
}

/// Starts the shop; a kept log is read as it is written (a pipe nobody
/// reads would fill), by a thread that answers it when the shop exits.
fn spawn(
    command: &[String],
    env: &[(String, String)],
    log: Log,
) -> (Child, Option<JoinHandle<String>>) {
    let mut shop = Command::new(env!("CARGO_BIN_EXE_shop"));
    shop.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        // The test's own OpenTelemetry settings (e.g. a short batch delay).
        .envs(std::env::vars().filter(|(name, _)| name.starts_with("OTEL_")))
        // No dashboard unless a test asks (its port is one for all, and
        // it keeps traces in memory).
        .env("SHOP_DASHBOARD", "off")
        .envs(env.iter().map(|(name, value)| (name, value)))
        .args(command)
        .stdout(Stdio::null());
    match log {
        Log::Shown => shop.env("RUST_LOG", "warn").stderr(Stdio::inherit()),
        Log::Kept => shop.stderr(Stdio::piped()),
    };
    let mut child = shop.spawn().expect("spawn shop");
    let logged = child.stderr.take().map(|mut stderr| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = std::io::Read::read_to_end(&mut stderr, &mut bytes);
            String::from_utf8_lossy(&bytes).into_owned()
        })
    });
    (child, logged)
}

impl Drop for Shop {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
