//! The envelope codec: any bytes read as a sequence of envelopes without a
//! panic, and what is read frames back to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shop_kit::rpc::envelope::{self, Next};

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    let mut reframed = Vec::new();
    while let Next::Whole(found, after) = envelope::next(rest) {
        assert!(after.len() < rest.len());
        envelope::frame(found.flags, found.payload, &mut reframed);
        rest = after;
    }
    assert_eq!(&data[..data.len() - rest.len()], &reframed[..]);
    if let Next::Partial { needed: Some(needed) } = envelope::next(rest) {
        assert!(needed > rest.len());
    }
});
