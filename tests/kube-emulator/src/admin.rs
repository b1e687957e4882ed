//! The admin API: plain HTTP/1.1 JSON on its own listener, a thin layer over
//! [`Control`] for scripts and tests outside the process. Routes are listed
//! in the crate documentation.

use std::convert::Infallible;

use bytes::Bytes;
use http::{Method, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::control::Control;
use crate::encoding::percent_decode;
use crate::faults::{ErrorRule, LatencyRule};

#[derive(Deserialize)]
struct NewToken {
    token: String,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    read_only: bool,
    /// Authenticate as this ServiceAccount instead (authorized by the loaded RBAC manifests).
    #[serde(default)]
    service_account: Option<ServiceAccountRef>,
    /// With `user`: authenticate as that user in these groups, authorized by RBAC (no full access).
    #[serde(default)]
    groups: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct ServiceAccountRef {
    namespace: String,
    name: String,
}

#[derive(Deserialize)]
struct TokenSet {
    tokens: Vec<String>,
}

#[derive(Deserialize, Default)]
struct DropWatches {
    #[serde(default)]
    after_events: Option<u64>,
}

#[derive(Deserialize)]
struct HistoryLimit {
    limit: usize,
}

/// Serves the admin API until shutdown.
pub async fn serve(listener: TcpListener, control: Control, mut shutdown: watch::Receiver<bool>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let control = control.clone();
                connections.spawn(async move {
                    let service = service_fn(move |request| {
                        let control = control.clone();
                        async move { Ok::<_, Infallible>(respond(&control, request).await) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = shutdown.changed() => break,
        }
    }
    connections.shutdown().await;
}

type AdminResponse = Response<Full<Bytes>>;

fn reply(status: StatusCode, body: &Value) -> AdminResponse {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, Box<AdminResponse>> {
    serde_json::from_slice(body).map_err(|e| {
        Box::new(reply(
            StatusCode::BAD_REQUEST,
            &json!({"error": e.to_string()}),
        ))
    })
}

async fn respond(control: &Control, request: Request<Incoming>) -> AdminResponse {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let body = match request.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => return reply(StatusCode::BAD_REQUEST, &json!({"error": e.to_string()})),
    };
    match route(control, &method, &path, &body) {
        Ok(response) => response,
        Err(response) => *response,
    }
}

fn route(
    control: &Control,
    method: &Method,
    path: &str,
    body: &[u8],
) -> Result<AdminResponse, Box<AdminResponse>> {
    let ok = |body: Value| Ok(reply(StatusCode::OK, &body));
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match (method.clone(), segments.as_slice()) {
        (Method::GET, ["healthz"]) => ok(json!({"status": "ok"})),
        (Method::GET, ["stats"]) => ok(serde_json::to_value(control.stats()).unwrap_or_default()),
        (Method::GET, ["tokens"]) => ok(json!({"count": control.stats().tokens})),
        (Method::POST, ["tokens"]) => {
            let new: NewToken = parse(body)?;
            let user = new.user.as_deref().unwrap_or(crate::auth::DEFAULT_USER);
            match (&new.service_account, &new.groups) {
                (Some(account), _) => {
                    control.add_service_account_token(
                        &new.token,
                        &account.namespace,
                        &account.name,
                    );
                }
                (None, Some(groups)) => {
                    let groups: Vec<&str> = groups.iter().map(String::as_str).collect();
                    control.add_token_as(&new.token, crate::auth::Identity::user(user, &groups));
                }
                (None, None) => control.add_token_for(&new.token, user, new.read_only),
            }
            Ok(reply(StatusCode::CREATED, &json!({"accepted": true})))
        }
        (Method::PUT, ["tokens"]) => {
            let set: TokenSet = parse(body)?;
            control.replace_tokens(&set.tokens);
            ok(json!({"count": set.tokens.len()}))
        }
        (Method::DELETE, ["tokens", token]) => {
            if control.revoke_token(&percent_decode(token)) {
                ok(json!({"revoked": true}))
            } else {
                Err(Box::new(reply(
                    StatusCode::NOT_FOUND,
                    &json!({"revoked": false}),
                )))
            }
        }
        (Method::GET, ["faults"]) => ok(serde_json::to_value(control.faults()).unwrap_or_default()),
        (Method::DELETE, ["faults"]) => {
            control.clear_faults();
            ok(json!({"cleared": true}))
        }
        (Method::PUT, ["faults", "latency"]) => {
            let rule: LatencyRule = parse(body)?;
            control.set_latency_rule(rule);
            ok(serde_json::to_value(control.faults()).unwrap_or_default())
        }
        (Method::DELETE, ["faults", "latency"]) => {
            for rule in control.faults().latency {
                control.set_latency_rule(LatencyRule { millis: 0, ..rule });
            }
            ok(json!({"cleared": true}))
        }
        (Method::POST, ["faults", "errors"]) => {
            let rule: ErrorRule = parse(body)?;
            control.inject_errors(rule);
            Ok(reply(
                StatusCode::CREATED,
                &serde_json::to_value(control.faults()).unwrap_or_default(),
            ))
        }
        (Method::DELETE, ["faults", "errors"]) => {
            let latency = control.faults().latency;
            control.clear_faults();
            for rule in latency {
                control.set_latency_rule(rule);
            }
            ok(json!({"cleared": true}))
        }
        (Method::POST, ["watches", "drop"]) => {
            let options: DropWatches = if body.iter().all(u8::is_ascii_whitespace) {
                DropWatches::default()
            } else {
                parse(body)?
            };
            let affected = match options.after_events {
                Some(events) => control.drop_watches_after(events),
                None => control.drop_watches(),
            };
            ok(json!({"watches": affected}))
        }
        (Method::POST, ["history", "compact"]) => {
            ok(json!({"compactedThrough": control.compact_history().to_string()}))
        }
        (Method::PUT, ["history", "limit"]) => {
            let limit: HistoryLimit = parse(body)?;
            control.set_history_limit(limit.limit);
            ok(json!({"limit": limit.limit}))
        }
        _ => Err(Box::new(reply(
            StatusCode::NOT_FOUND,
            &json!({"error": format!("no admin route {method} {path}")}),
        ))),
    }
}
