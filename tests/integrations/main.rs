//! The ready-made snippets under `integrations/`, each proven with the real
//! tool it is written for (curl, kubectl, Python requests/httpx/httpie, xh,
//! Node fetch, newman, cargo, systemd) against local stubs on loopback. Tools
//! that are not on a fresh machine are installed by `.ci/run` under
//! `tests/tools/`; a missing tool fails its test with the command that
//! installs it.

#![cfg(unix)]

#[path = "../common/mod.rs"]
mod common;
mod support;

mod cargo_registry;
mod curl;
mod kubernetes;
mod node;
mod postman;
mod python;
mod services;
mod vscode;
