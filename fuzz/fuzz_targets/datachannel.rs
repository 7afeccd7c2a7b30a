//! Data-channel messages (`telepi::session::protocol::parse`) on arbitrary text.
//!
//! Beyond "no panic": whatever parses carries finite numbers only, oversize
//! messages are refused unread, and a ping's number comes back in the pong
//! as JSON that parses again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use telepi::session::protocol::{parse, Inbound, Outbound, MAX_MESSAGE_BYTES};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let parsed = parse(&text);
    if text.len() > MAX_MESSAGE_BYTES {
        assert!(parsed.is_err(), "oversize message accepted");
    }
    match parsed {
        // Clamped as parsed: nothing downstream sees a value out of range.
        Ok(Inbound::Drive {
            linear, angular, ..
        }) => assert!((-1.0..=1.0).contains(&linear) && (-1.0..=1.0).contains(&angular)),
        Ok(Inbound::Servo { value, .. }) => assert!((-1.0..=1.0).contains(&value)),
        Ok(Inbound::Ping { t }) => {
            let pong = Outbound::Pong { t: t.clone() }.to_json();
            let back: serde_json::Value = serde_json::from_str(&pong).expect("pong is JSON");
            assert_eq!(back["type"], "pong");
            assert_eq!(back["t"], serde_json::Value::Number(t));
        }
        Ok(_) => {}
        Err(reason) => {
            // The reason goes back to the peer inside an error message.
            let json = Outbound::error(reason).to_json();
            assert!(serde_json::from_str::<serde_json::Value>(&json).is_ok());
        }
    }
});
