//! `lightfi-token setup postman --out DIR`: the files to import into
//! Postman, ready to use with `lightfi-token serve`: the environment of
//! integrations/postman/ with serve's URL and key filled in (0600: it holds
//! the key), the collection, and its pre-request script on its own for
//! collections of your own.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::cli::SetupPostmanArgs;
use crate::commands::serve;
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::report;

const ENVIRONMENT: &str = include_str!("../../../integrations/postman/lightfi.postman_environment.json");
const COLLECTION: &str = include_str!("../../../integrations/postman/lightfi.postman_collection.json");
const SCRIPT: &str = include_str!("../../../integrations/postman/pre-request.js");

pub const ENVIRONMENT_FILE: &str = "lightfi.postman_environment.json";
pub const COLLECTION_FILE: &str = "lightfi.postman_collection.json";
pub const SCRIPT_FILE: &str = "pre-request.js";

pub fn run(settings: &Settings, args: &SetupPostmanArgs) -> Result<()> {
    if args.port == 0 {
        // `serve --port 0` would listen wherever the system says: no file can name that.
        return Err(Error::Usage {
            msg: "--port 0 is not a port Postman can be sent to".into(),
            hint: "give the port `lightfi-token serve` listens on (8787 unless you pass it --port)".into(),
        });
    }
    let (key, key_path) = serve::key::load_or_create(settings)?;
    let url = format!("http://127.0.0.1:{}/token", args.port);
    let environment = environment(&url, key.expose())?;
    create_dir(&args.out)?;
    let written = [
        write_private(&args.out.join(ENVIRONMENT_FILE), environment.as_bytes())?,
        write_private(&args.out.join(COLLECTION_FILE), COLLECTION.as_bytes())?,
        write_private(&args.out.join(SCRIPT_FILE), SCRIPT.as_bytes())?,
    ];
    let port_flag = if args.port == 8787 {
        String::new()
    } else {
        format!(" --port {}", args.port)
    };
    report::note(&format!(
        "wrote {}, {} and {}.\n\
         lightfi-token: in Postman, import the environment and the collection (or paste {SCRIPT_FILE} into your \
         collection's pre-request script), select the environment, and keep `lightfi-token serve{port_flag}` running.",
        written[0].display(),
        written[1].display(),
        written[2].display(),
    ));
    report::warn(&format!(
        "the environment file holds serve's key (from {}). Postman may sync environments to its cloud (the \
         initial value of a variable is shared with your workspace): if the key may have leaked, \
         `lightfi-token serve --rotate-key` makes it useless at once, then run this again",
        key_path.display()
    ));
    Ok(())
}

/// The environment with `lightfi_token_url` and `lightfi_key` set.
fn environment(url: &str, key: &str) -> Result<String> {
    let mut env: serde_json::Value = serde_json::from_str(ENVIRONMENT)
        .map_err(|e| Error::unexpected(format!("the built-in Postman environment is not JSON: {e}")))?;
    for variable in env["values"].as_array_mut().into_iter().flatten() {
        match variable["key"].as_str() {
            Some("lightfi_token_url") => variable["value"] = url.into(),
            Some("lightfi_key") => variable["value"] = key.into(),
            _ => {}
        }
    }
    serde_json::to_string_pretty(&env)
        .map(|text| text + "\n")
        .map_err(|e| Error::unexpected(format!("cannot encode the Postman environment: {e}")))
}

fn create_dir(dir: &Path) -> Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|e| Error::io("cannot create", dir, e))
}

/// Replace `path` with `bytes` atomically, readable by the owner only.
fn write_private(path: &Path, bytes: &[u8]) -> Result<PathBuf> {
    let dir = path.parent().unwrap_or(Path::new("."));
    // tempfile creates it 0600 on Unix.
    let written = tempfile::Builder::new()
        .prefix(".lightfi-token-")
        .tempfile_in(dir)
        .and_then(|mut tmp| {
            tmp.write_all(bytes)?;
            tmp.as_file().sync_all()?;
            tmp.persist(path).map_err(|e| e.error)
        });
    written.map_err(|e| Error::io("cannot write", path, e))?;
    Ok(path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_gets_the_url_and_the_key() {
        let text = environment("http://127.0.0.1:9999/token", "k".repeat(43).as_str()).unwrap();
        let env: serde_json::Value = serde_json::from_str(&text).unwrap();
        let value = |name: &str| {
            env["values"]
                .as_array()
                .unwrap()
                .iter()
                .find(|v| v["key"] == name)
                .map(|v| v["value"].clone())
                .unwrap()
        };
        assert_eq!(value("lightfi_token_url"), "http://127.0.0.1:9999/token");
        assert_eq!(value("lightfi_key"), "k".repeat(43));
    }
}
