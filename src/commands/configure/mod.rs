//! `lightfi-token configure`: write a profile's client settings to
//! `config.toml` from flags and answers, then ask the token endpoint whether
//! the client authenticates, so a wrong or missing secret shows now and not
//! after a browser round trip. `--show` prints the settings in use.

mod answers;
mod file;

use std::path::PathBuf;

use crate::cli::ConfigureArgs;
use crate::client_check::{self, Verdict};
use crate::config::{self, DEFAULT_OAUTH_URL, DEFAULT_REDIRECT_URI, DEFAULT_SCOPE, Flags, Settings, Source};
use crate::error::{Error, Result};
use crate::login::LoginOptions;
use crate::oauth::{Failure, Http};
use crate::report;
use crate::secret::ClientSecret;
use answers::Answers;
use file::ConfigFile;

pub fn run(flags: &Flags, args: &ConfigureArgs) -> Result<()> {
    if args.show {
        return show(&config::resolve(flags)?);
    }
    let profile = config::profile(flags)?;
    let mut file = ConfigFile::read(&config::home(flags)?.join("config.toml"))?;
    let mut answers = (!args.client_secret_stdin).then(Answers::from_stdin);
    let wanted = wanted(flags, &file, &profile, answers.as_mut(), args.client_secret_stdin)?;
    let settings = checked(flags, &file, &profile, &wanted)?;
    save(&mut file, &profile, &settings, args.force)?;
    check_client(&settings, &file)?;
    if let Some(terminal @ Answers::Terminal) = answers.as_mut()
        && terminal.confirm("Log in now?")?
    {
        // The settings as every later run reads them: from the file, not
        // from the flags just given.
        let plain = Flags {
            client_id: None,
            oauth_url: None,
            redirect_uri: None,
            scope: None,
            ..flags.clone()
        };
        let settings = config::resolve(&plain)?;
        let http = Http::new(settings.http_timeout);
        crate::token::log_in(&settings, &http, LoginOptions::default())?;
        report::note(&format!(
            "logged in: `lightfi-token --profile {profile}` prints a token"
        ));
    }
    Ok(())
}

/// The values to save, as given or answered.
struct Wanted {
    client_id: String,
    client_secret: Option<ClientSecret>,
    oauth_url: String,
    redirect_uri: String,
    scope: String,
}

/// What the flags give, then (unless the secret comes from stdin) the
/// answers for the rest, each offered with the profile's saved value or
/// the default.
fn wanted(
    flags: &Flags,
    file: &ConfigFile,
    profile: &str,
    mut answers: Option<&mut Answers>,
    secret_from_stdin: bool,
) -> Result<Wanted> {
    let saved = |key: &str| file.get(profile, key);
    let client_id = ask(
        answers.as_deref_mut(),
        &flags.client_id,
        "Client id",
        saved("client_id")?,
    )?;
    let client_id = client_id.filter(|id| !id.is_empty()).ok_or_else(|| {
        Error::config(
            format!("no client id given for profile `{profile}`"),
            "pass --client-id ID, or give it as the first line on stdin (the LightFi administrator, \
             or the user pool's App integration → App clients in the AWS console, has it)",
        )
    })?;
    let saved_secret = saved("client_secret")?.map(ClientSecret::new);
    let client_secret = if secret_from_stdin {
        answers::secret_from_stdin()?
    } else {
        match answers.as_deref_mut() {
            Some(answers) => answers.secret(saved_secret)?,
            None => saved_secret,
        }
    };
    let mut ask = |given: &Option<String>, question: &str, key: &str, default: &str| -> Result<String> {
        let shown = saved(key)?.unwrap_or_else(|| default.to_string());
        Ok(ask(answers.as_deref_mut(), given, question, Some(shown))?.unwrap_or_default())
    };
    Ok(Wanted {
        client_id,
        client_secret,
        oauth_url: ask(&flags.oauth_url, "OAuth URL", "oauth_url", DEFAULT_OAUTH_URL)?,
        redirect_uri: ask(
            &flags.redirect_uri,
            "Redirect URI",
            "redirect_uri",
            DEFAULT_REDIRECT_URI,
        )?,
        scope: ask(&flags.scope, "Scope", "scope", DEFAULT_SCOPE)?,
    })
}

/// The flag's value if given, else the answer (`shown` when left empty).
fn ask(
    answers: Option<&mut Answers>,
    given: &Option<String>,
    question: &str,
    shown: Option<String>,
) -> Result<Option<String>> {
    match (given, answers) {
        (Some(given), _) => Ok(Some(given.clone())),
        (None, Some(answers)) => answers.text(question, shown.as_deref()),
        (None, None) => Ok(shown),
    }
}

/// The wanted values checked as any run checks settings (an https OAuth
/// URL, …), resolved into the client they make.
fn checked(flags: &Flags, file: &ConfigFile, profile: &str, wanted: &Wanted) -> Result<Settings> {
    let as_flags = Flags {
        profile: Some(profile.to_string()),
        home: file.path.parent().map(PathBuf::from),
        client_id: Some(wanted.client_id.clone()),
        oauth_url: Some(wanted.oauth_url.clone()),
        redirect_uri: Some(wanted.redirect_uri.clone()),
        scope: Some(wanted.scope.clone()),
        ..flags.clone()
    };
    let secret = wanted.client_secret.as_ref().map(|s| s.expose().to_string());
    let (settings, _) = config::resolve_with(&as_flags, |name| match name {
        "LIGHTFI_CLIENT_SECRET" => secret.clone(),
        _ => None,
    })?;
    Ok(settings)
}

/// Write the keys that differ from the defaults; an existing profile with
/// other values changes only with `force`; the same values again write nothing.
fn save(file: &mut ConfigFile, profile: &str, s: &Settings, force: bool) -> Result<()> {
    let secret = s.client.secret.as_ref().map(ClientSecret::expose);
    let keys = [
        ("client_id", Some(s.client.id.as_str()), None),
        ("client_secret", secret, None),
        (
            "oauth_url",
            Some(s.client.endpoints.base.as_str()),
            Some(DEFAULT_OAUTH_URL),
        ),
        (
            "redirect_uri",
            Some(s.redirect_uri.as_str()),
            Some(DEFAULT_REDIRECT_URI),
        ),
        ("scope", Some(s.scope.as_str()), Some(DEFAULT_SCOPE)),
    ];
    let mut changes = Vec::new();
    for (key, wanted, default) in keys {
        let saved = file.get(profile, key)?;
        let (saved, wanted) = (saved.as_deref().or(default), wanted.filter(|w| Some(*w) != default));
        if saved != wanted.or(default) {
            changes.push((key, wanted));
        }
    }
    let path = file.path.display().to_string();
    if changes.is_empty() && file.has(profile) {
        report::note(&format!(
            "profile `{profile}` in {path} already has these settings: nothing to change"
        ));
        return Ok(());
    }
    if file.has(profile) && !force {
        let keys: Vec<&str> = changes.iter().map(|(k, _)| *k).collect();
        return Err(Error::config(
            format!("profile `{profile}` in {path} has other values for {}", keys.join(", ")),
            "add --force to replace them, or save these settings as another profile (--profile NAME)",
        ));
    }
    file.apply(profile, &changes)?;
    file.write()?;
    report::note(&format!("saved profile `{profile}` in {path}"));
    Ok(())
}

/// Ask the token endpoint whether the client authenticates as saved.
fn check_client(s: &Settings, file: &ConfigFile) -> Result<()> {
    let http = Http::new(s.http_timeout);
    let (id, url) = (&s.client.id, s.client.endpoints.token());
    let saved = format!("the profile `{}` was saved in {}", s.profile, file.path.display());
    let again = format!("lightfi-token configure --profile {} --force", s.profile);
    match client_check::check(&http, &s.client, &s.redirect_uri) {
        Ok(Verdict::Authenticated) => {
            report::note(&format!("{url} accepts client {id}"));
            Ok(())
        }
        Ok(Verdict::SecretRejected(e)) => Err(Error::config(
            format!(
                "the client secret is missing or wrong for client {id} ({url} answered `{}`)",
                e.error
            ),
            format!(
                "{saved}; run `{again}` and give the app client's secret (the AWS console shows it under \
                 the user pool's App integration → App clients; a client without one takes an empty answer)"
            ),
        )),
        Ok(Verdict::Refused(e)) => Err(Error::config(
            format!("{url} refused client {id}: {e}"),
            format!(
                "{saved}; check the client id, redirect URI and scope with the app client's settings, then run `{again}`"
            ),
        )),
        Err(Failure::WrongUrl(why)) => Err(Error::config(
            why,
            format!(
                "{saved}; fix the OAuth URL (the hosted UI's base URL ending in /oauth2) with `{again} --oauth-url URL`"
            ),
        )),
        Err(failure) => Err(Error::Unchecked {
            msg: format!("{}; the client could not be checked", failure.describe()),
            hint: format!(
                "{saved}; check the network and the OAuth URL, then run `lightfi-token configure --profile {}` \
                 again to check the client (it changes nothing)",
                s.profile
            ),
        }),
    }
}

/// `--show`: the settings in use and where each comes from; the secret only as set or not set.
fn show(s: &Settings) -> Result<()> {
    let from = |source: Source| source.describe(&s.profile);
    let src = &s.sources;
    let secret = match src.client_secret {
        Some(source) => format!("set  ({})", from(source)),
        None => "not set".to_string(),
    };
    let text = format!(
        "profile:       {}  ({})\n\
         config file:   {}\n\
         client id:     {}  ({})\n\
         client secret: {secret}\n\
         oauth url:     {}  ({})\n\
         redirect uri:  {}  ({})\n\
         scope:         {}  ({})\n",
        s.profile,
        from(src.profile),
        s.home.join("config.toml").display(),
        s.client.id,
        from(src.client_id),
        s.client.endpoints.base,
        from(src.oauth_url),
        s.redirect_uri,
        from(src.redirect_uri),
        s.scope,
        from(src.scope),
    );
    report::print(text.as_bytes())
}
