//! Console sessions: signing in with an access key and its secret gives a
//! random token, kept in an HttpOnly cookie, that stands for the key until
//! it expires or the user signs out. Kept in memory: a restart signs
//! everyone out, which is the safe way round.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const COOKIE: &str = "runnel_session";
pub const LIFETIME: Duration = Duration::from_secs(12 * 3600);

#[derive(Default)]
pub struct Sessions {
    by_token: Mutex<HashMap<String, (String, Instant)>>,
}

impl Sessions {
    /// A new session of `access_key_id`: its token.
    pub fn start(&self, access_key_id: &str) -> String {
        let token = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let mut sessions = self.lock();
        let now = Instant::now();
        sessions.retain(|_, (_, expires)| *expires > now);
        sessions.insert(token.clone(), (access_key_id.to_string(), now + LIFETIME));
        token
    }

    /// The access key of a live session.
    pub fn key_of(&self, token: &str) -> Option<String> {
        let sessions = self.lock();
        let (key, expires) = sessions.get(token)?;
        (*expires > Instant::now()).then(|| key.clone())
    }

    pub fn end(&self, token: &str) {
        self.lock().remove(token);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, Instant)>> {
        self.by_token
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The session token among a request's cookies.
pub fn token_of(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == COOKIE && !value.is_empty()).then(|| value.to_string())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_stands_for_its_key_until_it_ends() {
        let sessions = Sessions::default();
        let token = sessions.start("AKIA1");
        assert_eq!(sessions.key_of(&token).as_deref(), Some("AKIA1"));
        assert_eq!(sessions.key_of("forged"), None);
        sessions.end(&token);
        assert_eq!(sessions.key_of(&token), None);
        let mut headers = axum::http::HeaderMap::new();
        headers.insert("cookie", format!("a=b; {COOKIE}={token}").parse().unwrap());
        assert_eq!(token_of(&headers), Some(token));
    }
}
