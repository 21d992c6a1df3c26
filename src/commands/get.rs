//! `lightfi-token [get]`: print a valid access token in the asked format.

use time::OffsetDateTime;

use crate::cli::GetArgs;
use crate::config::{Grant, Settings};
use crate::error::Result;
use crate::oauth::Http;
use crate::output::{self, Format};
use crate::report;
use crate::token::{self, Want};

pub fn run(settings: &Settings, args: &GetArgs) -> Result<()> {
    let format = args.format();
    let exec_info = match format {
        Format::ExecCredential => std::env::var("KUBERNETES_EXEC_INFO").ok(),
        _ => None,
    };
    let want = Want {
        min_valid: args.min_valid,
        force_refresh: args.force_refresh,
        may_interact: !output::exec_info_forbids_interaction(exec_info.as_deref()),
        kind: settings.token_kind,
    };
    // Check the requested ExecCredential version before any network work.
    if format == Format::ExecCredential {
        output::exec_api_version(exec_info.as_deref())?;
    }
    if args.force_refresh && settings.grant == Grant::ClientCredentials && settings.token_file.is_none() {
        report::warn("--force-refresh asks for a new token: with client credentials, each token request is billed");
    }
    let access = token::obtain(settings, &Http::new(settings.http_timeout), want)?;
    if format != Format::ExecCredential && want.may_interact {
        token::session::warn_if_ending(settings);
    }
    let handed = token::hand(&access, settings.token_kind)?;
    let text = output::render(format, handed, OffsetDateTime::now_utc(), exec_info.as_deref())?;
    report::print(text.as_bytes())
}
