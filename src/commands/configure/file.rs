//! `config.toml` as the user wrote it: read and edited with `toml_edit`, so
//! the comments, the other profiles and the order of keys stay as they were;
//! written atomically (a temporary file in the same folder, fsynced, then
//! renamed over it), 0600 in a 0700 folder.

use std::io::Write;
use std::path::{Path, PathBuf};

use toml_edit::{DocumentMut, Item, Table, value};

use crate::error::{Error, Result};

/// The file, parsed; an absent file is an empty document.
pub struct ConfigFile {
    pub path: PathBuf,
    doc: DocumentMut,
}

/// One key's new value; None removes the key (the default applies).
pub type Change<'a> = (&'a str, Option<&'a str>);

impl ConfigFile {
    pub fn read(path: &Path) -> Result<ConfigFile> {
        let text = match crate::platform::read_trusted(path) {
            Ok(Some((text, _))) => text,
            Ok(None) => String::new(),
            Err(crate::platform::Untrusted::Io(e)) => return Err(Error::io("cannot read", path, e)),
            Err(crate::platform::Untrusted::Because(why)) => {
                return Err(Error::config(
                    format!("refusing to edit {}: {why}", path.display()),
                    "make the file and its folder yours and writable only by you (chmod 600 config.toml; chmod 700 its folder)",
                ));
            }
        };
        // The parser's message may quote the line, and a line may hold a
        // secret: name the line only.
        let doc = text.parse::<DocumentMut>().map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            Error::config(
                format!(
                    "malformed config file {}{}",
                    path.display(),
                    line.map(|l| format!(", line {l}")).unwrap_or_default()
                ),
                "fix the file by hand first: configure edits it in place and keeps everything else in it",
            )
        })?;
        Ok(ConfigFile {
            path: path.to_path_buf(),
            doc,
        })
    }

    /// Whether `[profile]` exists.
    pub fn has(&self, profile: &str) -> bool {
        self.doc.get(profile).is_some()
    }

    /// The string value of `key` in `[profile]`, if set.
    pub fn get(&self, profile: &str, key: &str) -> Result<Option<String>> {
        let Some(item) = self.doc.get(profile) else {
            return Ok(None);
        };
        let table = item.as_table_like().ok_or_else(|| self.not_a_table(profile))?;
        match table.get(key) {
            None => Ok(None),
            Some(item) => item.as_str().map(|s| Some(s.to_string())).ok_or_else(|| {
                Error::config(
                    format!("{} in [{profile}] of {} is not a string", key, self.path.display()),
                    format!("write it as {key} = \"…\", or remove it"),
                )
            }),
        }
    }

    /// Set or remove keys of `[profile]` (created at the end when missing).
    /// Keys already there keep their place and comments; new ones go last.
    pub fn apply(&mut self, profile: &str, changes: &[Change]) -> Result<()> {
        if !self.has(profile) {
            let mut table = Table::new();
            if !self.doc.is_empty() {
                table.decor_mut().set_prefix("\n");
            }
            self.doc.insert(profile, Item::Table(table));
        }
        let not_a_table = self.not_a_table(profile);
        let table = self.doc[profile].as_table_like_mut().ok_or(not_a_table)?;
        for (key, new) in changes {
            match new {
                Some(new) => match table.get_mut(key) {
                    // Replacing the value keeps the key's comments and spacing.
                    Some(item) if item.is_value() => {
                        let decor = item.as_value().map(|v| v.decor().clone());
                        *item = value(*new);
                        if let (Some(decor), Some(v)) = (decor, item.as_value_mut()) {
                            *v.decor_mut() = decor;
                        }
                    }
                    _ => {
                        table.insert(key, value(*new));
                    }
                },
                None => {
                    table.remove(key);
                }
            }
        }
        Ok(())
    }

    fn not_a_table(&self, profile: &str) -> Error {
        Error::config(
            format!("{profile} in {} is not a table", self.path.display()),
            format!("a profile is a table: [{profile}] on a line of its own, its keys below"),
        )
    }

    /// Replace the file with the document: never half written, 0600.
    pub fn write(&self) -> Result<()> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        create_private_dir(dir)?;
        let failed = |e: std::io::Error| Error::io("cannot write", &self.path, e);
        // tempfile creates the file 0600 on Unix.
        let mut temp = tempfile::Builder::new()
            .prefix(".config.toml.")
            .tempfile_in(dir)
            .map_err(failed)?;
        temp.write_all(self.doc.to_string().as_bytes()).map_err(failed)?;
        temp.as_file().sync_all().map_err(failed)?;
        temp.persist(&self.path).map_err(|e| failed(e.error))?;
        // The rename itself survives a crash once the folder is synced.
        #[cfg(unix)]
        if let Ok(folder) = std::fs::File::open(dir) {
            let _ = folder.sync_all();
        }
        Ok(())
    }
}

/// `dir` and its missing parents, the new ones 0700 (on Unix).
fn create_private_dir(dir: &Path) -> Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|e| Error::io("cannot create", dir, e))
}
