//! `completions`, `man` and `--version`, driven through the real shells and
//! `man`: bash completes commands, options and values with the generated
//! script, also when bash-completion loads it from where the README says to
//! put it; fish completes through `complete -C`; zsh parses its script; `man`
//! renders the page without a warning and finds it where the README puts it.
//! Shells and man-db are Debian packages, installed when missing.

#![cfg(target_os = "linux")]

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::*;

/// `lightfi-token ARGS`, which must succeed; its stdout.
fn generate(t: &TestEnv, args: &[&str]) -> String {
    let out = t.run(args);
    assert_exit(&out, 0);
    assert!(out.stderr.is_empty(), "{}", stderr(&out));
    stdout(&out)
}

/// Each `WORDS… => OFFERS` line of a shell's output, as a map.
fn offers(output: &str) -> BTreeMap<String, Vec<String>> {
    output
        .lines()
        .filter_map(|line| line.split_once(" => "))
        .map(|(line, offered)| {
            (
                line.to_string(),
                offered.split_whitespace().map(str::to_string).collect(),
            )
        })
        .collect()
}

#[track_caller]
fn assert_offers(offers: &BTreeMap<String, Vec<String>>, line: &str, expected: &[&str]) {
    let got = offers
        .get(line)
        .unwrap_or_else(|| panic!("no completion of `{line}` in {offers:#?}"));
    for word in expected {
        assert!(
            got.iter().any(|g| g == word),
            "`{line}<TAB>` does not offer {word}: {got:?}"
        );
    }
}

/// The completions of each line, as bash computes them with the script's
/// completion function (the last word of each line is the one completed).
const BASH_PROBE: &str = r#"
offer() {
  COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}; COMPREPLY=()
  "$fn" lightfi-token "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
  echo "$* => ${COMPREPLY[*]}"
}
fn=$(complete -p lightfi-token | sed -n 's/.* -F \([^ ]*\) .*/\1/p')
offer lightfi-token ''
offer lightfi-token lo
offer lightfi-token login --
offer lightfi-token serve --
offer lightfi-token --format ''
offer lightfi-token completions ''
"#;

#[test]
fn bash_completes_commands_options_and_values() {
    let t = TestEnv::new();
    let script = t.home().join("lightfi-token.bash");
    std::fs::write(&script, generate(&t, &["completions", "bash"])).unwrap();
    let out = t
        .tool("bash")
        .args(["--norc", "--noprofile", "-c"])
        .arg(format!("source \"$1\" && complete -p lightfi-token && {BASH_PROBE}"))
        .arg("bash")
        .arg(&script)
        .output()
        .unwrap();
    assert_exit(&out, 0);
    let text = stdout(&out);
    let registered = text.lines().next().unwrap();
    assert!(
        registered.starts_with("complete ") && registered.contains(" -F _") && registered.ends_with(" lightfi-token"),
        "{registered}"
    );
    let offers = offers(&text);
    assert_offers(
        &offers,
        "lightfi-token ",
        &[
            "get",
            "configure",
            "login",
            "logout",
            "status",
            "git-credential",
            "exec",
            "serve",
            "completions",
            "man",
            "--format",
            "-r",
        ],
    );
    assert_eq!(offers["lightfi-token lo"], ["login", "logout"]);
    assert_offers(
        &offers,
        "lightfi-token login --",
        &["--no-browser", "--refresh-token-stdin", "--timeout", "--profile"],
    );
    assert_offers(&offers, "lightfi-token serve --", &["--port", "--show-key"]);
    assert_offers(
        &offers,
        "lightfi-token --format ",
        &["json", "raw", "header", "exec-credential"],
    );
    assert_offers(
        &offers,
        "lightfi-token completions ",
        &["bash", "zsh", "fish", "powershell", "elvish"],
    );
}

#[test]
fn bash_completion_loads_the_script_from_the_readme_location() {
    TestTools::Apt(&["bash-completion"]).ensure();
    let t = TestEnv::new();
    let dir = t.home().join(".local/share/bash-completion/completions");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("lightfi-token"), generate(&t, &["completions", "bash"])).unwrap();
    // As an interactive bash does: bash-completion, which finds the script
    // by the command's name on first use (XDG_DATA_HOME defaults to ~/.local/share).
    let out = t
        .tool("bash")
        .args(["--norc", "--noprofile", "-c"])
        .arg(format!(
            "source /usr/share/bash-completion/bash_completion
             complete -p lightfi-token 2>/dev/null && echo 'loaded too early'
             if declare -F _comp_load >/dev/null; then _comp_load lightfi-token; else __load_completion lightfi-token; fi
             complete -p lightfi-token && {BASH_PROBE}"
        ))
        .output()
        .unwrap();
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert!(!text.contains("loaded too early"), "{text}");
    assert_offers(&offers(&text), "lightfi-token ", &["login", "logout", "status"]);
}

#[test]
fn fish_completes_commands_and_options() {
    TestTools::Apt(&["fish"]).ensure();
    let t = TestEnv::new();
    // Where the README puts it; fish loads it on first use of a command
    // that is on PATH, as lightfi-token is once installed.
    let dir = t.home().join(".config/fish/completions");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("lightfi-token.fish"), generate(&t, &["completions", "fish"])).unwrap();
    let mut path = std::ffi::OsString::from(bin().parent().unwrap());
    path.push(":");
    path.push(std::env::var_os("PATH").unwrap_or_default());
    let out = t
        .tool("fish")
        .env("PATH", path)
        .arg("-c")
        .arg(
            "for line in 'lightfi-token ' 'lightfi-token lo' 'lightfi-token login --'
               echo $line' => '(complete -C $line | string replace -r '\\t.*' '' | string join ' ')
             end",
        )
        .current_dir(t.home())
        .output()
        .unwrap();
    assert_exit(&out, 0);
    let offers = offers(&stdout(&out));
    assert_offers(
        &offers,
        "lightfi-token ",
        &["login", "logout", "status", "serve", "man"],
    );
    assert_eq!(offers["lightfi-token lo"], ["login", "logout"]);
    assert_offers(&offers, "lightfi-token login --", &["--no-browser", "--timeout"]);
}

#[test]
fn zsh_accepts_its_script_as_a_completion_function() {
    TestTools::Apt(&["zsh"]).ensure();
    let t = TestEnv::new();
    let dir = t.home().join(".zfunc");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("_lightfi-token"), generate(&t, &["completions", "zsh"])).unwrap();
    // As the README sets it up: the folder on fpath before compinit.
    let out = t
        .tool("zsh")
        .args(["-f", "-c"])
        .arg(
            "zsh -n ~/.zfunc/_lightfi-token || exit 1
             fpath=(~/.zfunc $fpath); autoload -Uz compinit; compinit -u -d ~/.zcompdump
             print -r -- \"lightfi-token => $_comps[lightfi-token]\"",
        )
        .output()
        .unwrap();
    assert_exit(&out, 0);
    assert_eq!(
        stdout(&out).trim(),
        "lightfi-token => _lightfi-token",
        "{}",
        stderr(&out)
    );
}

#[test]
fn every_shell_gets_a_script_and_unknown_ones_are_usage_errors() {
    let t = TestEnv::new();
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        assert!(
            generate(&t, &["completions", shell]).contains("lightfi-token"),
            "{shell}"
        );
    }
    assert_exit(&t.run(&["completions", "tcsh"]), 2);
    assert_exit(&t.run(&["completions"]), 2);
}

/// `man ARGS` with a fixed width, in the test's environment.
fn man(t: &TestEnv, args: &[&std::ffi::OsStr]) -> std::process::Output {
    TestTools::Apt(&["man-db"]).ensure();
    t.tool("man")
        .env("MANWIDTH", "80")
        .env("LC_ALL", "C.UTF-8")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn man_renders_the_page_without_warnings() {
    let t = TestEnv::new();
    let page = t.home().join("lightfi-token.1");
    std::fs::write(&page, generate(&t, &["man"])).unwrap();
    let out = man(&t, &["--warnings=all".as_ref(), "-l".as_ref(), page.as_os_str()]);
    assert_exit(&out, 0);
    assert_eq!(stderr(&out), "", "groff's warnings");
    // man renders as nroff, which leaves some warnings out: groff as troff,
    // without man's input conversion, says them all.
    let groff = t.tool("groff").args(["-man", "-ww", "-z"]).arg(&page).output().unwrap();
    assert_exit(&groff, 0);
    assert_eq!(stderr(&groff), "", "groff's warnings");
    let text = stdout(&out);
    for expected in [
        "lightfi-token - Print a valid LightFi API access token",
        "SYNOPSIS",
        "GLOBAL OPTIONS",
        "--min-valid <SECS>",
        "lightfi-token login [OPTIONS]",
        "--no-browser",
        "lightfi-token exec [OPTIONS] [--] CMD...",
        "LIGHTFI_CLIENT_SECRET",
        "EXIT STATUS",
        "{\"access_token\":…,",
        env!("CARGO_PKG_VERSION"),
    ] {
        assert!(text.contains(expected), "the page lacks `{expected}`:\n{text}");
    }

    // The same check sees a warning when there is one.
    let broken = t.home().join("broken.1");
    std::fs::write(&broken, ".TH BROKEN 1\n.SH NAME\nbroken \\[nosuchchar]\n").unwrap();
    let out = man(&t, &["--warnings=all".as_ref(), "-l".as_ref(), broken.as_os_str()]);
    assert!(
        stderr(&out).contains("nosuchchar"),
        "no warning for an unknown character: {}",
        stderr(&out)
    );
}

#[test]
fn man_finds_the_page_where_the_readme_installs_it() {
    let t = TestEnv::new();
    // ~/.local/share/man is on man's path when ~/.local/bin is on PATH, as
    // it is for most users.
    let home = t.home();
    std::fs::create_dir_all(home.join(".local/bin")).unwrap();
    let man1 = home.join(".local/share/man/man1");
    std::fs::create_dir_all(&man1).unwrap();
    std::fs::write(man1.join("lightfi-token.1"), generate(&t, &["man"])).unwrap();
    let mut cmd_path = std::ffi::OsString::from(home.join(".local/bin"));
    cmd_path.push(":");
    cmd_path.push(std::env::var_os("PATH").unwrap_or_default());
    TestTools::Apt(&["man-db"]).ensure();
    let out = t
        .tool("man")
        .env("PATH", &cmd_path)
        .args(["-w", "lightfi-token"])
        .output()
        .unwrap();
    assert_exit(&out, 0);
    assert_eq!(Path::new(stdout(&out).trim()), man1.join("lightfi-token.1"));
}

#[test]
fn man_install_puts_the_page_where_man_looks_beside_cargos_bin() {
    let t = TestEnv::new();
    // As after `cargo install`: the program in ~/.cargo/bin, only that on PATH.
    let bin = t.home().join(".cargo/bin");
    std::fs::create_dir_all(&bin).unwrap();
    let program = bin.join("lightfi-token");
    std::fs::copy(common::bin(), &program).unwrap();
    let out = t.run_cmd({
        let mut installed = t.tool(&program);
        installed.args(["man", "--install"]);
        installed
    });
    assert_exit(&out, 0);
    let page = t.home().join(".cargo/share/man/man1/lightfi-token.1");
    assert!(
        stderr(&out).contains(&page.display().to_string()),
        "says where: {}",
        stderr(&out)
    );
    assert_eq!(std::fs::read(&page).unwrap(), generate(&t, &["man"]).into_bytes());

    let mut cmd_path = std::ffi::OsString::from(&bin);
    cmd_path.push(":");
    cmd_path.push(std::env::var_os("PATH").unwrap_or_default());
    TestTools::Apt(&["man-db"]).ensure();
    let out = t
        .tool("man")
        .env("PATH", &cmd_path)
        .env_remove("MANPATH")
        .args(["-w", "lightfi-token"])
        .output()
        .unwrap();
    assert_exit(&out, 0);
    assert_eq!(Path::new(stdout(&out).trim()), page);
}

#[test]
fn version_names_the_target_and_the_profile() {
    let t = TestEnv::new();
    let version = generate(&t, &["--version"]);
    // This test's own build, or the one LIGHTFI_TEST_BIN names (CI's
    // shipped build, made with the `dist` profile).
    let profile = match std::env::var_os("LIGHTFI_TEST_BIN").filter(|b| !b.is_empty()) {
        Some(_) => version.rsplit(", ").next().unwrap_or("").trim_end_matches(")\n"),
        None if cfg!(debug_assertions) => "debug",
        None => "release",
    };
    assert!(["debug", "release", "dist"].contains(&profile), "{version}");
    let prefix = format!(
        "lightfi-token {} ({}-",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::ARCH
    );
    assert!(version.starts_with(&prefix), "{version}");
    assert!(
        version.ends_with(&format!("-linux-gnu, {profile})\n"))
            || version.ends_with(&format!("-linux-musl, {profile})\n")),
        "{version}"
    );
}

#[test]
fn completions_and_man_need_no_settings() {
    let t = TestEnv::new();
    // No client id, and a config.toml that any other command refuses.
    std::fs::write(t.home().join("config.toml"), "[default\n").unwrap();
    for args in [&["completions", "bash"][..], &["man"], &["--profile", "x", "man"]] {
        let mut cmd = t.cmd(args);
        cmd.env_remove("LIGHTFI_CLIENT_ID");
        let out = t.run_cmd(cmd);
        assert_exit(&out, 0);
        assert!(!out.stdout.is_empty());
    }
    assert_exit(&t.run(&["status"]), 4);
    // They take none of the settings' options.
    assert_exit(&t.run(&["man", "--profile", "x"]), 2);
    assert_exit(&t.run(&["completions", "bash", "--home", "/tmp"]), 2);
}
