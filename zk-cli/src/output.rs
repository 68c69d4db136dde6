//! Text versus JSON: how results are printed. Text follows zkCli where it has a layout;
//! JSON is one compact document per line.

use serde_json::{json, Value};
use zk_client::Stat;

/// Where results go, and in which form.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    json: bool,
}

impl Output {
    pub fn new(json: bool) -> Self {
        Output { json }
    }

    /// Prints `text` in text mode, `value` in JSON mode.
    pub fn emit(&self, text: impl FnOnce() -> Option<String>, value: impl FnOnce() -> Value) {
        if self.json {
            println!("{}", value());
        } else if let Some(text) = text() {
            println!("{text}");
        }
    }
}

/// A `Stat` as JSON, with the client's field names.
pub fn stat_json(s: &Stat) -> Value {
    json!({
        "czxid": s.czxid,
        "mzxid": s.mzxid,
        "ctime": s.ctime,
        "mtime": s.mtime,
        "version": s.version,
        "cversion": s.cversion,
        "aversion": s.aversion,
        "ephemeral_owner": s.ephemeral_owner,
        "data_length": s.data_length,
        "num_children": s.num_children,
        "pzxid": s.pzxid,
    })
}

/// A `Stat` in zkCli's `stat` layout.
pub fn stat_text(s: &Stat) -> String {
    [
        format!("cZxid = {}", hex(s.czxid)),
        format!("ctime = {}", java_date(s.ctime)),
        format!("mZxid = {}", hex(s.mzxid)),
        format!("mtime = {}", java_date(s.mtime)),
        format!("pZxid = {}", hex(s.pzxid)),
        format!("cversion = {}", s.cversion),
        format!("dataVersion = {}", s.version),
        format!("aclVersion = {}", s.aversion),
        format!("ephemeralOwner = {}", hex(s.ephemeral_owner)),
        format!("dataLength = {}", s.data_length),
        format!("numChildren = {}", s.num_children),
    ]
    .join("\n")
}

/// `0x..` as zkCli prints zxids and session ids (two's complement for negatives).
pub fn hex(v: i64) -> String {
    format!("{v:#x}")
}

/// Data for a terminal: UTF-8 text as it is, anything else (invalid UTF-8 or control
/// characters other than tab and newlines) byte-escaped, e.g. `\x00\xff`.
pub fn data_text(data: &[u8]) -> String {
    match std::str::from_utf8(data) {
        Ok(s)
            if !s
                .chars()
                .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) =>
        {
            s.to_string()
        }
        _ => data
            .iter()
            .flat_map(|b| std::ascii::escape_default(*b))
            .map(char::from)
            .collect(),
    }
}

/// Data for JSON: `(text, "utf8")` when it is UTF-8, `(base64, "base64")` otherwise.
pub fn data_json(data: &[u8]) -> (String, &'static str) {
    match std::str::from_utf8(data) {
        Ok(s) => (s.to_string(), "utf8"),
        Err(_) => (base64(data), "base64"),
    }
}

/// Standard base64 with padding (RFC 4648).
pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Milliseconds since the epoch as Java's `Date.toString()` prints them, in UTC:
/// `Thu Jan 01 00:00:00 UTC 1970`.
pub fn java_date(ms: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{} {} {:02} {:02}:{:02}:{:02} UTC {}",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(m - 1) as usize],
        d,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        y
    )
}

/// (year, month 1..=12, day 1..=31) of a day count since 1970-01-01 (H. Hinnant's
/// algorithm, proleptic Gregorian).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_match_java() {
        assert_eq!(java_date(0), "Thu Jan 01 00:00:00 UTC 1970");
        // 2024-02-29T12:34:56Z, a Thursday.
        assert_eq!(java_date(1_709_210_096_000), "Thu Feb 29 12:34:56 UTC 2024");
        assert_eq!(java_date(-1000), "Wed Dec 31 23:59:59 UTC 1969");
    }

    #[test]
    fn base64_matches_rfc4648() {
        for (plain, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), enc);
        }
    }

    #[test]
    fn binary_data_is_escaped() {
        assert_eq!(data_text(b"hello\nworld"), "hello\nworld");
        assert_eq!(data_text(b"a\x00\xff"), "a\\x00\\xff");
        assert_eq!(data_json(b"\xff"), ("/w==".to_string(), "base64"));
        assert_eq!(data_json("é".as_bytes()), ("é".to_string(), "utf8"));
    }

    #[test]
    fn stat_layout_is_zkclis() {
        let s = Stat {
            czxid: 2,
            ephemeral_owner: 0x1234,
            ..Stat::default()
        };
        let text = stat_text(&s);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "cZxid = 0x2");
        assert_eq!(lines[1], "ctime = Thu Jan 01 00:00:00 UTC 1970");
        assert_eq!(lines[8], "ephemeralOwner = 0x1234");
        assert_eq!(lines.len(), 11);
    }
}
