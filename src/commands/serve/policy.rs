//! Which requests `serve` answers: a pure check of method, path and headers,
//! run before any token work.
//!
//! Any local process can connect to loopback, and a web page in the browser
//! can make it send requests, so each request must carry `X-Lightfi-Key`
//! (compared in constant time) and is refused when its `Host` is not this
//! server's loopback address (DNS rebinding: an attacker's name resolving to
//! 127.0.0.1) or when it has an `Origin` (it comes from a web page).

use crate::config::TokenKind;
use crate::secret::ServeKey;

/// The request header that must carry the key.
pub const KEY_HEADER: &str = "X-Lightfi-Key";

/// A request refused before any token work.
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub error: &'static str,
    pub message: &'static str,
}

/// Decide whether to answer, in this order: wrong `Host` or an `Origin`
/// (403), another path (404), another method (405), missing or wrong key (401).
/// Without a `key` (its file is missing or broken) every key is wrong.
pub fn check(
    method: &str,
    url: &str,
    headers: &[(String, String)],
    key: Option<&ServeKey>,
    port: u16,
) -> Result<(), Refusal> {
    let values = |name: &'static str| {
        headers
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let hosts: Vec<&str> = values("Host").collect();
    if !matches!(hosts[..], [host] if host_allowed(host, port)) {
        return Err(Refusal {
            status: 403,
            error: "forbidden_host",
            message: "the Host header must be 127.0.0.1:PORT, localhost:PORT or [::1]:PORT",
        });
    }
    if values("Origin").next().is_some() {
        return Err(Refusal {
            status: 403,
            error: "forbidden_origin",
            message: "requests from web pages (with an Origin header) are refused",
        });
    }
    if path_of(url) != "/token" {
        return Err(Refusal {
            status: 404,
            error: "not_found",
            message: "the only path is /token",
        });
    }
    if method != "GET" {
        return Err(Refusal {
            status: 405,
            error: "method_not_allowed",
            message: "use GET /token",
        });
    }
    let keys: Vec<&str> = values(KEY_HEADER).collect();
    let key_ok = matches!((&keys[..], key), ([given], Some(key)) if ServeKey::new(*given) == *key);
    if !key_ok {
        return Err(Refusal {
            status: 401,
            error: "invalid_key",
            message: "send the header X-Lightfi-Key with the key that `lightfi-token serve --show-key` prints",
        });
    }
    Ok(())
}

/// The kind of token asked for with `?kind=access|id`, else `default`.
pub fn requested_kind(url: &str, default: TokenKind) -> Result<TokenKind, Refusal> {
    let query = url
        .split_once('?')
        .map_or("", |(_, q)| q)
        .split('#')
        .next()
        .unwrap_or_default();
    let mut kind = default;
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        if key == "kind" {
            kind = match value.as_ref() {
                "access" => TokenKind::Access,
                "id" => TokenKind::Id,
                _ => {
                    return Err(Refusal {
                        status: 400,
                        error: "invalid_kind",
                        message: "kind is `access` or `id`",
                    });
                }
            };
        }
    }
    Ok(kind)
}

/// The path of a request target, without query or fragment.
pub fn path_of(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or_default()
}

/// Only this server's own loopback names: anything else is another site's
/// name that resolves here (DNS rebinding).
fn host_allowed(host: &str, port: u16) -> bool {
    let (name, given_port) = match host.rsplit_once(':') {
        Some((name, p)) if !name.is_empty() && !p.contains(']') => (name, p.parse::<u16>().ok()),
        _ => (host, (port == 80).then_some(80)),
    };
    given_port == Some(port) && (name == "127.0.0.1" || name.eq_ignore_ascii_case("localhost") || name == "[::1]")
}

#[cfg(test)]
mod tests {
    use super::*;

    const PORT: u16 = 8787;

    fn request(method: &str, url: &str, headers: &[(&str, &str)]) -> Result<(), Refusal> {
        let headers: Vec<(String, String)> = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        check(method, url, &headers, Some(&ServeKey::new("k".repeat(43))), PORT)
    }

    fn status(result: Result<(), Refusal>) -> u16 {
        result.map_or_else(|r| r.status, |()| 200)
    }

    #[test]
    fn good_request_passes_with_every_loopback_host() {
        let key = "k".repeat(43);
        for host in ["127.0.0.1:8787", "localhost:8787", "LocalHost:8787", "[::1]:8787"] {
            let r = request("GET", "/token?x=1", &[("Host", host), ("x-lightfi-key", &key)]);
            assert_eq!(status(r), 200, "{host}");
        }
    }

    #[test]
    fn foreign_or_missing_host_is_403() {
        let key = "k".repeat(43);
        for host in [
            "evil.example:8787",
            "127.0.0.1:8788",
            "127.0.0.1",
            "localhost.evil.example:8787",
            "[::1]",
            "0.0.0.0:8787",
            "",
        ] {
            let r = request("GET", "/token", &[("Host", host), (KEY_HEADER, &key)]);
            assert_eq!(status(r), 403, "{host:?}");
        }
        assert_eq!(status(request("GET", "/token", &[(KEY_HEADER, &key)])), 403);
        let two = [("Host", "127.0.0.1:8787"), ("Host", "evil.example"), (KEY_HEADER, &key)];
        assert_eq!(status(request("GET", "/token", &two)), 403);
    }

    #[test]
    fn origin_is_403_even_with_the_key() {
        let key = "k".repeat(43);
        let r = request(
            "GET",
            "/token",
            &[("Host", "127.0.0.1:8787"), ("Origin", "null"), (KEY_HEADER, &key)],
        );
        assert_eq!(r.unwrap_err().error, "forbidden_origin");
    }

    #[test]
    fn paths_methods_and_keys() {
        let host = ("Host", "127.0.0.1:8787");
        assert_eq!(status(request("GET", "/", &[host])), 404);
        assert_eq!(status(request("GET", "/token/x", &[host])), 404);
        assert_eq!(status(request("POST", "/token", &[host])), 405);
        assert_eq!(status(request("OPTIONS", "/token", &[host])), 405);
        assert_eq!(status(request("GET", "/token", &[host])), 401);
        assert_eq!(status(request("GET", "/token", &[host, (KEY_HEADER, "wrong")])), 401);
        let almost = "k".repeat(42) + "K";
        assert_eq!(status(request("GET", "/token", &[host, (KEY_HEADER, &almost)])), 401);
        let key = "k".repeat(43);
        let twice = [host, (KEY_HEADER, key.as_str()), (KEY_HEADER, key.as_str())];
        assert_eq!(status(request("GET", "/token", &twice)), 401);
    }

    #[test]
    fn the_kind_of_token_comes_from_the_query() {
        assert_eq!(requested_kind("/token", TokenKind::Access), Ok(TokenKind::Access));
        assert_eq!(requested_kind("/token?kind=id", TokenKind::Access), Ok(TokenKind::Id));
        assert_eq!(
            requested_kind("/token?x=1&kind=access", TokenKind::Id),
            Ok(TokenKind::Access)
        );
        assert_eq!(
            requested_kind("/token?kind=refresh", TokenKind::Access)
                .unwrap_err()
                .status,
            400
        );
    }

    #[test]
    fn without_a_key_every_key_is_wrong() {
        let headers = vec![
            ("Host".to_string(), "127.0.0.1:8787".to_string()),
            (KEY_HEADER.to_string(), "k".repeat(43)),
        ];
        assert_eq!(status(check("GET", "/token", &headers, None, PORT)), 401);
    }

    #[test]
    fn port_80_may_be_implied() {
        assert!(host_allowed("localhost", 80));
        assert!(!host_allowed("localhost", 8080));
    }
}
