//! Where `configure` gets the values no flag gave: questions at a terminal,
//! or the same answers as lines of piped stdin.

use std::io::{BufRead, IsTerminal, Read, Write};

use crate::error::{Error, Result};
use crate::secret::ClientSecret;

/// Where the answers come from.
pub enum Answers {
    /// Questions on stderr, answers typed at the terminal; the secret hidden.
    Terminal,
    /// One line per question from stdin, in the questions' order; an empty
    /// or missing line keeps the value shown.
    Piped(Box<dyn BufRead>),
}

impl Answers {
    pub fn from_stdin() -> Answers {
        if std::io::stdin().is_terminal() {
            Answers::Terminal
        } else {
            Answers::Piped(Box::new(std::io::BufReader::new(std::io::stdin())))
        }
    }

    /// The answer to `question`, or `shown` (None: no value) when it is left empty.
    pub fn text(&mut self, question: &str, shown: Option<&str>) -> Result<Option<String>> {
        if let Answers::Terminal = self {
            let offer = shown.map(|s| format!(" [{s}]")).unwrap_or_default();
            eprint!("{question}{offer}: ");
            let _ = std::io::stderr().flush();
        }
        let line = self.line()?;
        let line = line.trim();
        Ok(if line.is_empty() {
            shown.map(str::to_string)
        } else {
            Some(line.to_string())
        })
    }

    /// The client secret: hidden at a terminal. Empty keeps `saved`, and
    /// with none saved means a public client (no secret).
    pub fn secret(&mut self, saved: Option<ClientSecret>) -> Result<Option<ClientSecret>> {
        let typed = match self {
            Answers::Terminal => {
                let keep = if saved.is_some() {
                    "Enter keeps the saved one"
                } else {
                    "empty for a public client"
                };
                rpassword::prompt_password(format!("Client secret (hidden; {keep}): "))
                    .map_err(|e| Error::unexpected(format!("cannot read the client secret from the terminal: {e}")))?
            }
            Answers::Piped(_) => self.line()?,
        };
        let typed = typed.trim_end_matches(['\r', '\n']);
        if typed.is_empty() {
            return Ok(saved);
        }
        checked_secret(typed).map(Some)
    }

    /// Yes only for an answer starting with y.
    pub fn confirm(&mut self, question: &str) -> Result<bool> {
        eprint!("{question} [y/N] ");
        let _ = std::io::stderr().flush();
        Ok(self.line()?.trim().to_ascii_lowercase().starts_with('y'))
    }

    fn line(&mut self) -> Result<String> {
        let mut line = String::new();
        let read = match self {
            Answers::Terminal => std::io::stdin().lock().read_line(&mut line),
            Answers::Piped(input) => input.read_line(&mut line),
        };
        read.map_err(|e| Error::unexpected(format!("cannot read an answer from stdin: {e}")))?;
        Ok(line)
    }
}

/// `--client-secret-stdin`: all of stdin, one trailing newline dropped
/// (hidden when stdin is a terminal). Empty means a public client.
pub fn secret_from_stdin() -> Result<Option<ClientSecret>> {
    let input = if std::io::stdin().is_terminal() {
        rpassword::read_password()
    } else {
        let mut input = String::new();
        std::io::stdin().read_to_string(&mut input).map(|_| input)
    }
    .map_err(|e| Error::unexpected(format!("cannot read the client secret from stdin: {e}")))?;
    let secret = input.strip_suffix('\n').unwrap_or(&input);
    let secret = secret.strip_suffix('\r').unwrap_or(secret);
    if secret.is_empty() {
        return Ok(None);
    }
    checked_secret(secret).map(Some)
}

/// A secret is one line of visible characters (the message never shows it).
fn checked_secret(secret: &str) -> Result<ClientSecret> {
    if secret.chars().any(|c| c.is_control() || c == ' ') {
        return Err(Error::Usage {
            msg: "the client secret has spaces, more than one line or control characters".into(),
            hint: "give the app client's secret as one line, exactly as the AWS console shows it".into(),
        });
    }
    Ok(ClientSecret::new(secret))
}
