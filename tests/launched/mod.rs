//! The `shop` binary as a child process on loopback, as a person runs it:
//! its own temporary data folder, every port moved to a free one, a clean
//! environment. Killed when dropped.

#![allow(dead_code)] // each test file uses part of it

use std::{
    net::{SocketAddr, TcpListener},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

pub const SERVICES: [&str; 5] = ["users", "catalog", "orders", "payments", "gateway"];

pub struct Shop {
    child: Child,
    pub data: tempfile::TempDir,
    pub web_dir: PathBuf,
    ports: Vec<(&'static str, u16)>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Shop {
    /// The whole shop (`shop` with no subcommand) with `args`.
    pub async fn whole(args: &[&str]) -> Self {
        Self::launch(&[], args, &SERVICES).await
    }

    /// One service alone (`shop serve <service>`) with `args`.
    pub async fn serve(service: &'static str, args: &[&str]) -> Self {
        Self::launch(&["serve", service], args, &[service]).await
    }

    async fn launch(command: &[&str], args: &[&str], services: &[&'static str]) -> Self {
        let data = tempfile::tempdir().expect("temp dir");
        let web_dir = data.path().join("web");
        std::fs::create_dir_all(&web_dir).expect("web dir");
        std::fs::write(
            web_dir.join("index.html"),
            "<!doctype html><title>shop</title><p>test page</p>",
        )
        .expect("index.html");
        let ports: Vec<(&'static str, u16)> = SERVICES.iter().map(|s| (*s, free_port())).collect();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_shop"));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", "warn")
            .args(command)
            .arg("--data-dir")
            .arg(data.path().join("data"))
            .arg("--web-dir")
            .arg(&web_dir);
        for (service, port) in &ports {
            cmd.arg(format!("--{service}-port")).arg(port.to_string());
        }
        let child = cmd
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn shop");
        let mut shop = Self {
            child,
            data,
            web_dir,
            ports,
        };
        for service in services {
            shop.wait_ready(service).await;
        }
        shop
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
        format!("http://{}", self.addr(service))
    }

    async fn wait_ready(&mut self, service: &str) {
        let url = format!("{}/readyz", self.url(service));
        let client = reqwest::Client::new();
        for _ in 0..600 {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("shop exited before {service} was ready: {status}");
            }
            if let Ok(response) = client.get(&url).send().await
                && response.status().is_success()
            {
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
}

impl Drop for Shop {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
