//! `lightfi-token status`: what is stored for the profile, and who the
//! access token says the user is. Claims are decoded without verifying the
//! signature: this is a display for a person, never a security decision.
//! No token is ever printed. Exits 3 when not logged in, so scripts can ask.

use serde::Serialize;
use time::OffsetDateTime;

use crate::config::{self, Flags, Grant, Settings};
use crate::error::{Error, Result};
use crate::output::rfc3339;
use crate::report;
use crate::store::{RefreshTokenIn, Store};
use crate::token;
use crate::token::session;

pub fn run(settings: Result<Settings>, json: bool) -> Result<()> {
    let settings = &settings?;
    let status = status(settings)?;
    let text = if json {
        serde_json::to_string(&status).map_err(|e| Error::unexpected(e.to_string()))? + "\n"
    } else {
        render_text(&status)
    };
    report::print(text.as_bytes())?;
    if status.logged_in() {
        Ok(())
    } else {
        Err(Error::LoginRequired {
            msg: format!("not logged in (profile `{}`)", settings.profile),
        })
    }
}

/// `status --all`: one line per profile of `config.toml` (and `default`):
/// its client id and whether it is logged in. Never a secret.
pub fn run_all(flags: &Flags, json: bool) -> Result<()> {
    let mut names = config::profile_names(flags)?;
    if !names.iter().any(|n| n == config::DEFAULT_PROFILE) {
        names.insert(0, config::DEFAULT_PROFILE.to_string());
    }
    let rows: Vec<ProfileRow> = names
        .into_iter()
        .map(|profile| {
            let flags = Flags {
                profile: Some(profile.clone()),
                ..flags.clone()
            };
            match config::resolve_with(&flags, |name| std::env::var(name).ok()).and_then(|(s, _)| status(&s)) {
                Ok(status) => ProfileRow {
                    logged_in: status.logged_in(),
                    client_id: Some(status.client_id.clone()),
                    access_expires_at: status.access_token.as_ref().map(|a| a.expires_at.clone()),
                    problem: None,
                    profile,
                },
                Err(e) => ProfileRow {
                    profile,
                    client_id: None,
                    logged_in: false,
                    access_expires_at: None,
                    problem: Some(e.to_string()),
                },
            }
        })
        .collect();
    let text = if json {
        serde_json::to_string(&rows).map_err(|e| Error::unexpected(e.to_string()))? + "\n"
    } else {
        let mut out = format!(
            "{:<20} {:<28} {:<10} {}\n",
            "PROFILE", "CLIENT ID", "LOGGED IN", "ACCESS TOKEN"
        );
        for row in &rows {
            let access = match (&row.problem, &row.access_expires_at) {
                (Some(problem), _) => problem.clone(),
                (None, Some(at)) => format!("until {at}"),
                (None, None) => "none cached".into(),
            };
            out += &format!(
                "{:<20} {:<28} {:<10} {access}\n",
                row.profile,
                row.client_id.as_deref().unwrap_or("-"),
                if row.logged_in { "yes" } else { "no" }
            );
        }
        out
    };
    report::print(text.as_bytes())
}

#[derive(Debug, Serialize)]
struct ProfileRow {
    profile: String,
    client_id: Option<String>,
    logged_in: bool,
    access_expires_at: Option<String>,
    /// Why the profile's settings do not resolve (e.g. no client id).
    problem: Option<String>,
}

#[derive(Debug, Serialize)]
struct Status {
    pub profile: String,
    pub store: String,
    pub client_id: String,
    pub oauth_url: String,
    pub redirect_uri: String,
    pub scope: String,
    /// `access` or `id`: the token commands hand out.
    pub token_kind: &'static str,
    /// Where each setting came from: a flag, an environment variable's
    /// name, `config.toml [profile]` or `default`.
    pub sources: Sources,
    /// Logins stored for this profile with another client id, OAuth URL or scopes.
    pub other_logins: Vec<OtherLogin>,
    /// "store", "LIGHTFI_REFRESH_TOKEN", or null when there is none.
    pub refresh_token: Option<&'static str>,
    /// Where the stored refresh token is (null when none is stored). Read
    /// from the token file: `status` never opens the keyring.
    pub refresh_token_in: Option<Place>,
    /// The `storage` setting: auto, keyring or file.
    pub storage: &'static str,
    /// When the login ends: "ends in 6 d 3 h (…)", "… at the latest" for an
    /// imported refresh token, or why it is unknown; null when not logged in.
    pub session: Option<String>,
    /// The end as RFC 3339, when known.
    pub session_ends_at: Option<String>,
    /// During a rotation: which of `client_secrets` (from 0) the server accepted last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret_in_use: Option<usize>,
    #[serde(skip)]
    rotation: Option<String>,
    pub access_token: Option<AccessStatus>,
    /// The shared login, for `storage = "vault"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vault: Option<VaultStatus>,
    pub user: Option<String>,
    pub scopes: Vec<String>,
    /// `authorization_code` or `client_credentials`.
    pub grant: &'static str,
    /// Client-credentials tokens obtained today and this month (UTC): each is billed.
    pub token_requests: Option<TokenRequests>,
    /// The file whose token is served as it is, when the profile sets one.
    pub token_file: Option<String>,
}

#[derive(Debug, Serialize)]
struct TokenRequests {
    pub today: u64,
    pub this_month: u64,
}

#[derive(Debug, Serialize)]
struct Sources {
    pub profile: String,
    pub home: String,
    pub client_id: String,
    /// None when there is no client secret.
    pub client_secret: Option<String>,
    pub oauth_url: String,
    pub redirect_uri: String,
    pub scope: String,
    pub token_kind: String,
    pub storage: String,
}

/// Where a stored refresh token is.
#[derive(Debug, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
enum Place {
    /// In the OS keyring's entry for service `service` and account `account`.
    Keyring {
        backend: &'static str,
        service: &'static str,
        account: String,
    },
    /// In the token file, in plaintext (0600 on Unix).
    File { path: String },
}

#[derive(Debug, Serialize)]
struct OtherLogin {
    pub store: String,
    pub client_id: String,
    pub oauth_url: String,
    pub scope: Option<String>,
}

/// The shared record as read now, or why it could not be.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum VaultStatus {
    Read(token::shared_view::SharedView),
    Unreadable { problem: String },
}

#[derive(Debug, Serialize)]
struct AccessStatus {
    pub expires_at: String,
    pub expires_in: i64,
    pub valid: bool,
}

impl Status {
    /// Logged in: a refresh token, or an access token that still works.
    fn logged_in(&self) -> bool {
        // Machines need no login: their tokens come from the client or the file.
        let shared = matches!(&self.vault, Some(VaultStatus::Read(v)) if v.has_refresh_token);
        shared
            || self.token_requests.is_some()
            || self.token_file.is_some()
            || self.refresh_token.is_some()
            || self.access_token.as_ref().is_some_and(|a| a.valid)
    }
}

fn status(settings: &Settings) -> Result<Status> {
    let store = Store::new(settings);
    let tokens = store.load()?;
    let from_file = settings
        .token_file
        .as_deref()
        .map(crate::token::peek_token_file)
        .transpose()?;
    let from = |source: crate::config::Source| source.describe(&settings.profile);
    let sources = &settings.sources;
    let now = OffsetDateTime::now_utc();
    let rotation = crate::token::secret_in_use(settings);
    let refresh_token_in = match tokens.refresh_token_in {
        RefreshTokenIn::Keyring => Some(Place::Keyring {
            backend: crate::keyring::backend(),
            service: crate::keyring::SERVICE,
            account: store.keyring_account(),
        }),
        RefreshTokenIn::File => tokens.refresh_token.as_ref().map(|_| Place::File {
            path: store.path().display().to_string(),
        }),
    };
    let refresh_token = if settings.env_refresh_token.is_some() {
        Some("LIGHTFI_REFRESH_TOKEN")
    } else {
        refresh_token_in.as_ref().map(|_| "store")
    };
    let session_end = session::end(settings, &tokens);
    let claims = from_file
        .as_ref()
        .or(tokens.access.as_ref())
        .and_then(|a| crate::jwt::claims(a.token.expose()));
    let user = claims.as_ref().and_then(|c| {
        ["username", "cognito:username", "email", "sub"]
            .iter()
            .find_map(|k| c.get(*k)?.as_str().map(report::sanitize))
    });
    let scopes = claims
        .as_ref()
        .and_then(|c| c.get("scope")?.as_str().map(report::sanitize))
        .or_else(|| tokens.access.as_ref().and_then(|a| a.scope.clone()))
        .map(|s| s.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    Ok(Status {
        profile: settings.profile.clone(),
        store: store.path().display().to_string(),
        client_id: settings.client.id.clone(),
        oauth_url: settings.client.endpoints.base.clone(),
        redirect_uri: settings.redirect_uri.clone(),
        scope: settings.scope.clone(),
        token_kind: settings.token_kind.name(),
        sources: Sources {
            profile: from(sources.profile),
            home: from(sources.home),
            client_id: from(sources.client_id),
            client_secret: sources.client_secret.map(from),
            oauth_url: from(sources.oauth_url),
            redirect_uri: from(sources.redirect_uri),
            scope: from(sources.scope),
            token_kind: from(sources.token_kind),
            storage: from(sources.storage),
        },
        other_logins: store
            .others()
            .into_iter()
            .map(|o| OtherLogin {
                store: o.path.display().to_string(),
                client_id: o.client_id,
                oauth_url: o.oauth_url,
                scope: o.scope,
            })
            .collect(),
        refresh_token,
        refresh_token_in,
        storage: settings.storage.name(),
        session: refresh_token.map(|_| session::describe(session_end, now)),
        session_ends_at: match (refresh_token, session_end) {
            (Some(_), session::End::Known { at, .. }) => Some(rfc3339(at)),
            _ => None,
        },
        client_secret_in_use: rotation.as_ref().and_then(|(i, _)| *i),
        rotation: rotation.map(|(_, line)| line),
        access_token: from_file.as_ref().or(tokens.access.as_ref()).map(|a| AccessStatus {
            expires_at: rfc3339(a.expires_at),
            expires_in: a.seconds_left(now).max(0),
            valid: a.seconds_left(now) > 0,
        }),
        vault: settings
            .vault
            .as_ref()
            .map(|_| match token::shared_view::inspect(settings) {
                Ok(view) => VaultStatus::Read(view),
                Err(e) => VaultStatus::Unreadable { problem: e.to_string() },
            }),
        user,
        scopes,
        grant: settings.grant.name(),
        token_requests: (settings.grant == Grant::ClientCredentials).then(|| {
            let (today, this_month) = tokens.requests.as_ref().map_or((0, 0), |r| r.at(now));
            TokenRequests { today, this_month }
        }),
        token_file: settings.token_file.as_ref().map(|p| p.display().to_string()),
    })
}

fn render_text(s: &Status) -> String {
    let refresh = match (s.refresh_token, &s.refresh_token_in) {
        _ if s.token_file.is_some() => "none: the token file is served as it is".to_string(),
        _ if s.token_requests.is_some() => "none: tokens come from the client's credentials".to_string(),
        (
            Some("store"),
            Some(Place::Keyring {
                backend,
                service,
                account,
            }),
        ) => {
            format!("stored in the keyring ({backend}: service {service}, account {account})")
        }
        (Some("store"), Some(Place::File { path })) => {
            format!(
                "stored in the plaintext file {path} ({})",
                crate::platform::PRIVATE_FILE
            )
        }
        (Some(source), _) => format!("from {source} (not stored)"),
        (None, _) => "none (run `lightfi-token login`)".to_string(),
    };
    let access = match &s.access_token {
        Some(a) if a.valid => format!("valid until {} ({})", a.expires_at, minutes(a.expires_in)),
        Some(a) => format!("expired at {}", a.expires_at),
        None => "none cached".to_string(),
    };
    let src = &s.sources;
    let secret = match (&src.client_secret, &s.rotation) {
        (Some(source), Some(rotation)) => format!("set  ({source}); {rotation}"),
        (Some(source), None) => format!("set  ({source})"),
        (None, _) => "none".to_string(),
    };
    let mut out = format!(
        "profile:       {}  ({})\n\
         store:         {}\n\
         client id:     {}  ({})\n\
         client secret: {secret}\n\
         oauth url:     {}  ({})\n\
         redirect uri:  {}  ({})\n\
         scope:         {}  ({})\n\
         token handed:  {}  ({})\n\
         storage:       {}  ({})\n\
         refresh token: {refresh}\n\
         access token:  {access}\n",
        s.profile,
        src.profile,
        s.store,
        s.client_id,
        src.client_id,
        s.oauth_url,
        src.oauth_url,
        s.redirect_uri,
        src.redirect_uri,
        s.scope,
        src.scope,
        s.token_kind,
        src.token_kind,
        s.storage,
        src.storage,
    );
    if let Some(session) = &s.session {
        out += &format!("session:       {session}\n");
    }
    if let Some(path) = &s.token_file {
        out += &format!("token file:    {path} (served as it is)\n");
    }
    if let Some(counted) = &s.token_requests {
        out += &format!(
            "grant:         {}\ntoken requests: {} today, {} this month\n",
            s.grant, counted.today, counted.this_month
        );
    }
    if let Some(vault) = &s.vault {
        out += &format!("vault:         {}\n", vault_line(vault));
    }
    if let Some(user) = &s.user {
        out += &format!("user:          {user}\n");
    }
    if !s.scopes.is_empty() {
        out += &format!("scopes:        {}\n", s.scopes.join(" "));
    }
    if !s.other_logins.is_empty() {
        out += "other logins of this profile (another client id, OAuth URL or scopes):\n";
        for other in &s.other_logins {
            let scope = other.scope.as_deref().unwrap_or("(not recorded)");
            out += &format!(
                "  client id {}, oauth url {}, scopes {scope}: {}\n",
                other.client_id, other.oauth_url, other.store
            );
        }
    }
    out
}

/// `secret/data/x at http://…: version 7, expires …, lease held by h until …`.
fn vault_line(vault: &VaultStatus) -> String {
    let v = match vault {
        VaultStatus::Read(v) => v,
        VaultStatus::Unreadable { problem } => return format!("cannot read the shared login: {problem}"),
    };
    let Some(version) = v.version else {
        return format!(
            "{} at {}: no login there (run `lightfi-token login --storage vault`)",
            v.path, v.addr
        );
    };
    let lease = match (&v.lease_holder, &v.lease_until) {
        (Some(holder), Some(until)) => format!("lease held by {holder} until {until}"),
        _ => "no lease".into(),
    };
    let refresh = if v.has_refresh_token { "" } else { ", no refresh token" };
    let expires = v.expires_at.as_deref().unwrap_or("?");
    format!(
        "{} at {}: version {version}, access token until {expires}{refresh}, {lease}; this machine caches it in the store above",
        v.path, v.addr
    )
}

fn minutes(secs: i64) -> String {
    match secs {
        s if s < 120 => format!("{s} s left"),
        s => format!("{} min left", s / 60),
    }
}
