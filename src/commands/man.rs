//! `lightfi-token man`: the manual page, in roff, on stdout. Generated from
//! the command line definition (`cli`) like `--help`, so options cannot drift
//! from the program; environment, files and exit status are written here.
//! Reads no setting.

use clap::{Args, CommandFactory};
use clap_mangen::Man;
use clap_mangen::roff::{Roff, bold, italic, roman};

use crate::cli::Cli;
use crate::config::Flags;
use crate::error::{Error, Result};
use crate::report;

pub fn run(install: bool) -> Result<()> {
    if install {
        return self::install();
    }
    report::print(&page())
}

/// Write the page to `<prefix>/share/man/man1/` for the program's
/// `<prefix>/bin/`: man-db's `manpath` adds that folder for every `bin`
/// folder on PATH, so after `cargo install` (`~/.cargo/bin`)
/// `man lightfi-token` finds the page with no MANPATH set.
fn install() -> Result<()> {
    let exe =
        std::env::current_exe().map_err(|e| Error::unexpected(format!("cannot find this program's path: {e}")))?;
    let prefix = exe
        .parent()
        .and_then(|bin| bin.parent())
        .ok_or_else(|| Error::unexpected(format!("{} is not in a bin folder", exe.display())))?;
    let dir = prefix.join("share").join("man").join("man1");
    let path = dir.join("lightfi-token.1");
    std::fs::create_dir_all(&dir).map_err(|e| Error::io("cannot create", &dir, e))?;
    std::fs::write(&path, page()).map_err(|e| Error::io("cannot write", &path, e))?;
    report::note(&format!(
        "wrote {}: `man lightfi-token` finds it while {} is on PATH",
        path.display(),
        exe.parent().unwrap_or(prefix).display()
    ));
    Ok(())
}

/// The whole page: one page for all commands, since each is short.
pub fn page() -> Vec<u8> {
    let mut cli = Cli::command();
    cli.build();
    let global: Vec<clap::Id> = Flags::augment_args(clap::Command::new("global"))
        .get_arguments()
        .map(|a| a.get_id().clone())
        .collect();
    let is_global = |arg: &clap::Arg| global.contains(arg.get_id());
    let man = Man::new(cli.clone());

    let mut page = String::from(PREAMBLE);
    // Written here: clap_mangen leaves an empty date unquoted, which shifts
    // the source and the manual into the date's and the source's places.
    page += &format!(
        ".TH LIGHTFI-TOKEN 1 \"\" \"lightfi-token {}\" \"User Commands\"\n",
        env!("CARGO_PKG_VERSION")
    );
    page += &piece(|w| man.render_name_section(w));
    let mut roff = Roff::new();
    roff.control("SH", ["SYNOPSIS"])
        .text([bold("lightfi-token"), roman(" [OPTIONS]")])
        .control("br", [])
        .text([
            bold("lightfi-token"),
            roman(" "),
            italic("COMMAND"),
            roman(" [OPTIONS] [ARGS]"),
        ]);
    page += &body(&roff);
    page += &piece(|w| man.render_description_section(w));

    let mut roff = Roff::new();
    roff.control("SH", ["OPTIONS"]).text([
        roman("Without a command, lightfi-token runs "),
        bold("get"),
        roman(", which takes these options:"),
    ]);
    page += &body(&roff);
    page += &options(cli.get_arguments().filter(|a| !is_global(a)));

    let mut roff = Roff::new();
    roff.control("SH", ["GLOBAL OPTIONS"]).text([
        roman("Accepted before or after the name of any command but "),
        bold("completions"),
        roman(" and "),
        bold("man"),
        roman("; when given on both sides, the one after the command's name wins."),
    ]);
    page += &body(&roff);
    page += &options(cli.get_arguments().filter(|a| is_global(a)));

    let mut roff = Roff::new();
    roff.control("SH", ["COMMANDS"]);
    page += &body(&roff);
    let shown = |s: &&clap::Command| !s.is_hide_set() && s.get_name() != "help";
    for sub in cli.get_subcommands().filter(shown) {
        page += &command(sub, sub.get_name(), &is_global);
        // `setup`'s tools, each with its own options.
        for tool in sub.get_subcommands().filter(shown) {
            page += &command(tool, &format!("{} {}", sub.get_name(), tool.get_name()), &is_global);
        }
    }

    page += &body(&extra_sections());
    page += &piece(|w| man.render_version_section(w));
    ascii(&page).into_bytes()
}

/// `page` in ASCII: other characters (the `…` of the help texts) as roff's
/// `\[uXXXX]` escapes, which every roff reads whatever its input encoding.
fn ascii(page: &str) -> String {
    page.chars()
        .map(|c| {
            if c.is_ascii() {
                c.to_string()
            } else {
                format!("\\[u{:04X}]", u32::from(c))
            }
        })
        .collect()
}

/// The line every roff text from the `roff` crate starts with: it defines
/// the apostrophe that the text uses. Said once, at the top of the page.
const PREAMBLE: &str = ".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n";

/// What `render` writes, without the preamble.
fn piece(render: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>) -> String {
    let mut out = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = render(&mut out);
    let text = String::from_utf8_lossy(&out);
    text.strip_prefix(PREAMBLE).unwrap_or(&text).to_string()
}

fn body(roff: &Roff) -> String {
    piece(|w| roff.to_writer(w))
}

/// One command under COMMANDS: its synopsis, what it does, its own options
/// (the global ones are listed once, under GLOBAL OPTIONS).
fn command(sub: &clap::Command, name: &str, is_global: &dyn Fn(&clap::Arg) -> bool) -> String {
    let own: Vec<&clap::Arg> = sub
        .get_arguments()
        .filter(|a| !is_global(a) && !matches!(a.get_id().as_str(), "help" | "version"))
        .collect();
    let takes_options = own.iter().any(|a| !a.is_positional()) || sub.get_arguments().any(is_global);
    let mut synopsis = vec![bold(format!("lightfi-token {name}"))];
    if takes_options {
        synopsis.push(roman(" [OPTIONS]"));
    }
    for positional in own.iter().filter(|a| a.is_positional()) {
        let value = positional
            .get_value_names()
            .map_or_else(|| positional.get_id().as_str().to_uppercase(), |names| names.join(" "));
        if positional.is_trailing_var_arg_set() {
            synopsis.push(roman(" [--] "));
            synopsis.push(italic(format!("{value}...")));
        } else {
            synopsis.push(roman(" "));
            synopsis.push(italic(value));
        }
    }
    let mut roff = Roff::new();
    roff.control("SS", []).text(synopsis);
    paragraphs(&mut roff, sub.get_long_about().or(sub.get_about()));
    if name == "get" {
        // Its options are the top-level ones, listed under OPTIONS.
        roff.control("PP", [])
            .text([roman("Takes the options listed under OPTIONS.")]);
        return body(&roff);
    }
    body(&roff) + &options(own.into_iter())
}

/// Paragraphs of a help text, blank lines between them.
fn paragraphs(roff: &mut Roff, text: Option<&clap::builder::StyledStr>) {
    let Some(text) = text else { return };
    for (i, paragraph) in text.to_string().split("\n\n").enumerate() {
        if i > 0 {
            roff.control("PP", []);
        }
        roff.text([roman(paragraph.replace('\n', " "))]);
    }
}

/// `args` as clap_mangen renders options (a `.TP` list), without its
/// `.SH OPTIONS` heading, so they can go under any heading.
fn options<'a>(args: impl Iterator<Item = &'a clap::Arg>) -> String {
    let cmd = clap::Command::new("options")
        // `-V` may be among `args`: clap wants a version to go with it.
        .version(crate::cli::VERSION)
        .disable_help_flag(true)
        .disable_version_flag(true)
        .args(args.cloned());
    if cmd.get_arguments().next().is_none() {
        return String::new();
    }
    let rendered = piece(|w| Man::new(cmd).render_options_section(w));
    rendered.strip_prefix(".SH OPTIONS\n").unwrap_or(&rendered).to_string()
}

/// What the definition of the command line does not say.
fn extra_sections() -> Roff {
    let mut roff = Roff::new();
    let item = |roff: &mut Roff, term: &str, text: &str| {
        roff.control("TP", []).text([bold(term)]).text([roman(text)]);
    };

    roff.control("SH", ["ENVIRONMENT"]);
    roff.text([roman(
        "Settings are taken from the command line, then these variables, then the profile's table in \
         config.toml, then the LightFi defaults.",
    )]);
    for (name, text) in [
        (
            "LIGHTFI_CLIENT_ID, CLIENT_ID",
            "The OAuth client id of the Cognito app client (required).",
        ),
        (
            "LIGHTFI_CLIENT_SECRET, CLIENT_SECRET",
            "Its client secret, if it has one. Never taken from the command line.",
        ),
        (
            "LIGHTFI_OAUTH_URL",
            "The OAuth base URL; /authorize, /token and /revoke are below it.",
        ),
        (
            "LIGHTFI_REDIRECT_URI",
            "The callback URL registered on the app client (default http://localhost:3000).",
        ),
        ("LIGHTFI_SCOPE", "The scopes to request, space-separated."),
        (
            "LIGHTFI_PROFILE",
            "The profile: a table in config.toml and its own token store.",
        ),
        (
            "LIGHTFI_TOKEN_HOME",
            "The folder holding config.toml and the token store.",
        ),
        (
            "LIGHTFI_REFRESH_TOKEN",
            "A refresh token to use instead of the stored one (for CI); never written to disk.",
        ),
        (
            "LIGHTFI_TOKEN_KIND",
            "The token to hand out: access (the default) or id.",
        ),
        (
            "LIGHTFI_GRANT",
            "authorization_code (a person's login, the default) or client_credentials (the client's own).",
        ),
        (
            "LIGHTFI_TOKEN_FILE",
            "Serve the token another program keeps fresh in this file; no client or store is used.",
        ),
        (
            "LIGHTFI_LOG",
            "debug: show each HTTP exchange and lock step on stderr, secrets left out (as -v).",
        ),
        (
            "BROWSER",
            "The browser to open for a login: commands separated by colons, %s for the URL.",
        ),
        (
            "CI",
            "When set (to anything but 0 or false), never start a browser login.",
        ),
    ] {
        item(&mut roff, name, text);
    }

    roff.control("SH", ["FILES"]);
    for (name, text) in [
        (
            "~/.config/lightfi-token/",
            "The home folder on Linux (~/Library/Application Support/lightfi-token on macOS, \
             %APPDATA%\\lightfi-token on Windows).",
        ),
        ("<home>/config.toml", "Settings, one table per profile."),
        (
            "<home>/tokens/<profile>@<identity>.json",
            "The stored tokens (0600, in a 0700 folder); the identity is a digest of the client id, the OAuth \
             URL and the scopes, so each login has its own file.",
        ),
        (
            "<home>/tokens/<profile>.lock",
            "Taken while one process refreshes or logs in for the profile.",
        ),
        (
            "<home>/tokens/serve.key",
            "The key that serve requires in the X-Lightfi-Key header.",
        ),
    ] {
        item(&mut roff, name, text);
    }

    roff.control("SH", ["EXIT STATUS"]);
    for (code, text) in [
        ("0", "Success."),
        (
            "1",
            "An unexpected failure, such as a store folder that is not writable.",
        ),
        ("2", "A usage error."),
        (
            "3",
            "Login required: no refresh token, or the server rejected it. Run lightfi-token login.",
        ),
        (
            "4",
            "A configuration error: no client id, an unknown profile, a malformed or untrusted config.toml, \
             a secret that would go to another server, a store written by a newer version, invalid_client.",
        ),
        (
            "5",
            "The authorization server is unreachable, failing or answering nonsense; nothing stored was lost.",
        ),
        (
            "6",
            "Another lightfi-token held the profile's lock longer than --lock-timeout.",
        ),
        (
            "126, 127",
            "exec could not run the command (found but not runnable, not found).",
        ),
    ] {
        item(&mut roff, code, text);
    }
    roff
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_documents_every_command_and_option() {
        let page = String::from_utf8(page()).unwrap();
        assert!(
            page[PREAMBLE.len()..].starts_with(".TH LIGHTFI-TOKEN 1 \"\" \"lightfi-token "),
            "{page}"
        );
        for command in crate::cli::subcommand_names() {
            let roff = format!("lightfi\\-token {}", command.replace('-', "\\-"));
            assert!(page.contains(&roff), "no `{roff}`");
        }
        let mut cli = Cli::command();
        cli.build();
        let commands = std::iter::once(&cli).chain(
            cli.get_subcommands()
                .flat_map(|c| std::iter::once(c).chain(c.get_subcommands())),
        );
        let mut checked = 0;
        for command in commands {
            for arg in command.get_arguments().filter(|a| !a.is_hide_set()) {
                if let Some(long) = arg.get_long() {
                    let roff = format!("\\-\\-{}", long.replace('-', "\\-"));
                    assert!(page.contains(&roff), "{}: no `{roff}`", command.get_name());
                    checked += 1;
                }
            }
        }
        assert!(
            checked > 40,
            "only {checked} options seen: the subcommands were not built"
        );
        assert_eq!(
            page.matches("\\fB\\-\\-lock\\-timeout\\fR").count(),
            1,
            "global options once"
        );
        assert_eq!(page.matches(".SH OPTIONS").count(), 1, "{page}");
        assert_eq!(page.matches(PREAMBLE).count(), 1, "{page}");
        assert!(page.starts_with(PREAMBLE), "{page}");
        assert!(page.is_ascii());
        assert!(page.contains("{\"access_token\":\\[u2026],"), "{page}");
    }
}
