//! `lightfi-token serve`: the local token endpoint, `--show-key` or `--rotate-key`.

use crate::config::Settings;
use crate::error::Result;
use crate::report;
use crate::serve;

pub fn run(settings: &Settings, port: u16, show_key: bool, rotate_key: bool, min_valid: u64) -> Result<()> {
    if show_key {
        let (key, _) = serve::key::load_or_create(settings)?;
        return report::print(format!("{}\n", key.expose()).as_bytes());
    }
    if rotate_key {
        let path = serve::key::rotate(settings)?;
        report::note(&format!(
            "new serve key written to {}: the old one is refused from now on, also by a `lightfi-token serve` \
             already running; `lightfi-token serve --show-key` prints the new one (put it in Postman's \
             lightfi_key, or run `lightfi-token setup postman` again)",
            path.display()
        ));
        return Ok(());
    }
    serve::run(settings, port, min_valid)
}
