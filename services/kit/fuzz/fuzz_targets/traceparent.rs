//! W3C traceparent: any text parses or is refused without a panic; what is
//! accepted is kept as sent and its child shares its trace id.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shop_kit::observe::trace_context::TraceParent;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(parent) = TraceParent::parse(text) {
        assert_eq!(parent.as_str(), text.trim());
        let child = TraceParent::parse(parent.child().as_str()).expect("a valid child");
        assert_eq!(child.as_str()[3..35], parent.as_str()[3..35]);
    }
});
