//! The real transport: reqwest with rustls, no redirects followed.

use std::cell::OnceCell;
use std::io::Read;
use std::time::Duration;

use reqwest::blocking::Client as HttpClient;

use super::{Answer, FormPost, MAX_BODY, MAX_RETRY_AFTER, Probe, Transport, http_date};
use crate::net::describe;

/// The real transport: reqwest with rustls, no redirects followed. The
/// client is built on the first request, so creating an `Http` costs nothing
/// on the cached path.
pub struct Http {
    timeout: Duration,
    client: OnceCell<Result<HttpClient, String>>,
}

impl Http {
    pub fn new(timeout: Duration) -> Self {
        Http {
            timeout,
            client: OnceCell::new(),
        }
    }

    fn client(&self) -> Result<&HttpClient, String> {
        self.client
            .get_or_init(|| crate::net::client(self.timeout, Vec::new()))
            .as_ref()
            .map_err(Clone::clone)
    }
}

impl Transport for Http {
    fn send(&self, post: &FormPost) -> Result<Answer, String> {
        let started = std::time::Instant::now();
        let answer = self.send_once(post);
        crate::report::debug(|| {
            let took = started.elapsed().as_millis();
            match &answer {
                Ok(a) => format!(
                    "POST {} [{}] → HTTP {} ({} bytes, {took} ms)",
                    post.url,
                    post.fields(),
                    a.status,
                    a.body.len()
                ),
                Err(why) => format!("POST {} [{}] → {why} ({took} ms)", post.url, post.fields()),
            }
        });
        answer
    }

    fn probe(&self, url: &str) -> Result<Probe, String> {
        let shown = url.split('?').next().unwrap_or(url);
        let started = std::time::Instant::now();
        let probe = self.probe_once(url);
        crate::report::debug(|| {
            let took = started.elapsed().as_millis();
            match &probe {
                Ok(p) => format!(
                    "GET {shown}?… → HTTP {}{} ({took} ms)",
                    p.status,
                    if p.location.is_some() { ", a redirect" } else { "" }
                ),
                Err(why) => format!("GET {shown}?… → {why} ({took} ms)"),
            }
        });
        probe
    }
}

impl Http {
    fn send_once(&self, post: &FormPost) -> Result<Answer, String> {
        let mut request = self.client()?.post(&post.url).form(&post.form);
        if let Some((user, password)) = &post.basic {
            request = request.basic_auth(user, Some(password));
        }
        let response = request
            .send()
            .map_err(|e| format!("cannot reach {}: {}", post.url, describe(&e)))?;
        let status = response.status().as_u16();
        let retry_after = retry_after(&response);
        let mut body = Vec::new();
        response
            .take(MAX_BODY + 1)
            .read_to_end(&mut body)
            .map_err(|e| format!("reading the answer of {} failed: {e}", post.url))?;
        Ok(Answer {
            status,
            retry_after,
            body,
        })
    }

    fn probe_once(&self, url: &str) -> Result<Probe, String> {
        // The error's own text would repeat the URL with its query (state,
        // PKCE challenge): named once here, without it.
        let response = self.client()?.get(url).send().map_err(|e| {
            format!(
                "cannot reach {}: {}",
                url.split('?').next().unwrap_or(url),
                describe(&e.without_url())
            )
        })?;
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let date = response
            .headers()
            .get(reqwest::header::DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(http_date);
        Ok(Probe {
            status: response.status().as_u16(),
            location,
            date,
        })
    }
}

/// `Retry-After` in seconds (RFC 9110 §10.2.3), at most [`MAX_RETRY_AFTER`].
/// The HTTP-date form is treated as absent: the default backoff applies.
fn retry_after(response: &reqwest::blocking::Response) -> Option<Duration> {
    let secs: u64 = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
}
