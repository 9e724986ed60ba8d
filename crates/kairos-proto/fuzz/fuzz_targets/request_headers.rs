//! Signed-request header parsing and verification on arbitrary header values.
#![no_main]

use kairos_proto::RequestAuth;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(5, '\n');
    let values: Vec<&str> = (0..5).map(|_| parts.next().unwrap_or("")).collect();
    let names = [
        "x-kairos-key",
        "x-kairos-recipient",
        "x-kairos-time",
        "x-kairos-nonce",
        "x-kairos-signature",
    ];
    let get = |n: &str| names.iter().position(|k| *k == n).map(|i| values[i]);
    if let Ok(auth) = RequestAuth::from_headers(get) {
        let _ = auth.verify(&auth.recipient, "GET", "/", &[0; 32], auth.timestamp, 300);
    }
});
