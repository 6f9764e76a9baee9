//! End-to-end tests through the connctl binary. One test binary, one module per area.

mod completions;
mod concurrency;
mod records;
mod records_profiles;
mod records_store;
mod secrets;
mod support;
