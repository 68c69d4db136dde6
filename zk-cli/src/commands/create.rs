//! `create [-e] [-s] [-c] [-t TTL_MS] PATH [DATA]`

use std::time::Duration;

use serde_json::json;
use zk_client::{Client, CreateMode, CreateOptions};

use crate::output::{stat_json, Output};
use crate::{CliError, CmdResult};

/// The mode flags as given; clap already rejects the invalid combinations.
#[derive(Debug, Clone, Copy, Default)]
pub struct Flags {
    pub ephemeral: bool,
    pub sequential: bool,
    pub container: bool,
    pub ttl_ms: Option<u64>,
}

impl Flags {
    /// The create options the flags mean, like zkCli's: -e -s is ephemeral sequential,
    /// -s -t is persistent sequential with a TTL.
    pub fn options(self) -> Result<CreateOptions, CliError> {
        let mode = match (self.ephemeral, self.container, self.ttl_ms.is_some()) {
            (false, false, false) => CreateMode::Persistent,
            (true, false, false) => CreateMode::Ephemeral,
            (false, true, false) if !self.sequential => CreateMode::Container,
            (false, false, true) => CreateMode::PersistentWithTtl,
            _ => {
                return Err(CliError(
                    "invalid combination of create flags (-e, -c and -t exclude each other; -c excludes -s)"
                        .into(),
                ))
            }
        };
        let mut options = CreateOptions::new(mode).sequential(self.sequential);
        if let Some(ms) = self.ttl_ms {
            options = options.with_ttl(Duration::from_millis(ms));
        }
        Ok(options)
    }
}

pub async fn run(
    client: &Client,
    out: &Output,
    path: &str,
    data: String,
    flags: Flags,
    acl: Option<&str>,
) -> CmdResult {
    let mut options = flags.options()?;
    if let Some(acl) = acl {
        options.acl = crate::commands::acl::parse_list(acl)?;
    }
    let (created, stat) = client.create(path, data, &options).await?;
    out.emit(
        || Some(created.clone()),
        || json!({ "path": created, "stat": stat_json(&stat) }),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(flags: Flags) -> CreateMode {
        flags.options().expect("valid").mode
    }

    #[test]
    fn flags_map_to_modes() {
        let f = Flags::default();
        assert_eq!(mode(f), CreateMode::Persistent);
        assert_eq!(
            mode(Flags {
                sequential: true,
                ..f
            }),
            CreateMode::PersistentSequential
        );
        assert_eq!(
            mode(Flags {
                ephemeral: true,
                ..f
            }),
            CreateMode::Ephemeral
        );
        assert_eq!(
            mode(Flags {
                ephemeral: true,
                sequential: true,
                ..f
            }),
            CreateMode::EphemeralSequential
        );
        assert_eq!(
            mode(Flags {
                container: true,
                ..f
            }),
            CreateMode::Container
        );
        let ttl = Flags {
            ttl_ms: Some(500),
            ..f
        };
        assert_eq!(mode(ttl), CreateMode::PersistentWithTtl);
        assert_eq!(
            ttl.options().expect("valid").ttl,
            Some(Duration::from_millis(500))
        );
        assert_eq!(
            mode(Flags {
                sequential: true,
                ..ttl
            }),
            CreateMode::PersistentSequentialWithTtl
        );
        assert!(Flags {
            ephemeral: true,
            ..ttl
        }
        .options()
        .is_err());
        assert!(Flags {
            container: true,
            sequential: true,
            ..f
        }
        .options()
        .is_err());
    }
}
