//! `zkcli`: the command-line client for zk-server.
//!
//! `main.rs` holds the clap definitions and the dispatch; each command lives in
//! `commands/`, and `output.rs` turns results into text or JSON. Errors are one line on
//! stderr with exit code 1; usage errors are clap's, with exit code 2.

mod commands;
mod output;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::output::Output;

/// Command-line client for zk-server.
#[derive(Debug, Parser)]
#[command(name = "zkcli", version, about, long_about = None)]
struct Cli {
    /// Servers to connect to, `HOST:PORT[,HOST:PORT...][/chroot]`.
    #[arg(
        short = 's',
        long = "server",
        env = "ZK_SERVER",
        default_value = "127.0.0.1:2181",
        value_name = "HOST:PORT[,...]"
    )]
    server: String,

    /// Seconds to wait for a connection before giving up.
    #[arg(long, default_value_t = 10.0, value_name = "SECS")]
    connect_timeout: f64,

    /// Authenticate first (ZooKeeper's addauth), e.g. `digest:user:password`; repeatable.
    #[arg(long, value_name = "SCHEME:AUTH")]
    auth: Vec<String>,

    /// Connect over TLS, trusting servers whose certificates chain to this CA (PEM).
    #[arg(long, env = "ZK_TLS_CA", value_name = "PEM")]
    tls_ca: Option<std::path::PathBuf>,

    /// Client certificate (PEM) for mutual TLS; the server knows the session as
    /// `x509:<subject DN>`. Needs --tls-key and --tls-ca.
    #[arg(long, env = "ZK_TLS_CERT", value_name = "PEM", requires_all = ["tls_key", "tls_ca"])]
    tls_cert: Option<std::path::PathBuf>,

    /// Private key (PEM) of --tls-cert.
    #[arg(long, env = "ZK_TLS_KEY", value_name = "PEM", requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,

    /// Name to verify in the servers' certificates [default: each server's host].
    #[arg(long, value_name = "NAME", requires = "tls_ca")]
    tls_server_name: Option<String>,

    /// Print results as JSON (one document per result, one per line).
    #[arg(long, global = true)]
    json: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a node and print its path (with the sequence suffix, if any).
    Create {
        /// Ephemeral: deleted when this session ends (i.e. when zkcli exits).
        #[arg(short = 'e', long, conflicts_with_all = ["container", "ttl"])]
        ephemeral: bool,
        /// Sequential: append a monotonically increasing 10-digit suffix.
        #[arg(short = 's', long, conflicts_with = "container")]
        sequential: bool,
        /// Container: removed by the server once its last child is gone.
        #[arg(short = 'c', long, conflicts_with = "ttl")]
        container: bool,
        /// Persistent node with a TTL in milliseconds (removed once childless and
        /// unmodified for that long).
        #[arg(short = 't', long, value_name = "TTL_MS", value_parser = clap::value_parser!(u64).range(1..))]
        ttl: Option<u64>,
        /// The node's ACL in zkCli's syntax, `scheme:id:perms[,...]` (perms from
        /// cdrwa), e.g. `digest:bob:HASH=:cdrwa,world:anyone:r` [default: world:anyone:cdrwa]
        #[arg(long, value_name = "ACL")]
        acl: Option<String>,
        /// The path of the node.
        path: String,
        /// The data (UTF-8 text); empty if omitted.
        data: Option<String>,
    },
    /// Print a node's ACL (zkCli's layout); digests are redacted without ADMIN.
    Getacl { path: String },
    /// Replace a node's ACL (zkCli's syntax `scheme:id:perms[,...]`).
    Setacl {
        /// Only if the node's ACL version (aversion) is this (-1: any version).
        #[arg(short = 'v', long, allow_negative_numbers = true)]
        version: Option<i32>,
        path: String,
        acl: String,
    },
    /// Print a node's data (text, or escaped bytes if it is binary).
    Get { path: String },
    /// Replace a node's data.
    Set {
        /// Only if the node's data version is this (-1: any version).
        #[arg(short = 'v', long, allow_negative_numbers = true)]
        version: Option<i32>,
        path: String,
        data: String,
    },
    /// Print a node's metadata (zkCli's layout).
    Stat { path: String },
    /// List a node's children, one per line.
    Ls {
        /// Recursively: the node and all its descendants, as full paths.
        #[arg(short = 'R', long)]
        recursive: bool,
        path: String,
    },
    /// Delete a node (it must have no children).
    Delete {
        /// Only if the node's data version is this (-1: any version).
        #[arg(short = 'v', long, allow_negative_numbers = true)]
        version: Option<i32>,
        path: String,
    },
    /// Delete a node and all its descendants, children first.
    Deleteall { path: String },
    /// Make the server catch up with the leader before later reads.
    Sync { path: String },
    /// Print the events of a persistent watch, one line each, until N events or Ctrl-C.
    Watch {
        /// Watch the whole subtree, not just the node.
        #[arg(short = 'r', long)]
        recursive: bool,
        /// Exit after this many node events.
        #[arg(long, value_name = "N")]
        count: Option<u64>,
        path: String,
    },
    /// Ensemble administration: status and membership changes.
    #[command(subcommand)]
    Cluster(ClusterCommand),
}

/// `zkcli cluster ...`
#[derive(Debug, Subcommand)]
enum ClusterCommand {
    /// Each member's id, address, role (leader/follower/observer), applied zxid and lag.
    Status,
    /// Add a voting member (or promote an observer): server ID at peer address HOST:PORT.
    AddVoter { id: u64, peer_addr: String },
    /// Add an observer (serves reads, sessions and watches; never votes).
    AddObserver { id: u64, peer_addr: String },
    /// Remove a member (voter or observer).
    Remove { id: u64 },
}

/// A failed command: one line for stderr.
#[derive(Debug)]
pub struct CliError(pub String);

impl From<zk_client::Error> for CliError {
    fn from(e: zk_client::Error) -> Self {
        CliError(e.to_string())
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

pub type CmdResult = Result<(), CliError>;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("Error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The TLS options from `--tls-*`, if TLS is asked for.
fn tls_options(cli: &Cli) -> Result<Option<zk_client::TlsOptions>, CliError> {
    let Some(ca) = &cli.tls_ca else {
        return Ok(None);
    };
    let mut tls = zk_client::TlsOptions::from_ca_file(ca).map_err(|e| CliError(e.to_string()))?;
    if let (Some(cert), Some(key)) = (&cli.tls_cert, &cli.tls_key) {
        tls = tls
            .client_cert_files(cert, key)
            .map_err(|e| CliError(e.to_string()))?;
    }
    if let Some(name) = &cli.tls_server_name {
        tls = tls.server_name(name.clone());
    }
    Ok(Some(tls))
}

async fn run(cli: Cli) -> CmdResult {
    let out = Output::new(cli.json);
    let timeout = Duration::try_from_secs_f64(cli.connect_timeout)
        .map_err(|_| CliError(format!("bad --connect-timeout {}", cli.connect_timeout)))?;
    let tls = tls_options(&cli)?;
    let client = commands::connect(&cli.server, timeout, tls).await?;
    let result = async {
        for a in &cli.auth {
            let (scheme, auth) = a.split_once(':').ok_or_else(|| {
                CliError(format!(
                    "bad --auth {a:?}: expected SCHEME:AUTH (digest:user:password)"
                ))
            })?;
            client
                .add_auth(scheme, auth.as_bytes().to_vec())
                .await
                .map_err(|e| CliError(format!("--auth {scheme}: {e}")))?;
        }
        dispatch(&client, cli.command, &out).await
    }
    .await;
    // Closing ends the session now, so ephemeral nodes go away as zkcli exits. It
    // cannot fail in a way worth reporting after the command's own result.
    let _ = client.close().await;
    result
}

async fn dispatch(client: &zk_client::Client, command: Command, out: &Output) -> CmdResult {
    use commands::*;
    match command {
        Command::Create {
            ephemeral,
            sequential,
            container,
            ttl,
            acl,
            path,
            data,
        } => {
            let flags = create::Flags {
                ephemeral,
                sequential,
                container,
                ttl_ms: ttl,
            };
            let data = data.unwrap_or_default();
            create::run(client, out, &path, data, flags, acl.as_deref()).await
        }
        Command::Getacl { path } => acl::get(client, out, &path).await,
        Command::Setacl { version, path, acl } => acl::set(client, out, &path, &acl, version).await,
        Command::Get { path } => read::get(client, out, &path).await,
        Command::Set {
            version,
            path,
            data,
        } => write::set(client, out, &path, data, version).await,
        Command::Stat { path } => read::stat(client, out, &path).await,
        Command::Ls { recursive, path } => ls::run(client, out, &path, recursive).await,
        Command::Delete { version, path } => write::delete(client, out, &path, version).await,
        Command::Deleteall { path } => write::delete_all(client, out, &path).await,
        Command::Sync { path } => write::sync(client, out, &path).await,
        Command::Watch {
            recursive,
            count,
            path,
        } => watch::run(client, out, &path, recursive, count).await,
        Command::Cluster(c) => match c {
            ClusterCommand::Status => cluster::status(client, out).await,
            ClusterCommand::AddVoter { id, peer_addr } => {
                cluster::change(client, out, cluster::Change::AddVoter(id, peer_addr)).await
            }
            ClusterCommand::AddObserver { id, peer_addr } => {
                cluster::change(client, out, cluster::Change::AddObserver(id, peer_addr)).await
            }
            ClusterCommand::Remove { id } => {
                cluster::change(client, out, cluster::Change::Remove(id)).await
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn json_is_accepted_before_and_after_the_command() {
        let a = Cli::try_parse_from(["zkcli", "--json", "get", "/a"]).expect("parses");
        let b = Cli::try_parse_from(["zkcli", "get", "/a", "--json"]).expect("parses");
        assert!(a.json && b.json);
    }

    #[test]
    fn invalid_create_combinations_are_usage_errors() {
        for args in [
            &["zkcli", "create", "-e", "-t", "100", "/a"][..],
            &["zkcli", "create", "-c", "-s", "/a"],
            &["zkcli", "create", "-c", "-e", "/a"],
            &["zkcli", "create", "-c", "-t", "100", "/a"],
            &["zkcli", "create", "-t", "0", "/a"],
        ] {
            let e = Cli::try_parse_from(args).expect_err("usage error");
            assert_eq!(e.exit_code(), 2, "{args:?}");
        }
        for args in [
            &["zkcli", "create", "-e", "-s", "/a", "x"][..],
            &["zkcli", "create", "-s", "-t", "100", "/a"],
            &["zkcli", "set", "-v", "-1", "/a", "x"],
        ] {
            Cli::try_parse_from(args).expect("valid");
        }
    }
}
