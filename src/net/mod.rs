//! The HTTP building blocks every peer connctl talks to goes through: DNS, TCP,
//! a MID server's CONNECT (`proxy`), TLS and mutual TLS (`tls`), HTTP/1.1 and
//! HTTP/2 (`transport`), the bounds on what is read (`limits`), and the
//! `Trace` they record into. Below `outbound` (a connection's stages) and
//! `secrets` (Vault), so neither imports the other for its HTTP.

pub mod limits;
pub mod proxy;
mod quickack;
pub mod tls;
pub mod trace;
pub mod transport;
mod upload;

pub use trace::{Expiry, Stage, StageRecord, Trace};
