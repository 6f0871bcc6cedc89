//! The Connect conformance server. Speaks the runner's protocol (a
//! size-delimited ServerCompatRequest on stdin, a ServerCompatResponse on
//! stdout), then serves `connectrpc.conformance.v1.ConformanceService`
//! through the same `shop_kit::RpcServer` assembly every shop service uses,
//! until SIGTERM. Logs go to stderr.

mod service;

use std::path::{Path, PathBuf};

use shop_conformance::{any, conformance, frames};
use shop_kit::{
    HttpConfig, Readiness, RpcServer, Shutdown,
    rpc::config::DEFAULT_MAX_REQUEST_BYTES,
    tls::{DevCa, ServerTlsConfig},
};

fn read_request() -> Result<conformance::ServerCompatRequest, Box<dyn std::error::Error>> {
    frames::read(std::io::stdin().lock())?.ok_or_else(|| "no ServerCompatRequest on stdin".into())
}

fn write_response(response: &conformance::ServerCompatResponse) -> std::io::Result<()> {
    frames::write(response, std::io::stdout().lock())
}

/// With `use_tls`, the kit's TLS flags as an operator would give them: the
/// runner's certificate and key (or a dev CA's, when it sends none) and,
/// for client certificates, the runner's client certificate as the CA.
/// Returns them and the PEM certificate clients are to trust.
fn tls(
    request: &conformance::ServerCompatRequest,
    dir: &Path,
) -> Result<(ServerTlsConfig, Vec<u8>), Box<dyn std::error::Error>> {
    if !request.use_tls {
        return Ok((ServerTlsConfig::default(), Vec::new()));
    }
    let (cert, key, trusted) = match &request.server_creds {
        Some(creds) if !creds.cert.is_empty() => {
            (creds.cert.clone(), creds.key.clone(), creds.cert.clone())
        }
        _ => {
            let ca = DevCa::new("conformance CA")?;
            let issued = ca.server("localhost", &[])?;
            (
                issued.cert.into_bytes(),
                issued.key.into_bytes(),
                ca.cert_pem().as_bytes().to_vec(),
            )
        }
    };
    let write = |name: &str, bytes: &[u8]| -> std::io::Result<PathBuf> {
        let path = dir.join(name);
        std::fs::write(&path, bytes)?;
        Ok(path)
    };
    let client_ca = if request.client_tls_cert.is_empty() {
        None
    } else {
        Some(write("client-ca.pem", &request.client_tls_cert)?)
    };
    let flags = ServerTlsConfig {
        tls_cert: Some(write("cert.pem", &cert)?),
        tls_key: Some(write("key.pem", &key)?),
        tls_client_ca: client_ca,
        ..ServerTlsConfig::default()
    };
    Ok((flags, trusted))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let _logs = shop_kit::observe::telemetry::init_tracing(
        &Default::default(),
        &Default::default(),
        &shop_kit::observe::metrics::Metrics::install(),
    )?;
    let request = read_request()?;
    let files = std::env::temp_dir().join(format!("shop-conformance-{}", std::process::id()));
    std::fs::create_dir_all(&files)?;
    let (tls, pem_cert) = tls(&request, &files)?;
    let http = HttpConfig {
        tls,
        cors_origins: vec!["*".to_owned()],
        max_request_bytes: match request.message_receive_limit {
            0 => DEFAULT_MAX_REQUEST_BYTES,
            limit => limit as usize,
        },
        shutdown_grace_secs: 3,
        ..HttpConfig::default()
    };
    tokio::runtime::Runtime::new()?.block_on(async move {
        let shutdown = Shutdown::on_signals(std::time::Duration::ZERO);
        let app = RpcServer::new(http.clone(), Readiness::always())
            // The suite's contract has no kit option or field, nor may it.
            .foreign_contract()
            .serve(service::conformance_service())
            .into_router(&shutdown)
            .await?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        write_response(&conformance::ServerCompatResponse {
            host: "127.0.0.1".to_owned(),
            port: u32::from(port),
            pem_cert,
        })?;
        let served = shop_kit::rpc::serve(listener, app, shutdown, http).await;
        let _ = std::fs::remove_dir_all(&files);
        served?;
        Ok(())
    })
}
