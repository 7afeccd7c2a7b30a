//! Who may watch: the optional viewer password guarding the page and every
//! endpoint, with failed attempts rate-limited per client address. Time is a
//! value and nothing here does I/O, like the rest of telepi's cores.
//!
//! A client proves itself with `Authorization: Bearer <password>` (tools), the
//! session cookie the login form or a token link sets (the page), or
//! `?token=` / the operator's `?secret=` in the URL. The operator secret is
//! accepted wherever the viewer password is: whoever may drive may watch.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_lc_rs::hmac;

use crate::refusal::Refusal;

mod config;
pub use config::AccessConfig;

/// Failed attempts an address may make within [`WINDOW`] before it is locked out.
pub const MAX_FAILURES: u32 = 5;
pub const WINDOW: Duration = Duration::from_secs(60);
/// Addresses remembered at once; a flood of new ones evicts the oldest.
const MAX_TRACKED: usize = 4096;

pub const COOKIE: &str = "telepi_session";

/// What a request presents, gathered from its headers and query.
#[derive(Debug, Default, Clone)]
pub struct Credentials {
    pub bearer: Option<String>,
    pub cookie: Option<String>,
    /// `?token=` (a token link) or the operator's `?secret=`.
    pub query: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// No viewer password is configured.
    Open,
    /// The password (or operator secret) was presented now: set the cookie so
    /// the page's later requests carry it.
    Password,
    /// The session cookie from an earlier login.
    Cookie,
}

struct Strikes {
    count: u32,
    since: Instant,
}

pub struct Access {
    viewer_password: Option<String>,
    operator_secret: Option<String>,
    /// The cookie's value: derived from the password, so it survives restarts
    /// and dies when the password changes, and the cookie is not the password.
    session_token: Option<String>,
    strikes: Mutex<HashMap<IpAddr, Strikes>>,
}

impl Access {
    /// Empty strings count as unset (a blanked-out template line).
    pub fn new(viewer_password: Option<String>, operator_secret: Option<String>) -> Access {
        let viewer_password = viewer_password.filter(|p| !p.is_empty());
        let session_token = viewer_password.as_deref().map(session_token);
        Access {
            viewer_password,
            operator_secret: operator_secret.filter(|s| !s.is_empty()),
            session_token,
            strikes: Mutex::new(HashMap::new()),
        }
    }

    pub fn guarded(&self) -> bool {
        self.viewer_password.is_some()
    }

    /// The value for `Set-Cookie` after a login (None without a password).
    pub fn session_cookie(&self, secure: bool) -> Option<String> {
        let token = self.session_token.as_ref()?;
        let secure = if secure { "; Secure" } else { "" };
        // Lax: sent when the user follows a link to the robot, not on other sites' POSTs.
        Some(format!(
            "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age=2592000{secure}"
        ))
    }

    /// Whether a client may watch. `client` is None for a local Unix-socket
    /// or unknown peer, which is still checked but not rate-limited.
    pub fn check(
        &self,
        now: Instant,
        client: Option<IpAddr>,
        presented: &Credentials,
    ) -> Result<Grant, Refusal> {
        self.refuse_if_locked_out(now, client)?;
        if self.viewer_password.is_none() {
            return Ok(Grant::Open);
        }
        let cookie_ok = match (&self.session_token, &presented.cookie) {
            (Some(want), Some(got)) => crate::secret::matches(want, got),
            _ => false,
        };
        if cookie_ok {
            return Ok(Grant::Cookie);
        }
        let passwords = [presented.bearer.as_deref(), presented.query.as_deref()];
        if passwords.iter().flatten().any(|p| self.is_password(p)) {
            return Ok(Grant::Password);
        }
        if passwords.iter().all(Option::is_none) && presented.cookie.is_none() {
            return Err(Refusal::new(
                401,
                "this robot needs the viewer password: log in on its page, or send Authorization: Bearer <password>",
            ));
        }
        self.record_failure(now, client);
        Err(Refusal::new(403, "wrong password"))
    }

    /// Counts a wrong operator secret (or password) against the client.
    pub fn record_failure(&self, now: Instant, client: Option<IpAddr>) {
        let Some(ip) = client else { return };
        let mut strikes = self.strikes.lock().unwrap_or_else(|e| e.into_inner());
        if strikes.len() >= MAX_TRACKED && !strikes.contains_key(&ip) {
            strikes.retain(|_, s| now.saturating_duration_since(s.since) < WINDOW);
            if strikes.len() >= MAX_TRACKED {
                if let Some(oldest) = strikes
                    .iter()
                    .min_by_key(|(_, s)| s.since)
                    .map(|(ip, _)| *ip)
                {
                    strikes.remove(&oldest);
                }
            }
        }
        let entry = strikes.entry(ip).or_insert(Strikes {
            count: 0,
            since: now,
        });
        if now.saturating_duration_since(entry.since) >= WINDOW {
            *entry = Strikes {
                count: 0,
                since: now,
            };
        }
        entry.count += 1;
        if entry.count == MAX_FAILURES {
            tracing::warn!(%ip, "{MAX_FAILURES} failed attempts: locked out for up to {} s", WINDOW.as_secs());
        }
    }

    /// 429 while the client has used up its attempts for the current window.
    pub fn refuse_if_locked_out(
        &self,
        now: Instant,
        client: Option<IpAddr>,
    ) -> Result<(), Refusal> {
        let Some(ip) = client else { return Ok(()) };
        let strikes = self.strikes.lock().unwrap_or_else(|e| e.into_inner());
        match strikes.get(&ip) {
            Some(s) if s.count >= MAX_FAILURES => {
                let left = WINDOW.saturating_sub(now.saturating_duration_since(s.since));
                if left.is_zero() {
                    return Ok(());
                }
                Err(Refusal::new(
                    429,
                    format!(
                        "too many failed attempts from this address; try again in {} s",
                        left.as_secs().max(1)
                    ),
                ))
            }
            _ => Ok(()),
        }
    }

    /// Counts a presented but wrong operator secret against the client (the
    /// session decides what a right one grants).
    pub fn note_operator_secret(
        &self,
        now: Instant,
        client: Option<IpAddr>,
        presented: Option<&str>,
    ) {
        if let (Some(want), Some(got)) = (&self.operator_secret, presented) {
            if !crate::secret::matches(want, got) {
                self.record_failure(now, client);
            }
        }
    }

    /// Whether `presented` may do over HTTP what only the operator may
    /// (recording, downloading recordings), as the session decides for eject.
    pub fn grants_operator(&self, presented: Option<&str>) -> bool {
        crate::secret::grants_operator(self.operator_secret.as_deref(), presented)
    }

    fn is_password(&self, presented: &str) -> bool {
        [&self.viewer_password, &self.operator_secret]
            .into_iter()
            .flatten()
            .any(|want| crate::secret::matches(want, presented))
    }
}

fn session_token(password: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, password.as_bytes());
    let tag = hmac::sign(&key, b"telepi viewer session v1");
    tag.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// The session cookie's value from a `Cookie:` header.
pub fn cookie_value(header: Option<&str>) -> Option<String> {
    header?
        .split(';')
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOME: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(192, 168, 1, 9)));
    const AWAY: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(192, 168, 1, 66)));

    fn bearer(p: &str) -> Credentials {
        Credentials {
            bearer: Some(p.into()),
            ..Credentials::default()
        }
    }

    #[test]
    fn without_a_password_everyone_watches() {
        let a = Access::new(Some(String::new()), Some("op".into()));
        assert!(!a.guarded());
        assert_eq!(
            a.check(Instant::now(), HOME, &Credentials::default()),
            Ok(Grant::Open)
        );
        assert_eq!(a.session_cookie(true), None);
    }

    #[test]
    fn the_password_the_operator_secret_or_the_cookie_let_in() {
        let a = Access::new(Some("watch".into()), Some("drive".into()));
        let now = Instant::now();
        assert_eq!(a.check(now, HOME, &bearer("watch")), Ok(Grant::Password));
        assert_eq!(a.check(now, HOME, &bearer("drive")), Ok(Grant::Password));
        let link = Credentials {
            query: Some("watch".into()),
            ..Credentials::default()
        };
        assert_eq!(a.check(now, HOME, &link), Ok(Grant::Password));
        let set_cookie = a.session_cookie(true).unwrap();
        assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("; Secure"));
        assert!(
            !set_cookie.contains("watch"),
            "the cookie is not the password"
        );
        let value = cookie_value(Some(&format!(
            "a=1; {}",
            set_cookie.split(';').next().unwrap()
        )));
        let with_cookie = Credentials {
            cookie: value,
            ..Credentials::default()
        };
        assert_eq!(a.check(now, HOME, &with_cookie), Ok(Grant::Cookie));
        let other = Access::new(Some("changed".into()), None);
        assert_eq!(
            other.check(now, HOME, &with_cookie).unwrap_err().status,
            403,
            "a new password voids old cookies"
        );
    }

    #[test]
    fn missing_is_401_wrong_is_403() {
        let a = Access::new(Some("watch".into()), None);
        let now = Instant::now();
        let missing = a.check(now, HOME, &Credentials::default()).unwrap_err();
        assert_eq!(missing.status, 401);
        assert!(missing.reason.contains("Bearer"));
        let wrong = a.check(now, HOME, &bearer("guess")).unwrap_err();
        assert_eq!(
            (wrong.status, wrong.reason.as_str()),
            (403, "wrong password")
        );
    }

    #[test]
    fn failures_lock_out_one_address_for_a_window() {
        let a = Access::new(Some("watch".into()), None);
        let t0 = Instant::now();
        for i in 0..MAX_FAILURES {
            let e = a
                .check(
                    t0 + Duration::from_secs(u64::from(i)),
                    HOME,
                    &bearer("guess"),
                )
                .unwrap_err();
            assert_eq!(e.status, 403);
        }
        let t = t0 + Duration::from_secs(10);
        let locked = a.check(t, HOME, &bearer("watch")).unwrap_err();
        assert_eq!(locked.status, 429, "even the right password waits");
        assert!(
            locked.reason.contains("try again in 50 s"),
            "{}",
            locked.reason
        );
        assert_eq!(
            a.check(t, AWAY, &bearer("watch")),
            Ok(Grant::Password),
            "others are not punished"
        );
        assert_eq!(a.check(t, None, &bearer("watch")), Ok(Grant::Password));
        assert_eq!(
            a.check(t0 + WINDOW, HOME, &bearer("watch")),
            Ok(Grant::Password),
            "the window passes"
        );
    }

    #[test]
    fn operator_secret_failures_count_too_and_memory_stays_bounded() {
        let a = Access::new(None, Some("drive".into()));
        let now = Instant::now();
        a.note_operator_secret(now, HOME, Some("drive"));
        a.note_operator_secret(now, HOME, None);
        assert!(a.check(now, HOME, &Credentials::default()).is_ok());
        for _ in 0..MAX_FAILURES {
            a.note_operator_secret(now, HOME, Some("guess"));
        }
        assert_eq!(
            a.check(now, HOME, &Credentials::default())
                .unwrap_err()
                .status,
            429
        );
        for i in 0..(MAX_TRACKED as u32 + 10) {
            a.record_failure(now, Some(IpAddr::V4(i.into())));
        }
        assert!(a.strikes.lock().unwrap().len() <= MAX_TRACKED);
    }
}
