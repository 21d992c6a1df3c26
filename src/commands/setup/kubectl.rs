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
//! `--server` only. A user or context of that name that is not lightfi-token's
//! is never overwritten or deleted.

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
    let user_is_ours =
        existing_user.is_none_or(|u| runs_lightfi_token(exec(u)["command"].as_str().unwrap_or_default()));
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

    let program =
        std::env::current_exe().map_err(|e| Error::unexpected(format!("cannot find this program's own path: {e}")))?;
    let program = program.to_str().ok_or_else(|| {
        Error::config(
            format!(
                "this program's path {} is not UTF-8, which a kubeconfig cannot hold",
                program.display()
            ),
            "install lightfi-token in a folder whose path is plain UTF-8",
        )
    })?;
    let plugin_args = plugin_args(profile);

    let mut commands: Vec<Vec<String>> = vec![];
    match entry(&config, "clusters", &args.cluster) {
        Some(cluster) => {
            let server = cluster["cluster"]["server"].as_str().unwrap_or_default();
            if let Some(given) = &args.server
                && given.trim_end_matches('/') != server.trim_end_matches('/')
            {
                report::warn(&format!(
                    "the cluster `{}` is already in the kubeconfig with server {server}: it is left as it is \
                     (--server {given} is not used)",
                    args.cluster
                ));
            }
        }
        None => {
            let server = args.server.as_deref().ok_or_else(|| Error::Usage {
                msg: format!("the cluster `{}` is not in the kubeconfig", args.cluster),
                hint: "pass --server https://… to add it, or --cluster with the name of a cluster already there \
                       (`kubectl config get-clusters`)"
                    .into(),
            })?;
            check_server(server)?;
            commands.push(words(&[
                "config",
                "set-cluster",
                &args.cluster,
                &format!("--server={server}"),
            ]));
        }
    }
    let wanted_exec = existing_user.is_some_and(|u| {
        let exec = exec(u);
        exec["apiVersion"] == EXEC_API_VERSION
            && exec["command"] == program
            && exec["args"] == serde_json::json!(plugin_args)
            && exec["interactiveMode"] == INTERACTIVE_MODE
            && exec["provideClusterInfo"].as_bool() != Some(true)
    });
    if !wanted_exec {
        let mut set = words(&[
            "config",
            "set-credentials",
            &user,
            &format!("--exec-api-version={EXEC_API_VERSION}"),
            &format!("--exec-command={program}"),
        ]);
        set.extend(plugin_args.iter().map(|a| format!("--exec-arg={a}")));
        set.extend(words(&[
            &format!("--exec-interactive-mode={INTERACTIVE_MODE}"),
            "--exec-provide-cluster-info=false",
        ]));
        commands.push(set);
    }
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
    fn only_https_servers_are_taken() {
        assert!(check_server("https://k8s.example:6443").is_ok());
        assert!(check_server("http://k8s.example:6443").is_err());
        assert!(check_server("https://me:pw@k8s.example").is_err());
        assert!(check_server("k8s.example").is_err());
    }
}
