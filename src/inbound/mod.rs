//! The inbound side: which connection admits a remote system (`inbound check`)
//! and the endpoint it sends to (`inbound serve`).

pub mod check;
mod early;
pub mod pki;
pub mod serve;
pub mod spool;
mod tls;

pub use check::{Admission, CheckReport, Denial, admission, check};
pub use serve::{ServeOptions, serve};

/// The default `--max-body`: 10 MiB.
pub const DEFAULT_MAX_BODY: u64 = 10 * 1024 * 1024;

/// Parses a size: `10MiB`, `512KiB`, `1GiB`, `64kB`, `1MB` or plain bytes.
pub fn parse_size(text: &str) -> std::result::Result<u64, String> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (digits, unit) = trimmed.split_at(split);
    let number: u64 = digits
        .parse()
        .map_err(|_| format!("'{text}' is not a size: write e.g. 10MiB, 512KiB or 1048576"))?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        _ => {
            return Err(format!(
                "'{text}' has an unknown unit: use B, KiB, MiB, GiB (or kB, MB, GB)"
            ));
        }
    };
    number
        .checked_mul(factor)
        .ok_or_else(|| format!("'{text}' is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10MiB"), Ok(10 << 20));
        assert_eq!(parse_size("512KiB"), Ok(512 << 10));
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("2mb"), Ok(2_000_000));
        assert!(parse_size("ten").is_err());
        assert!(parse_size("10XB").is_err());
    }
}
