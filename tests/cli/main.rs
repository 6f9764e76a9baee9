//! End-to-end tests through the connctl binary. One test binary, one module per area.

mod demo;
mod inbound;
mod outbound;
mod outbound_oauth;
mod outbound_servers;
mod support;
