//! connctl: manage integrations and their connections.

pub mod error;
pub mod inbound;
pub mod model;
pub mod secrets;
