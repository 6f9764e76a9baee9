//! connctl: manage integrations and their connections.

pub mod error;
pub mod model;
pub mod outbound;
pub mod secrets;
