//! Bearer-token authentication: which identity (user name and groups) a request
//! acts as. What that identity may do is [`crate::rbac`]'s business.
//!
//! As in kube-apiserver with anonymous auth on (its default): a request without
//! a bearer token (no `Authorization` header, another scheme, an empty token) is
//! `system:anonymous` in `system:unauthenticated`; an unknown bearer token is
//! refused with 401. Tokens can be added, revoked and replaced while the server
//! runs, which is how tests rotate the cluster token. Token values never appear
//! in logs or in `Debug` output.

use std::collections::HashMap;
use std::fmt;

use crate::rbac::{AUTHENTICATED_GROUP, PRIVILEGED_GROUP, UNAUTHENTICATED_GROUP, VIEWERS_GROUP};

/// Who a request acts as (kube-apiserver's `user.Info`, minus uid and extra).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// User name, as Forbidden messages show it.
    pub user: String,
    /// Groups, used by bindings with `kind: Group`.
    pub groups: Vec<String>,
}

impl Identity {
    /// An authenticated user in `groups` (plus `system:authenticated`).
    pub fn user(name: &str, groups: &[&str]) -> Self {
        let mut groups: Vec<String> = groups.iter().map(|g| (*g).to_string()).collect();
        if !groups.iter().any(|g| g == AUTHENTICATED_GROUP) {
            groups.push(AUTHENTICATED_GROUP.to_string());
        }
        Self {
            user: name.to_string(),
            groups,
        }
    }

    /// The emulator's full-access user, in `system:masters`.
    pub fn admin() -> Self {
        Self::user(DEFAULT_USER, &[PRIVILEGED_GROUP])
    }

    /// A read-only user (bound to `kube-emulator:view`).
    pub fn viewer(name: &str) -> Self {
        Self::user(name, &[VIEWERS_GROUP])
    }

    /// What a ServiceAccount's token authenticates as.
    pub fn service_account(namespace: &str, name: &str) -> Self {
        Self::user(
            &format!("system:serviceaccount:{namespace}:{name}"),
            &[
                "system:serviceaccounts",
                &format!("system:serviceaccounts:{namespace}"),
            ],
        )
    }

    /// A request without credentials.
    pub fn anonymous() -> Self {
        Self {
            user: "system:anonymous".to_string(),
            groups: vec![UNAUTHENTICATED_GROUP.to_string()],
        }
    }

    /// Whether authorization is bypassed (`system:masters`).
    pub fn is_privileged(&self) -> bool {
        self.groups.iter().any(|g| g == PRIVILEGED_GROUP)
    }
}

/// A bearer token the emulator does not accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidToken;

/// Default user name of full-access tokens.
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
            all.add(token, Identity::admin());
        }
        all
    }

    /// Accepts a token (replacing its identity if already known).
    pub fn add(&mut self, token: &str, identity: Identity) {
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
            .find(|t| self.by_token.get(*t).is_some_and(Identity::is_privileged))
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

    /// Authenticates an `Authorization` header value like kube-apiserver's bearer-token authenticator
    /// followed by the anonymous one: an error only for a bearer token nobody issued (401).
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<Identity, InvalidToken> {
        let header = authorization.unwrap_or_default().trim();
        let mut parts = header.splitn(3, ' ');
        let (Some(scheme), Some(token)) = (parts.next(), parts.next()) else {
            return Ok(Identity::anonymous());
        };
        if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
            return Ok(Identity::anonymous());
        }
        self.by_token.get(token).cloned().ok_or(InvalidToken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_authenticate_and_missing_ones_are_anonymous() {
        let mut tokens = Tokens::new(&["abc".to_string()]);
        assert_eq!(
            tokens.authenticate(Some("Bearer abc")),
            Ok(Identity::admin())
        );
        assert!(tokens.authenticate(Some("bearer abc")).is_ok());
        assert_eq!(tokens.authenticate(Some("Bearer nope")), Err(InvalidToken));
        for anonymous in [
            None,
            Some(""),
            Some("Basic abc"),
            Some("Bearer"),
            Some("Bearer  abc"),
        ] {
            assert_eq!(
                tokens.authenticate(anonymous),
                Ok(Identity::anonymous()),
                "{anonymous:?}"
            );
        }
        tokens.add("sa", Identity::service_account("gw", "gateway"));
        let account = tokens.authenticate(Some("Bearer sa")).unwrap();
        assert_eq!(account.user, "system:serviceaccount:gw:gateway");
        assert_eq!(
            account.groups,
            [
                "system:serviceaccounts",
                "system:serviceaccounts:gw",
                "system:authenticated"
            ]
        );
    }

    #[test]
    fn rotation() {
        let mut tokens = Tokens::new(&["old".to_string()]);
        tokens.add("viewer", Identity::viewer("viewer"));
        tokens.add("new", Identity::admin());
        assert_eq!(tokens.first(), Some("old"));
        assert!(tokens.revoke("old"));
        assert!(!tokens.revoke("old"));
        assert_eq!(tokens.first(), Some("new"), "full-access tokens come first");
        tokens.replace(&["x".to_string(), "y".to_string()]);
        assert_eq!(tokens.len(), 2);
        assert_eq!(tokens.authenticate(Some("Bearer new")), Err(InvalidToken));
    }

    #[test]
    fn debug_output_hides_token_values() {
        let tokens = Tokens::new(&["super-secret".to_string()]);
        assert!(!format!("{tokens:?}").contains("super-secret"));
    }
}
