//! `lightfi-token serve`: the local token endpoint, or `--show-key`.

use crate::config::Settings;
use crate::error::Result;
use crate::report;
use crate::serve;

pub fn run(settings: &Settings, port: u16, show_key: bool, min_valid: u64) -> Result<()> {
    if show_key {
        let (key, _) = serve::key::load_or_create(settings)?;
        return report::print(format!("{}\n", key.expose()).as_bytes());
    }
    serve::run(settings, port, min_valid)
}
