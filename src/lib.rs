//! connctl: manage integrations and their connections.

pub mod change;
pub mod cli;
pub mod commands;
pub mod compare;
pub mod error;
pub mod inbound;
pub mod journal;
pub mod limits;
pub mod model;
pub mod monitor;
pub mod net;
pub mod outbound;
pub mod output;
pub mod pem;
pub mod report;
pub mod secret;
pub mod secrets;
pub mod store;
pub mod template;
pub mod text;
