//! `lightfi-token setup kubectl --cluster NAME [--server URL]`: a kubeconfig
//! user whose token comes from lightfi-token as a client-go exec credential
//! plugin, as in integrations/kubernetes/kubeconfig.yaml, and a context
//! joining it to the cluster.
//!
//! Everything goes through `kubectl config`, which picks the file itself
//! (`KUBECONFIG`, else `~/.kube/config`). The plugin's command is this
//! binary's absolute path: kubectl is often started where PATH differs from
//! the shell's (IDEs, k9s, Lens). An existing cluster entry is used as it is
//! (its server and CA are never touched); a missing one is added with
//! `--server` and, given one, the CA that signed the server's certificate.
//! A user or context of that name that is not lightfi-token's is never
//! overwritten or deleted. A user is lightfi-token's by what setup wrote (its
//! plugin arguments), whatever the binary is called.

use base64::Engine;
use serde_json::Value;

use crate::cli::SetupKubectlArgs;
use crate::config::DEFAULT_PROFILE;
use crate::error::{Error, Result};
use crate::report;

use super::{Runner, runs_lightfi_token};

const EXEC_API_VERSION: &str = "client.authentication.k8s.io/v1";
const INTERACTIVE_MODE: &str = "IfAvailable";

pub fn run(args: &SetupKubectlArgs, profile: &str) -> Result<()> {
    let user = args.user.clone().unwrap_or_else(|| default_user(profile));
    let context = args
        .context
        .clone()
        .unwrap_or_else(|| format!("{user}@{}", args.cluster));
    let runner = Runner::new(args.dry_run);
    let config = view(&runner)?;
    let existing_user = entry(&config, "users", &user);
    let existing_context = entry(&config, "contexts", &context);
    let user_is_ours = existing_user.is_none_or(is_ours);
    let context_is_ours = existing_context.is_none_or(|c| c["context"]["user"].as_str() == Some(user.as_str()));
    if args.remove {
        return remove(
            &runner,
            &user,
            &context,
            existing_user.is_some() && user_is_ours,
            existing_context.is_some() && context_is_ours,
            args.dry_run,
        );
    }
    if !user_is_ours {
        return Err(Error::config(
            format!("the kubeconfig already has a user `{user}` that does not run lightfi-token"),
            "pass --user with another name (lightfi-token never overwrites another user entry)",
        ));
    }
    if !context_is_ours {
        return Err(Error::config(
            format!("the kubeconfig already has a context `{context}` with another user"),
            "pass --context with another name (lightfi-token never overwrites another context)",
        ));
    }

    let program = own_path()?;
    let program = program.as_str();
    let mut commands = cluster_commands(args, entry(&config, "clusters", &args.cluster))?;
    commands.extend(user_command(existing_user, &user, program, profile));
    let wanted_context =
        existing_context.is_some_and(|c| c["context"]["cluster"].as_str() == Some(args.cluster.as_str()));
    if !wanted_context {
        commands.push(words(&[
            "config",
            "set-context",
            &context,
            &format!("--cluster={}", args.cluster),
            &format!("--user={user}"),
        ]));
    }

    if commands.is_empty() {
        report::note(&format!(
            "the kubeconfig's context `{context}` already uses lightfi-token; nothing to change"
        ));
        return Ok(());
    }
    for command in &commands {
        runner.change("kubectl", command)?;
    }
    if !args.dry_run {
        report::note(&format!(
            "added to the kubeconfig{}: user `{user}` (token from {program}), context `{context}` (cluster `{}`). \
             Try `kubectl --context {context} get --raw /version`; `kubectl config use-context {context}` makes it \
             the default; `lightfi-token setup kubectl --cluster {} --remove` undoes it",
            which_file(),
            args.cluster,
            args.cluster,
        ));
    }
    Ok(())
}

/// This binary's absolute path, which the plugin entry names.
fn own_path() -> Result<String> {
    let program =
        std::env::current_exe().map_err(|e| Error::unexpected(format!("cannot find this program's own path: {e}")))?;
    program.to_str().map(str::to_string).ok_or_else(|| {
        Error::config(
            format!(
                "this program's path {} is not UTF-8, which a kubeconfig cannot hold",
                program.display()
            ),
            "install lightfi-token in a folder whose path is plain UTF-8",
        )
    })
}

/// `kubectl config set-credentials` for the plugin, unless the user is so already.
fn user_command(existing: Option<&Value>, user: &str, program: &str, profile: &str) -> Option<Vec<String>> {
    let plugin_args = plugin_args(profile);
    let wanted = existing.is_some_and(|u| {
        let exec = exec(u);
        exec["apiVersion"] == EXEC_API_VERSION
            && exec["command"] == program
            && exec["args"] == serde_json::json!(plugin_args)
            && exec["interactiveMode"] == INTERACTIVE_MODE
            && exec["provideClusterInfo"].as_bool() != Some(true)
    });
    if wanted {
        return None;
    }
    let mut set = words(&[
        "config",
        "set-credentials",
        user,
        &format!("--exec-api-version={EXEC_API_VERSION}"),
        &format!("--exec-command={program}"),
    ]);
    set.extend(plugin_args.iter().map(|a| format!("--exec-arg={a}")));
    set.extend(words(&[
        &format!("--exec-interactive-mode={INTERACTIVE_MODE}"),
        "--exec-provide-cluster-info=false",
    ]));
    Some(set)
}

/// The commands that add the cluster when the kubeconfig lacks it; none
/// (and a warning for each flag not used) when it is there.
fn cluster_commands(args: &SetupKubectlArgs, existing: Option<&Value>) -> Result<Vec<Vec<String>>> {
    if let Some(cluster) = existing {
        let server = cluster["cluster"]["server"].as_str().unwrap_or_default();
        let unused = [
            args.server
                .as_deref()
                .filter(|given| given.trim_end_matches('/') != server.trim_end_matches('/'))
                .map(|given| format!("--server {given}")),
            args.certificate_authority
                .as_ref()
                .map(|_| "--certificate-authority".to_string()),
            args.certificate_authority_data
                .as_ref()
                .map(|_| "--certificate-authority-data".to_string()),
        ];
        for flag in unused.into_iter().flatten() {
            report::warn(&format!(
                "the cluster `{}` is already in the kubeconfig with server {server}: it is left as it is \
                 ({flag} is not used)",
                args.cluster
            ));
        }
        return Ok(vec![]);
    }
    let server = args.server.as_deref().ok_or_else(|| Error::Usage {
        msg: format!("the cluster `{}` is not in the kubeconfig", args.cluster),
        hint: "pass --server https://… to add it, or --cluster with the name of a cluster already there \
               (`kubectl config get-clusters`)"
            .into(),
    })?;
    check_server(server)?;
    let mut set = words(&["config", "set-cluster", &args.cluster, &format!("--server={server}")]);
    if let Some(file) = &args.certificate_authority {
        let file = check_ca_file(file)?;
        // Embedded: the kubeconfig keeps working when the file moves.
        set.extend([format!("--certificate-authority={file}"), "--embed-certs=true".into()]);
    }
    let mut commands = vec![set];
    if let Some(data) = &args.certificate_authority_data {
        let data = check_ca_data(data)?;
        if args.cluster.contains('.') {
            return Err(Error::Usage {
                msg: format!(
                    "`kubectl config set` cannot name the cluster `{}` (its name has a dot) to set \
                     --certificate-authority-data",
                    args.cluster
                ),
                hint: "write the certificate to a file (`base64 -d > ca.pem`) and pass --certificate-authority ca.pem"
                    .into(),
            });
        }
        let property = format!("clusters.{}.certificate-authority-data", args.cluster);
        commands.push(words(&["config", "set", &property, &data]));
    }
    Ok(commands)
}

/// A readable PEM certificate file, by its absolute path.
fn check_ca_file(file: &std::path::Path) -> Result<String> {
    let bad = |why: String| Error::Usage {
        msg: format!("--certificate-authority {}: {why}", file.display()),
        hint: "give the cluster's CA certificate as a PEM file (`-----BEGIN CERTIFICATE-----`)".into(),
    };
    let text = std::fs::read(file).map_err(|e| bad(format!("cannot read it: {e}")))?;
    if !is_pem_certificate(&text) {
        return Err(bad("it is not a PEM certificate".into()));
    }
    let path = std::fs::canonicalize(file).map_err(|e| bad(format!("cannot resolve its path: {e}")))?;
    path.to_str()
        .map(str::to_string)
        .ok_or_else(|| bad("its path is not UTF-8, which a kubeconfig cannot hold".into()))
}

/// Base64 of a PEM certificate, as kubeconfig's `certificate-authority-data` holds it.
fn check_ca_data(data: &str) -> Result<String> {
    let data: String = data.chars().filter(|c| !c.is_whitespace()).collect();
    let pem = base64::engine::general_purpose::STANDARD.decode(&data);
    if pem.is_ok_and(|pem| is_pem_certificate(&pem)) {
        return Ok(data);
    }
    Err(Error::Usage {
        msg: "--certificate-authority-data is not the base64 of a PEM certificate".into(),
        hint: "give `base64 -w0 ca.pem` (as kubeconfig's certificate-authority-data holds it), or the file with \
               --certificate-authority"
            .into(),
    })
}

fn is_pem_certificate(bytes: &[u8]) -> bool {
    String::from_utf8_lossy(bytes).contains("-----BEGIN CERTIFICATE-----")
}

/// Whether a kubeconfig user runs lightfi-token: its plugin arguments are
/// the ones setup writes (whatever the binary is called: renamed,
/// versioned), or its program is named `lightfi-token` (as in the snippet).
pub(crate) fn is_ours(user: &Value) -> bool {
    let exec = exec(user);
    let args: Vec<&str> = exec["args"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let written = match args[..] {
        ["--format", "exec-credential"] => true,
        ["--format", "exec-credential", "--profile", profile]
        | ["--profile", profile, "--format", "exec-credential"] => !profile.is_empty(),
        _ => false,
    };
    written || runs_lightfi_token(exec["command"].as_str().unwrap_or_default())
}

fn remove(
    runner: &Runner,
    user: &str,
    context: &str,
    user_ours: bool,
    context_ours: bool,
    dry_run: bool,
) -> Result<()> {
    if !user_ours && !context_ours {
        report::note(&format!(
            "the kubeconfig has no user `{user}` or context `{context}` of lightfi-token's; nothing to remove"
        ));
        return Ok(());
    }
    if context_ours {
        runner.change("kubectl", &words(&["config", "delete-context", context]))?;
    }
    if user_ours {
        runner.change("kubectl", &words(&["config", "delete-user", user]))?;
    }
    if !dry_run {
        let removed: Vec<String> = [
            (context_ours, format!("context `{context}`")),
            (user_ours, format!("user `{user}`")),
        ]
        .into_iter()
        .filter_map(|(ours, what)| ours.then_some(what))
        .collect();
        report::note(&format!(
            "removed {} from the kubeconfig{} (the cluster entry stays)",
            removed.join(" and "),
            which_file()
        ));
    }
    Ok(())
}

/// `lightfi`, or `lightfi-PROFILE` for another profile than the default.
fn default_user(profile: &str) -> String {
    if profile == DEFAULT_PROFILE {
        "lightfi".into()
    } else {
        format!("lightfi-{profile}")
    }
}

/// The plugin's arguments: the ExecCredential format, and the profile when
/// it is not the default one.
fn plugin_args(profile: &str) -> Vec<String> {
    let mut args = words(&["--format", "exec-credential"]);
    if profile != DEFAULT_PROFILE {
        args.extend(words(&["--profile", profile]));
    }
    args
}

/// client-go runs exec plugins only for https servers.
fn check_server(server: &str) -> Result<()> {
    let ok = url::Url::parse(server).is_ok_and(|u| {
        u.scheme() == "https" && u.host().is_some() && u.username().is_empty() && u.password().is_none()
    });
    if ok {
        Ok(())
    } else {
        Err(Error::Usage {
            msg: "--server must be the API server's https URL (kubectl runs exec plugins only for https servers)"
                .into(),
            hint: "e.g. --server https://k8s.lightfi.example:6443".into(),
        })
    }
}

/// The merged kubeconfig as kubectl sees it (secrets redacted by kubectl).
fn view(runner: &Runner) -> Result<Value> {
    let out = runner.read("kubectl", &["config", "view", "-o", "json"])?;
    if !out.status.success() {
        return Err(Error::config(
            format!("cannot read the kubeconfig: {}", super::said(&out.stderr)),
            "fix what kubectl says (`kubectl config view` shows the same), then run this again",
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| {
        Error::unexpected(format!(
            "`kubectl config view -o json` printed something that is not JSON: {e}"
        ))
    })
}

/// The entry named `name` in the list `kind` (`users`, `contexts`, `clusters`).
fn entry<'a>(config: &'a Value, kind: &str, name: &str) -> Option<&'a Value> {
    config[kind]
        .as_array()?
        .iter()
        .find(|e| e["name"].as_str() == Some(name))
}

fn exec(user: &Value) -> &Value {
    &user["user"]["exec"]
}

fn words(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

/// ` (KUBECONFIG=…)` or ` (~/.kube/config)`.
fn which_file() -> String {
    match std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()) {
        Some(files) => format!(" ({})", files.to_string_lossy()),
        None => " (~/.kube/config)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_arguments_follow_the_profile() {
        assert_eq!(default_user("default"), "lightfi");
        assert_eq!(default_user("staging"), "lightfi-staging");
        assert_eq!(plugin_args("default"), ["--format", "exec-credential"]);
        assert_eq!(
            plugin_args("staging"),
            ["--format", "exec-credential", "--profile", "staging"]
        );
    }

    #[test]
    fn users_are_ours_by_the_arguments_setup_writes_whatever_the_binary_is_called() {
        let user =
            |command: &str, args: &[&str]| serde_json::json!({"user": {"exec": {"command": command, "args": args}}});
        assert!(is_ours(&user(
            "/opt/lightfi-token-1.2.0",
            &["--format", "exec-credential"]
        )));
        assert!(is_ours(&user(
            "/opt/lt",
            &["--format", "exec-credential", "--profile", "staging"]
        )));
        assert!(is_ours(&user(
            "/opt/lt",
            &["--profile", "staging", "--format", "exec-credential"]
        )));
        assert!(is_ours(&user("lightfi-token", &[])));
        assert!(!is_ours(&user("aws", &["eks", "get-token"])));
        assert!(!is_ours(&user("/opt/lt", &["--format", "exec-credential", "--other"])));
        assert!(!is_ours(&serde_json::json!({"user": {"username": "admin"}})));
    }

    #[test]
    fn ca_data_must_be_the_base64_of_a_pem_certificate() {
        use base64::Engine;
        let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        let b64 = base64::engine::general_purpose::STANDARD.encode(pem);
        assert_eq!(check_ca_data(&format!(" {b64}\n")).unwrap(), b64);
        assert!(check_ca_data(pem).is_err());
        assert!(check_ca_data(&base64::engine::general_purpose::STANDARD.encode("hello")).is_err());
    }

    #[test]
    fn only_https_servers_are_taken() {
        assert!(check_server("https://k8s.example:6443").is_ok());
        assert!(check_server("http://k8s.example:6443").is_err());
        assert!(check_server("https://me:pw@k8s.example").is_err());
        assert!(check_server("k8s.example").is_err());
    }
}
