//! IKEv2 message parsing on arbitrary bytes: never a panic, and whatever parses re-emits to bytes
//! that parse to the same payloads.
#![no_main]

use control::wire::ikev2::{parse_chain, Message, PayloadType};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = Message::parse(data) {
        let bytes = message.to_bytes().expect("a parsed message fits its length fields");
        let again = Message::parse(&bytes).expect("re-emitted message parses");
        assert_eq!(again.payloads, message.payloads);
    }
    // The decrypted contents of an SK payload start at any payload type.
    if let Some((&first, rest)) = data.split_first() {
        let _ = parse_chain(PayloadType::from(first), rest);
    }
});
