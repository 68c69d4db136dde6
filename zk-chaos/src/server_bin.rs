//! Finding the `zk-server` binary: `--server-bin`, else the sibling of this executable
//! in the same target dir, built first (same profile) when this program runs under
//! `cargo run` (so it is never stale) or when it is missing.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::ChaosError;

/// The workspace manifest this crate was built from.
fn workspace_manifest() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("Cargo.toml")
}

/// The server binary to run.
pub fn locate(explicit: Option<PathBuf>) -> Result<PathBuf, ChaosError> {
    if let Some(p) = explicit {
        return if p.is_file() {
            Ok(p)
        } else {
            Err(ChaosError::NoServer(p))
        };
    }
    let exe = std::env::current_exe().map_err(|e| ChaosError::io("finding this executable", e))?;
    let dir = exe
        .parent()
        .ok_or_else(|| ChaosError::Invalid(format!("{} has no directory", exe.display())))?;
    let candidate = dir.join(format!("zk-server{}", std::env::consts::EXE_SUFFIX));
    if std::env::var_os("CARGO").is_some() || !candidate.is_file() {
        build(dir)?;
    }
    if candidate.is_file() {
        Ok(candidate)
    } else {
        Err(ChaosError::NoServer(candidate))
    }
}

/// `cargo build -p zk-server` with the profile and target dir of `profile_dir`
/// (`<target>/<profile>`).
fn build(profile_dir: &Path) -> Result<(), ChaosError> {
    let profile = profile_dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("debug")
        .to_string();
    let target = profile_dir
        .parent()
        .ok_or_else(|| ChaosError::Invalid("no target dir".into()))?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "-p", "zk-server", "--manifest-path"])
        .arg(workspace_manifest())
        .arg("--target-dir")
        .arg(target);
    match profile.as_str() {
        "debug" => {}
        "release" => {
            cmd.arg("--release");
        }
        other => {
            cmd.args(["--profile", other]);
        }
    }
    eprintln!("zk-chaos: building zk-server ({profile})");
    let status = cmd
        .status()
        .map_err(|e| ChaosError::Build(format!("cannot run cargo: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(ChaosError::Build(format!(
            "cargo build -p zk-server: {status}"
        )))
    }
}
