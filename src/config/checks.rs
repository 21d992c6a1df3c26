//! The checks of values that become URLs and file names.

use super::DEFAULT_OAUTH_URL;
use crate::error::{Error, Result};

/// Profile names become file names: keep them to a safe alphabet.
pub(super) fn check_profile_name(profile: &str) -> Result<()> {
    let ok = !profile.is_empty()
        && profile.len() <= 64
        && !profile.starts_with('.')
        && profile
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(Error::config(
            format!("invalid profile name `{profile}`"),
            "use letters, digits, `-`, `_` and `.` (not first), at most 64 characters",
        ))
    }
}

/// The OAuth base URL must be https, except on loopback (tests, local servers):
/// the client secret and refresh token travel in its requests.
pub(super) fn check_oauth_url(raw: &str) -> Result<String> {
    // The URL parser ignores trailing spaces and control characters, but not
    // once `/token` follows them (`https://idp.example /token` has no valid
    // host): drop them with the trailing slashes.
    let trimmed = raw.trim_end_matches(|c: char| c == '/' || c <= ' ');
    // A URL with `user:password@` is not echoed: the password would be printed.
    let shown = if raw.contains('@') {
        "(not shown: it has an @)"
    } else {
        raw
    };
    let bad = |why: &str| {
        Error::config(
            format!("invalid OAuth URL `{shown}`: {why}"),
            format!(
                "use the hosted UI's base URL, e.g. {DEFAULT_OAUTH_URL} (--oauth-url, LIGHTFI_OAUTH_URL or oauth_url in config.toml)"
            ),
        )
    };
    let url = url::Url::parse(trimmed).map_err(|e| bad(&e.to_string()))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("it must not contain a user name or password"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("it must not have a query or fragment"));
    }
    match url.scheme() {
        "https" => Ok(trimmed.to_string()),
        "http" if is_loopback(&url) => Ok(trimmed.to_string()),
        "http" => Err(bad("plain http is allowed only for localhost")),
        _ => Err(bad("it must be an https URL")),
    }
}

pub fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// A duration written as a number and a unit, `d` or `h` ("30d", "12h",
/// "3650d"): the app client's refresh-token validity.
pub(super) fn parse_validity(raw: &str) -> Result<std::time::Duration> {
    let raw = raw.trim();
    let (number, unit) = raw.split_at(raw.len().saturating_sub(1));
    let hours = match unit {
        "d" => 24,
        "h" => 1,
        _ => 0,
    };
    match number.parse::<u64>().ok().and_then(|n| n.checked_mul(hours)) {
        Some(h) if h > 0 && h <= 3650 * 24 => Ok(std::time::Duration::from_secs(h * 3600)),
        _ => Err(Error::config(
            format!("invalid refresh_token_validity `{raw}`"),
            "write it as the app client's refresh-token expiration in Cognito: days or hours such as \"30d\" or \"12h\" (at most 3650d)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_spaces_go_with_the_trailing_slashes() {
        for raw in [
            "https://idp.example ",
            "https://idp.example/\n",
            "https://idp.example \t/ ",
        ] {
            assert_eq!(check_oauth_url(raw).unwrap(), "https://idp.example", "{raw:?}");
        }
        assert_eq!(
            check_oauth_url("https://idp.example/oauth2 ").unwrap(),
            "https://idp.example/oauth2"
        );
    }

    #[test]
    fn plain_http_only_for_loopback_and_bad_profiles_refused() {
        assert!(check_oauth_url("http://127.0.0.1:9/oauth2").is_ok());
        assert!(check_oauth_url("http://[::1]:9/oauth2").is_ok());
        assert!(check_oauth_url("http://evil.example/oauth2").is_err());
        assert!(check_oauth_url("not a url").is_err());
        let err = check_oauth_url("https://user:hunter2@idp.example/oauth2").unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert!(check_profile_name("../etc").is_err());
        assert!(check_profile_name("staging-2").is_ok());
    }

    #[test]
    fn validities_are_days_or_hours() {
        assert_eq!(parse_validity("30d").unwrap().as_secs(), 30 * 86400);
        assert_eq!(parse_validity("12h").unwrap().as_secs(), 12 * 3600);
        assert!(parse_validity("3650d").is_ok());
        for bad in ["3651d", "0d", "30", "d", "", "30m", "18446744073709551615d", "-1d"] {
            assert_eq!(parse_validity(bad).unwrap_err().exit_code(), 4, "{bad}");
        }
    }
}
