//! `zk-server`: runs one node. See `zk-server --help`.

use clap::Parser;
use tracing_subscriber::EnvFilter;

/// mimalloc instead of glibc's malloc: allocation and free were ~15 % of the server's
/// instructions per request under glibc (callgrind; docs/benchmarks.md, change log).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("info,openraft=error")),
        )
        .init();
    let mut args = zk_server::config::Args::parse();
    let result = match args.command.take() {
        Some(zk_server::config::SubCommand::DevCluster {
            size,
            observers,
            base_port,
            data_dir,
        }) => match args.into_config() {
            Ok(template) => dev_cluster(template, size, observers, base_port, &data_dir).await,
            Err(e) => Err(e),
        },
        None => match args.into_config() {
            Ok(config) => zk_server::run(config, shutdown_signal()).await,
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `zk-server dev-cluster`: an ensemble of separate nodes in this process.
async fn dev_cluster(
    template: zk_server::Config,
    size: u64,
    observers: u64,
    base_port: u16,
    data_dir: &std::path::Path,
) -> Result<(), zk_server::ServerError> {
    if size == 0 {
        return Err(zk_server::ServerError::Config {
            message: "dev-cluster: --size must be at least 1".into(),
        });
    }
    let port = |offset: u64| -> Result<u16, zk_server::ServerError> {
        u16::try_from(u64::from(base_port) + offset).map_err(|_| zk_server::ServerError::Config {
            message: format!("dev-cluster: --base-port {base_port} leaves no room for the ports"),
        })
    };
    let mut ports = Vec::new();
    for id in 1..=size + observers {
        ports.push((port(id - 1)?, port(100 + id - 1)?, port(200 + id - 1)?));
    }
    let configs = zk_server::ensemble::local_ensemble(&template, size, observers, data_dir, |id| {
        let (c, p, a) = ports[(id - 1) as usize];
        zk_server::ensemble::NodePorts {
            client: format!("127.0.0.1:{c}"),
            peer: format!("127.0.0.1:{p}"),
            admin: format!("127.0.0.1:{a}"),
        }
    });
    let mut handles = Vec::new();
    for c in &configs {
        handles.push(zk_server::start(c.clone()).await?);
    }
    println!("{}", zk_server::ensemble::connect_string(&configs));
    tracing::info!(
        voters = size,
        observers,
        "dev cluster running; Ctrl-C stops it"
    );
    shutdown_signal().await;
    for h in handles {
        h.shutdown().await;
    }
    Ok(())
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
