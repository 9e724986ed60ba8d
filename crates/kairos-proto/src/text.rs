//! The one text form for binary ids and keys: lower-case RFC 4648 base32 without padding.
//! URL- and filename-safe, case-insensitive on input, the same alphabet onion addresses use.

use data_encoding::BASE32_NOPAD;

pub(crate) fn encode(bytes: &[u8]) -> String {
    BASE32_NOPAD.encode(bytes).to_ascii_lowercase()
}

pub(crate) fn decode<const N: usize>(s: &str) -> Result<[u8; N], &'static str> {
    if s.len() != (N * 8).div_ceil(5) {
        return Err("wrong length");
    }
    let upper = s.to_ascii_uppercase();
    let v = BASE32_NOPAD
        .decode(upper.as_bytes())
        .map_err(|_| "not base32")?;
    v.try_into().map_err(|_| "wrong length")
}
