//! `getacl PATH`, `setacl [-v VERSION] PATH ACL`, and parsing zkCli's ACL syntax
//! (`scheme:id:perms[,scheme:id:perms...]`, perms letters from `cdrwa`).

use serde_json::json;
use zk_client::{Acl, Client};

use crate::output::{stat_json, stat_text, Output};
use crate::{CliError, CmdResult};

/// Parses a comma-separated ACL list: `world:anyone:cdrwa,digest:bob:HASH=:r`. A
/// piece that does not start with a scheme (`world:`, `auth:`, `digest:`, `ip:`,
/// `x509:`, `super:`) continues the previous entry, so x509 subject DNs keep their
/// commas: `x509:CN=app,O=Example:cdrwa`.
pub fn parse_list(s: &str) -> Result<Vec<Acl>, CliError> {
    const SCHEMES: [&str; 6] = ["world:", "auth:", "digest:", "ip:", "x509:", "super:"];
    let mut entries: Vec<String> = Vec::new();
    for piece in s.split(',') {
        let starts_entry = SCHEMES.iter().any(|p| piece.trim_start().starts_with(p));
        match entries.last_mut() {
            Some(last) if !starts_entry => {
                last.push(',');
                last.push_str(piece);
            }
            _ => entries.push(piece.to_string()),
        }
    }
    entries
        .iter()
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            Acl::parse(e.trim()).ok_or_else(|| {
                CliError(format!(
                    "bad ACL entry {e:?}: expected scheme:id:perms with perms from cdrwa"
                ))
            })
        })
        .collect()
}

fn acl_json(acl: &[Acl]) -> serde_json::Value {
    acl.iter()
        .map(|a| json!({ "scheme": a.scheme, "id": a.id, "perms": a.perms.0, "text": a.to_string() }))
        .collect()
}

/// zkCli's layout: `'scheme,'id` then `: perms`, per entry.
pub async fn get(client: &Client, out: &Output, path: &str) -> CmdResult {
    let (acl, stat) = client.get_acl(path).await?;
    out.emit(
        || {
            let lines: Vec<String> = acl
                .iter()
                .map(|a| {
                    let text = a.to_string();
                    let perms = text.rsplit(':').next().unwrap_or("").to_string();
                    format!("'{},'{}\n: {perms}", a.scheme, a.id)
                })
                .collect();
            Some(lines.join("\n"))
        },
        || json!({ "path": path, "acl": acl_json(&acl), "stat": stat_json(&stat) }),
    );
    Ok(())
}

pub async fn set(
    client: &Client,
    out: &Output,
    path: &str,
    acl: &str,
    version: Option<i32>,
) -> CmdResult {
    let acl = parse_list(acl)?;
    let version = version.filter(|v| *v != -1);
    let stat = client.set_acl(path, &acl, version).await?;
    out.emit(
        || Some(stat_text(&stat)),
        || json!({ "path": path, "stat": stat_json(&stat) }),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use zk_client::Perms;

    #[test]
    fn x509_subjects_keep_their_commas() {
        let acl = parse_list("x509:CN=app,O=Example, Inc.:cdrwa,world:anyone:r").expect("parses");
        assert_eq!(
            acl,
            vec![
                Acl::new(Perms::ALL, "x509", "CN=app,O=Example, Inc."),
                Acl::new(Perms::READ, "world", "anyone"),
            ]
        );
    }

    #[test]
    fn parses_zkclis_acl_syntax() {
        let acl =
            parse_list("world:anyone:r,digest:bob:abc=:cdrwa,ip:10.0.0.0/8:rw").expect("parses");
        assert_eq!(
            acl,
            vec![
                Acl::new(Perms::READ, "world", "anyone"),
                Acl::new(Perms::ALL, "digest", "bob:abc="),
                Acl::new(Perms::READ | Perms::WRITE, "ip", "10.0.0.0/8"),
            ]
        );
        assert_eq!(acl[1].to_string(), "digest:bob:abc=:cdrwa");
        assert!(parse_list("world:anyone:x").is_err());
        assert!(parse_list("nocolons").is_err());
    }
}
