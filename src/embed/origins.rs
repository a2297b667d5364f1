//! The origins allowed to frame the Admin Portal, for the whole instance: those of the
//! `--frame-ancestors` flag and those the owner keeps on the settings page (settings table).

use diesel::QueryResult;

use crate::db::{DbConn, settings};

const SETTING: &str = "frame_ancestors";

/// A web origin allowed to frame the portal: `https://host[:port]`, or plain http only for
/// localhost and 127.0.0.1 (local development).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameOrigin(String);

impl FrameOrigin {
    pub fn parse(input: &str) -> Result<FrameOrigin, String> {
        let input = input.trim().trim_end_matches('/');
        let refuse = || {
            format!(
                "\"{input}\" is not an origin: write https://host or https://host:port \
                 (http only for localhost or 127.0.0.1), without a path"
            )
        };
        let url = url::Url::parse(input).map_err(|_| refuse())?;
        let host = url.host_str().ok_or_else(refuse)?;
        let local = host == "localhost" || host == "127.0.0.1";
        let scheme_ok = url.scheme() == "https" || (url.scheme() == "http" && local);
        if !scheme_ok
            || host.contains('*')
            || !url.username().is_empty()
            || url.password().is_some()
            || url.path() != "/"
            || url.query().is_some()
            || url.fragment().is_some()
        {
            return Err(refuse());
        }
        Ok(FrameOrigin(url.origin().ascii_serialization()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Parses one origin per line (or separated by commas or spaces); every bad entry is named.
pub fn parse_list(input: &str) -> Result<Vec<FrameOrigin>, String> {
    let mut origins: Vec<FrameOrigin> = Vec::new();
    let mut errors = Vec::new();
    for entry in input
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|e| !e.is_empty())
    {
        match FrameOrigin::parse(entry) {
            Ok(o) if !origins.contains(&o) => origins.push(o),
            Ok(_) => {}
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(origins)
    } else {
        Err(errors.join("; "))
    }
}

/// The origins the owner allowed on the settings page.
pub fn owner_allowed(conn: &mut DbConn) -> QueryResult<Vec<FrameOrigin>> {
    let stored = settings::get(conn, SETTING)?.unwrap_or_default();
    // Stored entries were validated when saved; one that no longer parses is left out.
    Ok(stored
        .lines()
        .filter_map(|l| FrameOrigin::parse(l).ok())
        .collect())
}

/// The instance's allow-list: the flag's origins, then the owner's (empty: the portal
/// cannot be framed).
pub fn allowed(conn: &mut DbConn, by_flag: &[FrameOrigin]) -> QueryResult<Vec<FrameOrigin>> {
    let mut all = by_flag.to_vec();
    for o in owner_allowed(conn)? {
        if !all.contains(&o) {
            all.push(o);
        }
    }
    Ok(all)
}

pub fn set_allowed(conn: &mut DbConn, origins: &[FrameOrigin]) -> QueryResult<()> {
    let joined = origins
        .iter()
        .map(FrameOrigin::as_str)
        .collect::<Vec<_>>()
        .join("\n");
    settings::set(conn, SETTING, &joined)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_https_or_local_http() {
        assert_eq!(
            FrameOrigin::parse("https://app.example.com/")
                .unwrap()
                .as_str(),
            "https://app.example.com"
        );
        assert!(FrameOrigin::parse("http://127.0.0.1:8080").is_ok());
        assert!(FrameOrigin::parse("http://localhost").is_ok());
        for bad in [
            "http://app.example.com",
            "*",
            "https://*.example.com",
            "https://a.example.com/path",
            "javascript:alert(1)",
            "'self'",
            "https://a.example.com 'unsafe-inline'",
        ] {
            assert!(FrameOrigin::parse(bad).is_err(), "{bad}");
        }
    }
}
