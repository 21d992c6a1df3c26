//! `integrations/vscode-rest-client/lightfi.http`, replayed the way the
//! REST Client extension reads it (the extension itself is not run here):
//! file variables, `###`-separated requests, `# @name`, `{{$dotenv NAME}}`
//! and `{{NAME.response.body.$.field}}`, sent to `lightfi-token serve` and
//! the API stub.

use std::collections::HashMap;
use std::path::Path;

use crate::common::*;
use crate::support::*;

const TOKEN: &str = "vscode-access-token";

struct HttpRequest {
    name: Option<String>,
    method: String,
    url: String,
    headers: Vec<(String, String)>,
}

/// File variables and requests of a `.http` file.
fn parse(text: &str) -> (HashMap<String, String>, Vec<HttpRequest>) {
    let mut variables = HashMap::new();
    let mut requests = vec![];
    for block in text.split("\n###") {
        let (mut name, mut request_line, mut headers) = (None, None::<String>, vec![]);
        for line in block.lines().map(str::trim) {
            if request_line.is_none() {
                if let Some(n) = line.strip_prefix("# @name ").or_else(|| line.strip_prefix("// @name ")) {
                    name = Some(n.trim().to_string());
                } else if let Some(var) = line.strip_prefix('@') {
                    let (k, v) = var.split_once('=').expect("@name = value");
                    variables.insert(k.trim().to_string(), v.trim().to_string());
                } else if !(line.is_empty() || line.starts_with('#') || line.starts_with("//")) {
                    request_line = Some(line.to_string());
                }
            } else if line.is_empty() {
                break; // a body would follow; these requests have none
            } else {
                let (k, v) = line.split_once(':').expect("Header: value");
                headers.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        if let Some(line) = request_line {
            let mut parts = line.split_whitespace();
            let method = parts.next().unwrap().to_string();
            let url = parts.next().expect("METHOD URL").to_string();
            requests.push(HttpRequest {
                name,
                method,
                url,
                headers,
            });
        }
    }
    (variables, requests)
}

/// Replace every `{{…}}` as REST Client would; panic on one it would leave as text.
fn resolve(
    text: &str,
    variables: &HashMap<String, String>,
    dotenv: &HashMap<String, String>,
    responses: &HashMap<String, serde_json::Value>,
) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find("}}").expect("closing }}") + start;
        let expr = rest[start + 2..end].trim();
        let value = if let Some(name) = expr.strip_prefix("$dotenv ") {
            dotenv
                .get(name.trim())
                .cloned()
                .unwrap_or_else(|| panic!("{name} not in .env"))
        } else if let Some((request, path)) = expr.split_once(".response.body.$.") {
            let body = responses
                .get(request)
                .unwrap_or_else(|| panic!("request {request} was not sent first"));
            body[path]
                .as_str()
                .unwrap_or_else(|| panic!("no {path} in {body}"))
                .to_string()
        } else {
            let value = variables.get(expr).unwrap_or_else(|| panic!("unknown variable {expr}"));
            resolve(value, variables, dotenv, responses)
        };
        out.push_str(&value);
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    out
}

fn read_dotenv(dir: &Path) -> HashMap<String, String> {
    std::fs::read_to_string(dir.join(".env"))
        .expect(".env next to the .http file")
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

#[test]
fn rest_client_file_requests_work_against_serve() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), Some((TOKEN, 60, 3600)));
    let serve = Serve::start(&t);
    let api = ApiStub::start(&[TOKEN]);

    let (mut variables, requests) = parse(&snippet("vscode-rest-client/lightfi.http"));
    assert_eq!(variables["lightfiServe"], "http://127.0.0.1:8787");
    assert_eq!(variables["api"], "https://api.lightfi.example");
    // What a user with `serve --port N` and their API URL would set.
    variables.insert("lightfiServe".into(), serve.url.clone());
    variables.insert("api".into(), api.url.clone());
    // The user's .env, next to the .http file.
    let dir = t.home().join("rest-client");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(".env"), format!("LIGHTFI_KEY={}\n", serve.key)).unwrap();
    let dotenv = read_dotenv(&dir);

    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].name.as_deref(), Some("token"));
    let mut responses = HashMap::new();
    for request in &requests {
        let url = resolve(&request.url, &variables, &dotenv, &responses);
        let headers: Vec<(String, String)> = request
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), resolve(v, &variables, &dotenv, &responses)))
            .collect();
        let (status, body) = http_request(&request.method, &url, &headers);
        assert_eq!(status, 200, "{} {url}: {body}", request.method);
        if let Some(name) = &request.name {
            responses.insert(name.clone(), serde_json::from_str(&body).expect("JSON answer"));
        }
    }
    assert_eq!(responses["token"]["access_token"], TOKEN);
    assert_eq!(api.authorizations(), vec![Some(format!("Bearer {TOKEN}"))]);
    t.assert_no_leak(serve.log().as_bytes());
}
