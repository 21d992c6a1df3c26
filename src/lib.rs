//! lightfi-token: a credential helper that prints a valid LightFi API access
//! token (AWS Cognito OAuth2). The binary (`main.rs`) parses, dispatches to
//! [`commands`] and reports; everything else lives here so it can be tested
//! in process.
//!
//! Layers, top to bottom — data flows one way:
//! - [`cli`], [`commands`]: the command line, one file or folder per command;
//!   `commands/serve/` is the long-running one, a loopback server answering
//!   through the engine as `get` does.
//! - [`token`] (a folder): the engine (cached → locked re-read → refresh →
//!   login) and the only writer of the [`store`].
//! - [`login`], [`oauth`], [`git`]: the flows and protocols, which return what
//!   they got and never store.
//! - [`vault`]: the login shared by a fleet in a Vault/OpenBao KV secret.
//! - [`config`] (a folder: flags, `config.toml`, the client as one unit),
//!   [`store`] (a folder), [`keyring`], [`http`], [`net`], [`process`], [`platform`],
//!   [`report`], [`secret`], [`output`], [`timestamp`], [`error`], [`jwt`], [`variables`]:
//!   settings, files, servers, children, messages and types.
#![deny(unsafe_code)]

pub mod cli;
pub mod client_check;
pub mod commands;
pub mod config;
pub mod error;
pub mod git;
pub mod http;
pub mod jwt;
pub mod keyring;
pub mod login;
pub mod net;
pub mod oauth;
pub mod output;
pub mod platform;
pub mod process;
pub mod report;
pub mod secret;
pub mod store;
pub mod timestamp;
pub mod token;
pub mod variables;
pub mod vault;

#[cfg(test)]
mod leak_tests;
