//! Bearer-token authentication and the one authorization rule the emulator
//! has: read-only tokens may only get, list and watch.
//!
//! Tokens can be added, revoked and replaced while the server runs, which is
//! how tests rotate the cluster token. Token values never appear in logs or
//! in `Debug` output.

use std::collections::HashMap;
use std::fmt;

/// Who a token authenticates as.
#[derive(Clone, PartialEq, Eq)]
pub struct Identity {
    /// User name shown in Forbidden messages.
    pub user: String,
    /// Whether writes are refused.
    pub read_only: bool,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("user", &self.user)
            .field("read_only", &self.read_only)
            .finish()
    }
}

/// Default user name for tokens registered without one.
pub const DEFAULT_USER: &str = "kube-emulator-admin";

/// The accepted tokens.
#[derive(Default, Clone)]
pub struct Tokens {
    by_token: HashMap<String, Identity>,
    order: Vec<String>,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokens")
            .field("count", &self.by_token.len())
            .finish()
    }
}

impl Tokens {
    /// Full-access tokens for the default user.
    pub fn new(tokens: &[String]) -> Self {
        let mut all = Self::default();
        for token in tokens {
            all.add(token, DEFAULT_USER, false);
        }
        all
    }

    /// Accepts a token (replacing its identity if already known).
    pub fn add(&mut self, token: &str, user: &str, read_only: bool) {
        let identity = Identity {
            user: user.to_string(),
            read_only,
        };
        if self.by_token.insert(token.to_string(), identity).is_none() {
            self.order.push(token.to_string());
        }
    }

    /// Stops accepting a token; returns whether it was known.
    pub fn revoke(&mut self, token: &str) -> bool {
        self.order.retain(|t| t != token);
        self.by_token.remove(token).is_some()
    }

    /// Replaces every token by these full-access ones.
    pub fn replace(&mut self, tokens: &[String]) {
        *self = Self::new(tokens);
    }

    /// The oldest still-accepted full-access token, else the oldest token.
    pub fn first(&self) -> Option<&str> {
        self.order
            .iter()
            .find(|t| self.by_token.get(*t).is_some_and(|i| !i.read_only))
            .or_else(|| self.order.first())
            .map(String::as_str)
    }

    /// Number of accepted tokens.
    pub fn len(&self) -> usize {
        self.by_token.len()
    }

    /// Whether no token is accepted.
    pub fn is_empty(&self) -> bool {
        self.by_token.is_empty()
    }

    /// Authenticates an `Authorization` header value.
    pub fn authenticate(&self, authorization: Option<&str>) -> Option<&Identity> {
        let header = authorization?.trim();
        let (scheme, token) = header.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        self.by_token.get(token.trim())
    }
}

/// Verbs a read-only identity may use.
pub fn is_read_verb(verb: &str) -> bool {
    matches!(verb, "get" | "list" | "watch")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_authenticate() {
        let mut tokens = Tokens::new(&["abc".to_string()]);
        assert_eq!(
            tokens.authenticate(Some("Bearer abc")).unwrap().user,
            DEFAULT_USER
        );
        assert!(tokens.authenticate(Some("bearer abc")).is_some());
        assert!(tokens.authenticate(Some("Bearer nope")).is_none());
        assert!(tokens.authenticate(Some("Basic abc")).is_none());
        assert!(tokens.authenticate(None).is_none());
        tokens.add("ro", "viewer", true);
        assert!(tokens.authenticate(Some("Bearer ro")).unwrap().read_only);
    }

    #[test]
    fn rotation() {
        let mut tokens = Tokens::new(&["old".to_string()]);
        tokens.add("viewer", "viewer", true);
        tokens.add("new", DEFAULT_USER, false);
        assert_eq!(tokens.first(), Some("old"));
        assert!(tokens.revoke("old"));
        assert!(!tokens.revoke("old"));
        assert_eq!(tokens.first(), Some("new"), "full-access tokens come first");
        tokens.replace(&["x".to_string(), "y".to_string()]);
        assert_eq!(tokens.len(), 2);
        assert!(tokens.authenticate(Some("Bearer new")).is_none());
    }

    #[test]
    fn debug_output_hides_token_values() {
        let tokens = Tokens::new(&["super-secret".to_string()]);
        assert!(!format!("{tokens:?}").contains("super-secret"));
    }
}
