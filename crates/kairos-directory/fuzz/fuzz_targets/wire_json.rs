//! Every JSON body of the directory API (`kairos_directory::wire`, and the error body of
//! `kairos_net`), as the client parses answers: never a panic; whatever parses serializes and
//! parses back to the same value. Listed node records are decoded as the client does before it
//! trusts them.
#![no_main]

use std::fmt::Debug;

use data_encoding::BASE64;
use kairos_directory::wire::{Info, NodeList, PublishResponse, SubscribeResponse, SyncPage};
use kairos_net::ErrorBody;
use kairos_proto::SignedNodeRecord;
use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use serde::Serialize;

fn round_trip<T: DeserializeOwned + Serialize + PartialEq + Debug>(data: &[u8]) -> Option<T> {
    let value: T = serde_json::from_slice(data).ok()?;
    let text = serde_json::to_vec(&value).expect("a parsed value serializes");
    let again: T = serde_json::from_slice(&text).expect("serialized JSON parses");
    assert_eq!(again, value);
    Some(value)
}

fuzz_target!(|data: &[u8]| {
    round_trip::<SubscribeResponse>(data);
    round_trip::<PublishResponse>(data);
    round_trip::<Info>(data);
    round_trip::<SyncPage>(data);
    round_trip::<ErrorBody>(data);
    if let Some(list) = round_trip::<NodeList>(data) {
        for node in list.nodes {
            let Ok(bytes) = BASE64.decode(node.record.as_bytes()) else {
                continue;
            };
            if let Ok(record) = SignedNodeRecord::from_bytes(bytes.clone()) {
                assert_eq!(record.as_bytes(), &bytes[..]);
                let _ = record.address_is_bound(false);
            }
        }
    }
});
