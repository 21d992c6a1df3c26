//! lightfi-token: a credential helper that prints a valid LightFi API access
//! token (AWS Cognito OAuth2). The binary (`main.rs`) parses, dispatches to
//! [`commands`] and reports; everything else lives here so it can be tested
//! in process.
//!
//! Layers, top to bottom — data flows one way:
//! - [`cli`], [`commands`]: the command line, one file per command.
//! - [`token`]: the engine (cached → locked re-read → refresh → login) and
//!   the only writer of the [`store`].
//! - [`login`], [`oauth`], [`serve`], [`git`]: the flows and protocols, which
//!   return what they got and never store.
//! - [`config`], [`store`], [`keyring`], [`http`], [`process`], [`report`], [`secret`],
//!   [`output`], [`error`], [`jwt`]: settings, files, servers, children,
//!   messages and types.
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
pub mod oauth;
pub mod output;
pub mod platform;
pub mod process;
pub mod report;
pub mod secret;
pub mod serve;
pub mod store;
pub mod token;
