//! A refused request's answer, for the HTTP handlers and for the access
//! checks they share with the broker.

/// An HTTP status with a one-line reason for the client.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub status: u16,
    pub reason: String,
}

impl Refusal {
    /// The reason is folded onto one line: clients show it, logs grep it.
    /// Control characters it quotes from the request (a NUL or an escape
    /// sequence in a header) are written out as escapes, not passed on.
    pub fn new(status: u16, reason: impl Into<String>) -> Refusal {
        let reason: String = reason.into();
        let mut one_line = String::with_capacity(reason.len());
        for word in reason.split_whitespace() {
            if !one_line.is_empty() {
                one_line.push(' ');
            }
            for c in word.chars() {
                if c.is_control() {
                    one_line.extend(c.escape_default());
                } else {
                    one_line.push(c);
                }
            }
        }
        Refusal {
            status,
            reason: one_line,
        }
    }
}
