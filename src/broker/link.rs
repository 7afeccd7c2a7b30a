//! One MQTT 3.1.1 session with the broker, sans-IO: bytes from the broker and
//! time go in; bytes to send and events come out. The packets themselves are
//! mqtt-protocol's; the framing (and refusing oversized packets without
//! holding them in memory) is ours.

use std::collections::VecDeque;
use std::io::Cursor;
use std::time::{Duration, Instant};

use mqtt::control::variable_header::ConnectReturnCode;
use mqtt::packet::{
    ConnectPacket, DisconnectPacket, PingreqPacket, PubackPacket, PublishPacket,
    QoSWithPacketIdentifier, SubscribePacket, VariablePacket,
};
use mqtt::{Decodable, Encodable, QualityOfService, TopicFilter, TopicName};

/// Largest packet we take: an SDP offer is ~5 KiB. Bigger ones are skipped.
pub const MAX_PACKET_BYTES: usize = 64 * 1024;

/// Who we are to the broker.
#[derive(Debug, Clone)]
pub struct Identity {
    pub client_id: String,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Published (retained) by the broker when we vanish without a goodbye.
    pub will: Option<(String, Vec<u8>)>,
    pub keepalive: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub enum LinkEvent {
    /// CONNACK accepted: subscriptions and publications may go out.
    Up,
    /// The broker refused the session (credentials, client id...).
    Refused(String),
    Message {
        topic: String,
        payload: Vec<u8>,
    },
    /// A packet over [`MAX_PACKET_BYTES`] was skipped.
    Oversized(usize),
    /// The broker stopped answering pings, or sent bytes that are not MQTT.
    Dead(String),
}

pub struct Link {
    keepalive: Duration,
    received: Vec<u8>,
    /// Bytes still to discard of an oversized packet.
    skipping: usize,
    transmits: VecDeque<Vec<u8>>,
    events: VecDeque<LinkEvent>,
    up: bool,
    dead: bool,
    last_sent: Instant,
    ping_sent: Option<Instant>,
    next_packet_id: u16,
}

impl Link {
    /// A new session: CONNECT is queued at once (clean session, so the broker
    /// keeps nothing of an earlier one).
    pub fn new(now: Instant, identity: &Identity) -> Link {
        let mut connect = ConnectPacket::new(identity.client_id.clone());
        connect.set_clean_session(true);
        connect.set_keep_alive(identity.keepalive.as_secs().clamp(1, 65535) as u16);
        connect.set_user_name(identity.username.clone());
        connect.set_password(identity.password.clone());
        if let Some((topic, message)) = &identity.will {
            if let Ok(topic) = TopicName::new(topic.clone()) {
                connect.set_will(Some((topic, message.clone())));
                connect.set_will_retain(true);
                connect.set_will_qos(1);
            }
        }
        let mut link = Link {
            keepalive: identity.keepalive,
            received: Vec::new(),
            skipping: 0,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            up: false,
            dead: false,
            last_sent: now,
            ping_sent: None,
            next_packet_id: 1,
        };
        link.send(now, &connect);
        link
    }

    pub fn is_up(&self) -> bool {
        self.up && !self.dead
    }

    /// Feeds bytes read from the broker.
    pub fn receive(&mut self, now: Instant, mut data: &[u8]) {
        if self.dead {
            return;
        }
        if self.skipping > 0 {
            let n = self.skipping.min(data.len());
            self.skipping -= n;
            data = &data[n..];
        }
        self.received.extend_from_slice(data);
        // Any traffic proves the broker alive.
        self.ping_sent = None;
        while let Some(frame) = self.next_frame() {
            match frame {
                Frame::Packet(bytes) => self.handle_packet(now, &bytes),
                Frame::TooBig(total) => {
                    let buffered = self.received.len().min(total);
                    self.received.drain(..buffered);
                    self.skipping = total - buffered;
                    self.events.push_back(LinkEvent::Oversized(total));
                }
            }
            if self.dead {
                return;
            }
        }
    }

    pub fn subscribe(&mut self, now: Instant, filter: &str) -> Result<(), String> {
        let filter =
            TopicFilter::new(filter).map_err(|e| format!("topic filter {filter:?}: {e}"))?;
        let id = self.packet_id();
        self.send(
            now,
            &SubscribePacket::new(id, vec![(filter, QualityOfService::Level1)]),
        );
        Ok(())
    }

    /// Publishes at QoS 0: signaling answers are useless late, and presence is
    /// republished on every change anyway.
    pub fn publish(
        &mut self,
        now: Instant,
        topic: &str,
        payload: &[u8],
        retain: bool,
    ) -> Result<(), String> {
        let name = TopicName::new(topic).map_err(|e| format!("topic {topic:?}: {e}"))?;
        let mut packet = PublishPacket::new(name, QoSWithPacketIdentifier::Level0, payload);
        packet.set_retain(retain);
        self.send(now, &packet);
        Ok(())
    }

    /// A clean goodbye: the broker then does not publish the will.
    pub fn disconnect(&mut self, now: Instant) {
        self.send(now, &DisconnectPacket::new());
        self.dead = true;
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.dead {
            return;
        }
        if let Some(sent) = self.ping_sent {
            if now.saturating_duration_since(sent) >= self.keepalive {
                self.die(format!(
                    "no answer from the broker for {} s",
                    self.keepalive.as_secs()
                ));
            }
            return;
        }
        // Ping at half the keepalive so the broker never sees us idle.
        if now.saturating_duration_since(self.last_sent) >= self.keepalive / 2 {
            self.send(now, &PingreqPacket::new());
            self.ping_sent = Some(now);
        }
    }

    pub fn next_timeout(&self) -> Instant {
        match self.ping_sent {
            Some(sent) => sent + self.keepalive,
            None => self.last_sent + self.keepalive / 2,
        }
    }

    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<LinkEvent> {
        self.events.pop_front()
    }

    fn send(&mut self, now: Instant, packet: &impl Encodable) {
        let mut bytes = Vec::new();
        if packet.encode(&mut bytes).is_ok() {
            self.transmits.push_back(bytes);
            self.last_sent = now;
        }
    }

    fn packet_id(&mut self) -> u16 {
        let id = self.next_packet_id;
        self.next_packet_id = self.next_packet_id.checked_add(1).unwrap_or(1);
        id
    }

    fn die(&mut self, why: String) {
        self.dead = true;
        self.events.push_back(LinkEvent::Dead(why));
    }

    /// The next whole packet in `received`, by the fixed header's remaining length.
    fn next_frame(&mut self) -> Option<Frame> {
        let mut remaining = 0usize;
        let mut header_len = 1;
        for i in 0..4 {
            let byte = *self.received.get(1 + i)?;
            remaining |= usize::from(byte & 0x7f) << (7 * i);
            header_len += 1;
            if byte & 0x80 == 0 {
                break;
            }
            if i == 3 {
                self.die("malformed MQTT length from the broker".into());
                return None;
            }
        }
        let total = header_len + remaining;
        if total > MAX_PACKET_BYTES {
            return Some(Frame::TooBig(total));
        }
        if self.received.len() < total {
            return None;
        }
        Some(Frame::Packet(self.received.drain(..total).collect()))
    }

    fn handle_packet(&mut self, now: Instant, bytes: &[u8]) {
        let packet = match VariablePacket::decode(&mut Cursor::new(bytes)) {
            Ok(p) => p,
            Err(e) => return self.die(format!("undecodable packet from the broker: {e}")),
        };
        match packet {
            VariablePacket::ConnackPacket(ack) => match ack.connect_return_code() {
                ConnectReturnCode::ConnectionAccepted => {
                    self.up = true;
                    self.events.push_back(LinkEvent::Up);
                }
                refused => {
                    self.dead = true;
                    self.events.push_back(LinkEvent::Refused(refusal(refused)));
                }
            },
            VariablePacket::PublishPacket(publish) => {
                if let (_, Some(id)) = publish.qos().split() {
                    self.send(now, &PubackPacket::new(id));
                }
                self.events.push_back(LinkEvent::Message {
                    topic: publish.topic_name().to_string(),
                    payload: publish.payload().to_vec(),
                });
            }
            // Subscription and ping answers need nothing more.
            _ => {}
        }
    }
}

enum Frame {
    Packet(Vec<u8>),
    TooBig(usize),
}

fn refusal(code: ConnectReturnCode) -> String {
    match code {
        ConnectReturnCode::BadUserNameOrPassword => "bad username or password".into(),
        ConnectReturnCode::NotAuthorized => "not authorized".into(),
        ConnectReturnCode::IdentifierRejected => "client id rejected".into(),
        ConnectReturnCode::ServiceUnavailable => "broker unavailable".into(),
        ConnectReturnCode::UnacceptableProtocolVersion => "MQTT 3.1.1 not supported".into(),
        other => format!("refused ({other:?})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mqtt::packet::ConnackPacket;

    fn identity() -> Identity {
        Identity {
            client_id: "telepi-robot1".into(),
            username: Some("robot".into()),
            password: Some("pw".into()),
            will: Some((
                "telepi/robots/robot1/status".into(),
                b"{\"online\":false}".to_vec(),
            )),
            keepalive: Duration::from_secs(10),
        }
    }

    fn bytes(packet: &impl Encodable) -> Vec<u8> {
        let mut out = Vec::new();
        packet.encode(&mut out).unwrap();
        out
    }

    fn decode(bytes: &[u8]) -> VariablePacket {
        VariablePacket::decode(&mut Cursor::new(bytes)).unwrap()
    }

    fn accepted(now: Instant) -> Link {
        let mut link = Link::new(now, &identity());
        link.poll_transmit().unwrap();
        link.receive(
            now,
            &bytes(&ConnackPacket::new(
                false,
                ConnectReturnCode::ConnectionAccepted,
            )),
        );
        assert_eq!(link.poll_event(), Some(LinkEvent::Up));
        link
    }

    #[test]
    fn connects_with_credentials_and_a_retained_will() {
        let now = Instant::now();
        let mut link = Link::new(now, &identity());
        let VariablePacket::ConnectPacket(c) = decode(&link.poll_transmit().unwrap()) else {
            panic!("CONNECT first")
        };
        assert_eq!(c.client_identifier(), "telepi-robot1");
        assert_eq!((c.user_name(), c.password()), (Some("robot"), Some("pw")));
        assert_eq!(c.will().unwrap().0, "telepi/robots/robot1/status");
        assert!(c.will_retain() && c.clean_session());
        assert_eq!(c.keep_alive(), 10);
        link.receive(
            now,
            &bytes(&ConnackPacket::new(
                false,
                ConnectReturnCode::BadUserNameOrPassword,
            )),
        );
        assert_eq!(
            link.poll_event(),
            Some(LinkEvent::Refused("bad username or password".into()))
        );
        assert!(!link.is_up());
    }

    #[test]
    fn messages_arrive_whole_even_when_split_and_qos1_is_acknowledged() {
        let now = Instant::now();
        let mut link = accepted(now);
        let mut publish = PublishPacket::new(
            TopicName::new("telepi/robots/robot1/offer").unwrap(),
            QoSWithPacketIdentifier::Level1(7),
            vec![b'x'; 3000],
        );
        publish.set_retain(false);
        let wire = bytes(&publish);
        for chunk in wire.chunks(100) {
            link.receive(now, chunk);
        }
        let Some(LinkEvent::Message { topic, payload }) = link.poll_event() else {
            panic!("one message")
        };
        assert_eq!(
            (topic.as_str(), payload.len()),
            ("telepi/robots/robot1/offer", 3000)
        );
        assert!(
            matches!(decode(&link.poll_transmit().unwrap()), VariablePacket::PubackPacket(p) if p.packet_identifier() == 7)
        );
    }

    #[test]
    fn oversized_packets_are_skipped_and_the_next_one_still_arrives() {
        let now = Instant::now();
        let mut link = accepted(now);
        let topic = TopicName::new("telepi/robots/robot1/offer").unwrap();
        let huge = bytes(&PublishPacket::new(
            topic.clone(),
            QoSWithPacketIdentifier::Level0,
            vec![0u8; MAX_PACKET_BYTES * 2],
        ));
        let small = bytes(&PublishPacket::new(
            topic,
            QoSWithPacketIdentifier::Level0,
            b"ok".to_vec(),
        ));
        let mut wire = huge.clone();
        wire.extend_from_slice(&small);
        for chunk in wire.chunks(4096) {
            link.receive(now, chunk);
        }
        assert_eq!(link.poll_event(), Some(LinkEvent::Oversized(huge.len())));
        assert!(
            matches!(link.poll_event(), Some(LinkEvent::Message { payload, .. }) if payload == b"ok")
        );
        assert!(
            link.received.len() < MAX_PACKET_BYTES,
            "nothing of the big one is held"
        );
    }

    #[test]
    fn keepalive_pings_and_a_silent_broker_is_declared_dead() {
        let t0 = Instant::now();
        let mut link = accepted(t0);
        assert_eq!(link.next_timeout(), t0 + Duration::from_secs(5));
        link.handle_timeout(t0 + Duration::from_secs(5));
        assert!(matches!(
            decode(&link.poll_transmit().unwrap()),
            VariablePacket::PingreqPacket(_)
        ));
        link.handle_timeout(t0 + Duration::from_secs(14));
        assert_eq!(link.poll_event(), None, "still within the keepalive");
        link.handle_timeout(t0 + Duration::from_secs(15));
        assert!(matches!(link.poll_event(), Some(LinkEvent::Dead(_))));
        assert!(!link.is_up());
    }

    #[test]
    fn garbage_from_the_broker_ends_the_session() {
        let now = Instant::now();
        let mut link = accepted(now);
        link.receive(now, &[0xff, 0xff, 0xff, 0xff, 0xff]);
        assert!(matches!(link.poll_event(), Some(LinkEvent::Dead(_))));
    }

    #[test]
    fn subscribe_and_publish_encode_what_was_asked() {
        let now = Instant::now();
        let mut link = accepted(now);
        link.subscribe(now, "telepi/robots/robot1/offer").unwrap();
        assert!(matches!(
            decode(&link.poll_transmit().unwrap()),
            VariablePacket::SubscribePacket(_)
        ));
        link.publish(now, "telepi/robots/robot1/status", b"{}", true)
            .unwrap();
        let VariablePacket::PublishPacket(p) = decode(&link.poll_transmit().unwrap()) else {
            panic!()
        };
        assert!(p.retain());
        assert!(link.publish(now, "bad/+/topic", b"", false).is_err());
        link.disconnect(now);
        assert!(matches!(
            decode(&link.poll_transmit().unwrap()),
            VariablePacket::DisconnectPacket(_)
        ));
    }
}
