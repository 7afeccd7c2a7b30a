//! STUN messages (RFC 8489) as telepi's own STUN and TURN clients need them:
//! a parser that walks the attributes, and a builder that can end a message
//! with MESSAGE-INTEGRITY. (str0m's parser insists on MESSAGE-INTEGRITY, which
//! plain STUN answers and TURN's 401 challenge do not carry.)

use aws_lc_rs::hmac;

pub const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];
const HEADER: usize = 20;

// Message types: method and class bits together (RFC 8489 §5, RFC 8656 §17).
pub const BINDING_REQUEST: u16 = 0x0001;
pub const BINDING_SUCCESS: u16 = 0x0101;
pub const BINDING_ERROR: u16 = 0x0111;
pub const ALLOCATE_REQUEST: u16 = 0x0003;
pub const ALLOCATE_SUCCESS: u16 = 0x0103;
pub const ALLOCATE_ERROR: u16 = 0x0113;
pub const REFRESH_REQUEST: u16 = 0x0004;
pub const REFRESH_SUCCESS: u16 = 0x0104;
pub const REFRESH_ERROR: u16 = 0x0114;

// Attribute types.
pub const MAPPED_ADDRESS: u16 = 0x0001;
pub const USERNAME: u16 = 0x0006;
pub const MESSAGE_INTEGRITY: u16 = 0x0008;
pub const ERROR_CODE: u16 = 0x0009;
pub const LIFETIME: u16 = 0x000d;
pub const REALM: u16 = 0x0014;
pub const NONCE: u16 = 0x0015;
pub const REQUESTED_TRANSPORT: u16 = 0x0019;
pub const XOR_MAPPED_ADDRESS: u16 = 0x0020;

/// A received message, borrowed from the datagram.
#[derive(Debug)]
pub struct Message<'a> {
    pub kind: u16,
    pub transaction: [u8; 12],
    attributes: &'a [u8],
}

impl<'a> Message<'a> {
    /// None unless `data` is exactly one well-formed STUN message.
    pub fn parse(data: &'a [u8]) -> Option<Message<'a>> {
        let header = data.get(..HEADER)?;
        let length = usize::from(u16::from_be_bytes([header[2], header[3]]));
        if header[4..8] != MAGIC_COOKIE || data.len() != HEADER + length {
            return None;
        }
        let message = Message {
            kind: u16::from_be_bytes([header[0], header[1]]),
            transaction: header[8..20].try_into().expect("12 bytes"),
            attributes: &data[HEADER..],
        };
        let mut rest = message.attributes;
        while !rest.is_empty() {
            next_attribute(&mut rest)?;
        }
        Some(message)
    }

    /// (type, value) of each attribute, in order.
    pub fn attributes(&self) -> impl Iterator<Item = (u16, &'a [u8])> {
        let mut rest = self.attributes;
        std::iter::from_fn(move || next_attribute(&mut rest))
    }

    /// The first attribute of this type.
    pub fn attribute(&self, kind: u16) -> Option<&'a [u8]> {
        self.attributes().find(|(k, _)| *k == kind).map(|(_, v)| v)
    }

    /// ERROR-CODE as (code, reason phrase).
    pub fn error(&self) -> Option<(u16, String)> {
        let value = self.attribute(ERROR_CODE).filter(|v| v.len() >= 4)?;
        let code = u16::from(value[2] & 0x07) * 100 + u16::from(value[3]);
        Some((code, String::from_utf8_lossy(&value[4..]).into_owned()))
    }
}

/// Takes one attribute off the front of `rest`; values are padded to 4 bytes.
fn next_attribute<'a>(rest: &mut &'a [u8]) -> Option<(u16, &'a [u8])> {
    let kind = u16::from_be_bytes([*rest.first()?, *rest.get(1)?]);
    let len = usize::from(u16::from_be_bytes([*rest.get(2)?, *rest.get(3)?]));
    let value = rest.get(4..4 + len)?;
    *rest = rest.get((4 + len).next_multiple_of(4)..)?;
    Some((kind, value))
}

/// Writes a message attribute by attribute, keeping the header's length right.
pub struct MessageBuilder {
    bytes: Vec<u8>,
}

impl MessageBuilder {
    pub fn new(kind: u16, transaction: [u8; 12]) -> MessageBuilder {
        let mut bytes = Vec::with_capacity(128);
        bytes.extend_from_slice(&kind.to_be_bytes());
        bytes.extend_from_slice(&[0, 0]);
        bytes.extend_from_slice(&MAGIC_COOKIE);
        bytes.extend_from_slice(&transaction);
        MessageBuilder { bytes }
    }

    pub fn attribute(mut self, kind: u16, value: &[u8]) -> MessageBuilder {
        let len = u16::try_from(value.len()).expect("attribute under 64 KiB");
        self.bytes.extend_from_slice(&kind.to_be_bytes());
        self.bytes.extend_from_slice(&len.to_be_bytes());
        self.bytes.extend_from_slice(value);
        self.bytes.resize(self.bytes.len().next_multiple_of(4), 0);
        self.set_length();
        self
    }

    pub fn finish(self) -> Vec<u8> {
        self.bytes
    }

    /// Appends MESSAGE-INTEGRITY: HMAC-SHA1 with `key` over the message so
    /// far, its header's length already counting the 24 bytes of the attribute.
    pub fn finish_with_integrity(mut self, key: &[u8]) -> Vec<u8> {
        let covered = self.bytes.len();
        self.bytes.resize(covered + 24, 0);
        self.set_length();
        let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, key);
        let tag = hmac::sign(&key, &self.bytes[..covered]);
        self.bytes[covered..covered + 2].copy_from_slice(&MESSAGE_INTEGRITY.to_be_bytes());
        self.bytes[covered + 2..covered + 4].copy_from_slice(&20u16.to_be_bytes());
        self.bytes[covered + 4..].copy_from_slice(tag.as_ref());
        self.bytes
    }

    fn set_length(&mut self) {
        let length = u16::try_from(self.bytes.len() - HEADER).expect("message under 64 KiB");
        self.bytes[2..4].copy_from_slice(&length.to_be_bytes());
    }
}

/// The long-term credential key (RFC 8489 §9.2.2), without SASLprep: telepi's
/// own credentials are ASCII.
pub fn long_term_key(username: &str, realm: &str, password: &str) -> [u8; 16] {
    super::md5::md5(format!("{username}:{realm}:{password}").as_bytes())
}

pub fn new_transaction_id() -> [u8; 12] {
    let mut id = [0u8; 12];
    aws_lc_rs::rand::fill(&mut id).expect("the system random source works");
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 5769 §2.4, "Sample Request with Long-Term Authentication".
    const RFC_5769_LONG_TERM: &str = "
        00 01 00 60 21 12 a4 42 78 ad 34 33 c6 ad 72 c0 29 da 41 2e
        00 06 00 12 e3 83 9e e3 83 88 e3 83 aa e3 83 83 e3 82 af e3 82 b9 00 00
        00 15 00 1c 66 2f 2f 34 39 39 6b 39 35 34 64 36 4f 4c 33 34 6f 4c 39 46
                    53 54 76 79 36 34 73 41
        00 14 00 0b 65 78 61 6d 70 6c 65 2e 6f 72 67 00
        00 08 00 14 f6 70 24 65 6d d6 4a 3e 02 b8 e0 71 2e 85 c9 a2 8c a8 96 66";

    fn hex(text: &str) -> Vec<u8> {
        text.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect()
    }

    #[test]
    fn long_term_integrity_matches_rfc_5769() {
        let vector = hex(RFC_5769_LONG_TERM);
        let username = "\u{30DE}\u{30C8}\u{30EA}\u{30C3}\u{30AF}\u{30B9}";
        // The password after SASLprep, as the RFC gives it.
        let key = long_term_key(username, "example.org", "TheMatrIX");
        let built = MessageBuilder::new(BINDING_REQUEST, vector[8..20].try_into().unwrap())
            .attribute(USERNAME, username.as_bytes())
            .attribute(NONCE, b"f//499k954d6OL34oL9FSTvy64sA")
            .attribute(REALM, b"example.org")
            .finish_with_integrity(&key);
        assert_eq!(built, vector);
    }

    #[test]
    fn parses_attributes_in_order() {
        let vector = hex(RFC_5769_LONG_TERM);
        let message = Message::parse(&vector).unwrap();
        assert_eq!(message.kind, BINDING_REQUEST);
        assert_eq!(message.transaction[..], vector[8..20]);
        let kinds: Vec<u16> = message.attributes().map(|(k, _)| k).collect();
        assert_eq!(kinds, [USERNAME, NONCE, REALM, MESSAGE_INTEGRITY]);
        assert_eq!(message.attribute(REALM), Some(&b"example.org"[..]));
        assert_eq!(message.error(), None);
    }

    #[test]
    fn reads_a_401_challenge() {
        // coturn's answer to an Allocate without credentials, written out by hand.
        let challenge = MessageBuilder::new(ALLOCATE_ERROR, [7; 12])
            .attribute(ERROR_CODE, b"\0\0\x04\x01Unauthorized")
            .attribute(NONCE, b"c1a2b3")
            .attribute(REALM, b"telepi.test")
            .finish();
        assert_eq!(
            &challenge[2..4],
            &[0, 48],
            "ERROR-CODE 20, NONCE 12, REALM 16 bytes"
        );
        let message = Message::parse(&challenge).unwrap();
        assert_eq!(message.kind, ALLOCATE_ERROR);
        assert_eq!(message.error(), Some((401, "Unauthorized".into())));
        assert_eq!(message.attribute(NONCE), Some(&b"c1a2b3"[..]));
    }

    #[test]
    fn refuses_what_is_not_one_whole_message() {
        let vector = hex(RFC_5769_LONG_TERM);
        assert!(
            Message::parse(&vector[..vector.len() - 1]).is_none(),
            "truncated"
        );
        let mut overrun = vector.clone();
        overrun[23] = 0x40; // USERNAME claims more than there is
        assert!(Message::parse(&overrun).is_none());
        let mut cookie = vector;
        cookie[4] = 0;
        assert!(Message::parse(&cookie).is_none());
        assert!(Message::parse(b"\x80\x60rtp").is_none());
    }
}
