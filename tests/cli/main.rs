//! End-to-end tests through the connctl binary. One test binary, one module per area.

mod completions;
mod concurrency;
mod demo;
mod diff;
mod fleet;
mod history;
mod hostile;
mod hostile_input;
mod inbound;
mod outbound;
mod outbound_oauth;
mod outbound_oauth_hostile;
mod outbound_oidc;
mod outbound_servers;
mod printer;
mod private_bus;
mod records;
mod records_profiles;
mod records_store;
mod rotate;
mod rules;
mod secrets;
mod support;
mod transaction;
mod variables;
mod vault;
