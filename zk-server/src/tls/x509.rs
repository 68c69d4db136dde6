//! A certificate's subject distinguished name as Java's `X500Principal.getName()`
//! (RFC 2253): ZooKeeper's X509AuthenticationProvider uses that string as the `x509`
//! ACL id, so ACLs written for ZooKeeper (`x509:CN=app,O=Example`) work here unchanged.

use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

/// The subject DN of a DER certificate, RFC 2253 form: the most specific RDN first,
/// `,` between RDNs, `+` inside a multi-valued one, special characters escaped.
/// `None` if the certificate cannot be parsed.
pub fn subject_dn(der: &[u8]) -> Option<String> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let mut rdns: Vec<String> = Vec::new();
    for rdn in cert.subject().iter_rdn() {
        let parts: Vec<String> = rdn
            .iter()
            .map(|atv| {
                let key = keyword(&atv.attr_type().to_id_string());
                let value = match atv.as_str() {
                    Ok(s) => escape(s),
                    Err(_) => format!("#{}", hex(atv.attr_value().data)),
                };
                format!("{key}={value}")
            })
            .collect();
        rdns.push(parts.join("+"));
    }
    rdns.reverse();
    Some(rdns.join(","))
}

/// The names a certificate carries: its subject's common names and its subject
/// alternative names (DNS names, IP addresses in text form). Empty if it cannot be
/// parsed. Peer id verification ([`super::peer_id`]) looks for a server's id among them.
pub fn names(der: &[u8]) -> Vec<String> {
    let Ok((_, cert)) = X509Certificate::from_der(der) else {
        return Vec::new();
    };
    let mut out: Vec<String> = cert
        .subject()
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok().map(str::to_string))
        .collect();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(d) => out.push(d.to_string()),
                GeneralName::IPAddress(ip) => {
                    if let Ok(a) = <[u8; 4]>::try_from(*ip) {
                        out.push(std::net::IpAddr::from(a).to_string());
                    } else if let Ok(a) = <[u8; 16]>::try_from(*ip) {
                        out.push(std::net::IpAddr::from(a).to_string());
                    }
                }
                _ => {}
            }
        }
    }
    out
}

/// RFC 2253's keywords (those Java prints); other attributes by dotted OID.
fn keyword(oid: &str) -> String {
    match oid {
        "2.5.4.3" => "CN",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.6" => "C",
        "2.5.4.9" => "STREET",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        other => return other.to_string(),
    }
    .to_string()
}

/// RFC 2253 section 2.4 escaping.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let last = s.chars().count().saturating_sub(1);
    for (i, c) in s.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc2253_order_and_escaping() {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".into()]).expect("params");
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::CountryName, "US");
        dn.push(rcgen::DnType::OrganizationName, "Example, Inc.");
        dn.push(rcgen::DnType::CommonName, "app");
        params.distinguished_name = dn;
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("cert");
        assert_eq!(
            subject_dn(cert.der()).as_deref(),
            Some("CN=app,O=Example\\, Inc.,C=US")
        );
        assert_eq!(subject_dn(b"not a certificate"), None);
        assert_eq!(
            names(cert.der()),
            vec!["app".to_string(), "localhost".to_string()]
        );
        assert!(names(b"not a certificate").is_empty());
        assert_eq!(escape(" #a+b "), "\\ #a\\+b\\ ");
    }
}
