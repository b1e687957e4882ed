//! get, list (with selectors, pagination and exact resourceVersions), watch, and a pod's log.
//!
//! A continue token holds the resourceVersion of its first page; once that is
//! compacted the list answers like `storage/etcd3` does (`errors.go`,
//! `handleCompactedErrorForPaging`): 410 Expired with a token that continues
//! at the latest resourceVersion (`rv: -1`), for a possibly inconsistent list.

use std::sync::{Arc, Weak};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::mpsc;

use super::{Ctx, Reply};
use crate::encoding::{base64_decode, base64_encode};
use crate::selector::{FieldSelector, LabelSelector};
use crate::status::ApiError;
use crate::store::{Expired, ObjectKey};
use crate::view::{ObjectFilter, check_selectable};
use crate::watch::{self, OnDrop, WatchStart, WatchStream};

/// Events buffered between a watch task and the HTTP body.
const WATCH_OUTPUT_BUFFER: usize = 32;

pub(super) fn get(ctx: &Ctx<'_>) -> Result<Reply, ApiError> {
    let key = ctx.key(ctx.name());
    let object = ctx
        .shared
        .state()
        .store
        .get(ctx.resource.id, &key)
        .cloned()
        .ok_or_else(|| ApiError::not_found(&ctx.group_resource(), ctx.name()))?;
    Ok(Reply::json(200, ctx.view().render_one(&object)))
}

/// `GET .../pods/{name}/log`, as kube-apiserver's `pod/rest/log.go` and the kubelet answer it:
/// the pod must exist and be bound to a node; the container is the named one, or the only one
/// (`LogLocation` in `pkg/registry/core/pod/strategy.go` words the errors); `tailLines` keeps the
/// last lines and `limitBytes` then cuts the output, both checked as `ValidatePodLogOptions` does.
/// The text is `<pod_log_dir>/<namespace>/<pod>.log` (one file per pod, whichever container is
/// asked for), empty when there is none. The emulator does not stream: `follow` serves what is
/// there; `timestamps`, `sinceSeconds` and `sinceTime` are accepted and ignored; `previous` finds
/// no previous container, as on a pod whose containers never restarted.
pub(super) fn pod_log(ctx: &Ctx<'_>) -> Result<Reply, ApiError> {
    let name = ctx.name();
    let pod = ctx
        .shared
        .state()
        .store
        .get(ctx.resource.id, &ctx.key(name))
        .cloned()
        .ok_or_else(|| ApiError::not_found(&ctx.group_resource(), name))?;
    let number = |key: &str, min: i64, rule: &str| -> Result<Option<i64>, ApiError> {
        match ctx.request.param(key) {
            None => Ok(None),
            Some(text) => match text.parse::<i64>() {
                Ok(value) if value >= min => Ok(Some(value)),
                Ok(value) => Err(ApiError::bad_request(format!(
                    "{key}: Invalid value: {value}: {rule}"
                ))),
                Err(_) => Err(ApiError::bad_request(format!(
                    "{key}: Invalid value: {text:?}: not an integer"
                ))),
            },
        }
    };
    let tail_lines = number("tailLines", 0, "must be greater than or equal to 0")?;
    let limit_bytes = number("limitBytes", 1, "must be greater than 0")?;
    let containers = |field: &str| -> Vec<String> {
        pod.pointer(&format!("/spec/{field}"))
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .filter_map(|c| c["name"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let (main, init) = (containers("containers"), containers("initContainers"));
    let container = match ctx.request.param("container") {
        Some(container) if main.iter().chain(&init).any(|c| c == container) => {
            container.to_string()
        }
        Some(container) => {
            return Err(ApiError::bad_request(format!(
                "container {container} is not valid for pod {name}"
            )));
        }
        None if main.len() == 1 => main[0].clone(),
        None if main.is_empty() => {
            return Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {name}"
            )));
        }
        None => {
            let mut message = format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                main.join(" ")
            );
            if !init.is_empty() {
                message.push_str(&format!(
                    " or one of the init containers: [{}]",
                    init.join(" ")
                ));
            }
            return Err(ApiError::bad_request(message));
        }
    };
    if pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Err(ApiError::bad_request(format!(
            "pod {name} does not have a host assigned"
        )));
    }
    if ctx.request.flag("previous") {
        return Err(ApiError::bad_request(format!(
            "previous terminated container \"{container}\" in pod \"{name}\" not found"
        )));
    }
    let text = ctx
        .shared
        .settings
        .pod_log_dir
        .as_ref()
        .map(|dir| {
            dir.join(ctx.namespace.as_deref().unwrap_or_default())
                .join(format!("{name}.log"))
        })
        .and_then(|path| std::fs::read_to_string(path).ok())
        .unwrap_or_default();
    let mut text = match tail_lines {
        Some(lines) => {
            let lines = usize::try_from(lines).unwrap_or(usize::MAX);
            let kept: Vec<&str> = text.split_inclusive('\n').collect();
            kept[kept.len().saturating_sub(lines)..].concat()
        }
        None => text,
    };
    if let Some(limit) = limit_bytes {
        let mut end = usize::try_from(limit).unwrap_or(usize::MAX).min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    let mut reply = Reply::text(200, text);
    reply.content_type = Some("text/plain");
    Ok(reply)
}

pub(super) fn filter(ctx: &Ctx<'_>) -> Result<ObjectFilter, ApiError> {
    let labels = LabelSelector::parse(ctx.request.param("labelSelector").unwrap_or_default())
        .map_err(ApiError::bad_request)?;
    let mut fields = FieldSelector::parse(ctx.request.param("fieldSelector").unwrap_or_default())
        .map_err(ApiError::bad_request)?;
    check_selectable(&fields, ctx.version).map_err(ApiError::bad_request)?;
    if let Some(name) = &ctx.name {
        // A single-object watch (`/watch/.../name`) is a name-selected watch.
        let combined = match ctx.request.param("fieldSelector") {
            Some(existing) => format!("{existing},metadata.name={name}"),
            None => format!("metadata.name={name}"),
        };
        fields = FieldSelector::parse(&combined).map_err(ApiError::bad_request)?;
    }
    Ok(ObjectFilter {
        namespace: ctx.namespace.clone(),
        labels,
        fields,
    })
}

#[derive(Serialize, Deserialize)]
struct ContinueToken {
    /// The first page's resourceVersion; -1 continues at the latest one.
    rv: i64,
    namespace: String,
    name: String,
}

/// The continue token etcd3's store hands out when the requested one has been
/// compacted: same position, latest resourceVersion.
const CONTINUE_AT_LATEST: i64 = -1;

fn encode_continue(token: &ContinueToken) -> String {
    base64_encode(&serde_json::to_vec(token).unwrap_or_default())
}

/// `storage/etcd3/errors.go`: a compacted resourceVersion for a list without a continue token.
fn list_expired() -> ApiError {
    ApiError::new(
        410,
        "Expired",
        "The resourceVersion for the provided list is too old.",
    )
}

fn decode_continue(token: &str) -> Result<ContinueToken, ApiError> {
    base64_decode(token)
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| ApiError::bad_request("continue key is not valid: invalid continue token"))
}

fn parse_resource_version(value: &str) -> Result<u64, ApiError> {
    value.parse().map_err(|_| {
        ApiError::new(
            400,
            "BadRequest",
            format!("resourceVersion: Invalid value: \"{value}\": strconv.ParseUint: parsing \"{value}\": invalid syntax"),
        )
    })
}

fn expired(error: Expired) -> ApiError {
    ApiError::expired(error.requested, error.oldest)
}

pub(super) fn list(ctx: &Ctx<'_>) -> Result<Reply, ApiError> {
    let filter = filter(ctx)?;
    let limit = match ctx.request.param("limit") {
        Some(limit) => limit
            .parse::<usize>()
            .map_err(|_| ApiError::bad_request(format!("invalid limit {limit:?}")))?,
        None => 0,
    };
    let continue_from = ctx
        .request
        .param("continue")
        .map(decode_continue)
        .transpose()?;
    let exact = match (
        ctx.request.param("resourceVersionMatch"),
        ctx.request.param("resourceVersion"),
    ) {
        (Some("Exact"), Some(rv)) => Some(parse_resource_version(rv)?),
        (Some("Exact"), None) => {
            return Err(ApiError::bad_request(
                "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided",
            ));
        }
        _ => None,
    };
    let (items, resource_version, next_page) = {
        let state = ctx.shared.state();
        let store = &state.store;
        let current = store.resource_version();
        let target = match &continue_from {
            Some(token) => u64::try_from(token.rv).ok(),
            None => exact,
        };
        let snapshot: Vec<(ObjectKey, Arc<Value>)> = match target {
            Some(rv) if rv < current => {
                match (store.snapshot_at(ctx.resource.id, rv), &continue_from) {
                    (Ok(snapshot), _) => snapshot.into_iter().collect(),
                    (Err(_), Some(token)) => {
                        let mut status = ApiError::continue_expired().to_status();
                        status["metadata"]["continue"] =
                            Value::String(encode_continue(&ContinueToken {
                                rv: CONTINUE_AT_LATEST,
                                namespace: token.namespace.clone(),
                                name: token.name.clone(),
                            }));
                        return Ok(Reply::json(410, status));
                    }
                    (Err(_), None) => return Err(list_expired()),
                }
            }
            _ => match &ctx.namespace {
                Some(ns) => store
                    .list_namespace(ctx.resource.id, ns)
                    .map(|(k, v)| (k.clone(), Arc::clone(v)))
                    .collect(),
                None => store
                    .list(ctx.resource.id)
                    .map(|(k, v)| (k.clone(), Arc::clone(v)))
                    .collect(),
            },
        };
        let resource_version = target.filter(|rv| *rv < current).unwrap_or(current);
        let after = continue_from
            .as_ref()
            .map(|c| ObjectKey::new(c.namespace.clone(), c.name.clone()));
        let mut matching = snapshot
            .into_iter()
            .filter(|(key, _)| after.as_ref().is_none_or(|a| key > a))
            .filter(|(_, object)| filter.matches(object));
        let mut items = Vec::new();
        let mut next_page = None;
        while let Some((key, object)) = matching.next() {
            items.push(object);
            if limit > 0 && items.len() == limit {
                let remaining = matching.by_ref().count();
                if remaining > 0 {
                    let token = encode_continue(&ContinueToken {
                        rv: i64::try_from(resource_version).unwrap_or(CONTINUE_AT_LATEST),
                        namespace: key.namespace,
                        name: key.name,
                    });
                    next_page = Some((token, remaining));
                }
                break;
            }
        }
        (items, resource_version, next_page)
    };
    let (continue_token, remaining) = next_page.unzip();
    Ok(Reply::json(
        200,
        ctx.view()
            .render_list(&items, resource_version, continue_token, remaining),
    ))
}

pub(super) fn watch(ctx: &Ctx<'_>) -> Result<Reply, ApiError> {
    let filter = filter(ctx)?;
    let bookmarks = ctx.request.flag("allowWatchBookmarks");
    let send_initial_events = ctx.request.flag("sendInitialEvents");
    let timeout_seconds = ctx
        .request
        .param("timeoutSeconds")
        .map(|t| {
            t.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid timeoutSeconds {t:?}")))
        })
        .transpose()?;
    let timeouts = ctx.shared.settings.watch_timeouts;
    let timeout = match timeouts {
        Some(timeouts) => Some(timeouts.timeout_for(timeout_seconds)),
        None => timeout_seconds.map(Duration::from_secs),
    };
    let from = match ctx.request.param("resourceVersion") {
        None | Some("0") => None,
        Some(_) if send_initial_events => None,
        Some(rv) => Some(parse_resource_version(rv)?),
    };
    let resource_id = ctx.resource.id;
    let (start, registration) = {
        let mut state = ctx.shared.state();
        let start = match from {
            None => {
                let objects = match &ctx.namespace {
                    Some(ns) => state
                        .store
                        .list_namespace(resource_id, ns)
                        .map(|(_, v)| Arc::clone(v))
                        .collect(),
                    None => state
                        .store
                        .list(resource_id)
                        .map(|(_, v)| Arc::clone(v))
                        .collect(),
                };
                WatchStart::Snapshot {
                    objects,
                    resource_version: state.store.resource_version(),
                    initial_events_end: send_initial_events,
                }
            }
            Some(rv) => match state.store.watch_changes_since(rv) {
                Ok(changes) => WatchStart::Replay(
                    changes
                        .into_iter()
                        .filter(|c| c.resource == resource_id)
                        .filter(|c| {
                            ctx.namespace
                                .as_ref()
                                .is_none_or(|ns| *ns == c.key.namespace)
                        })
                        .collect(),
                ),
                Err(e) => WatchStart::Expired(expired(e)),
            },
        };
        let registration = match start {
            WatchStart::Expired(_) => {
                state.hub.record_expired();
                None
            }
            _ => Some(state.hub.register(
                resource_id,
                ctx.namespace.clone(),
                bookmarks,
                ctx.shared.settings.watch_buffer,
            )),
        };
        (start, registration)
    };
    let mut pre_timeout_bookmark = None;
    let (items, guard) = match registration {
        Some((id, items)) => {
            let shared: Weak<_> = Arc::downgrade(ctx.shared);
            if let Some(timeouts) = timeouts {
                let shared = Weak::clone(&shared);
                let request: Box<dyn FnOnce() + Send> = Box::new(move || {
                    if let Some(shared) = shared.upgrade() {
                        let mut state = shared.state();
                        let resource_version = state.store.resource_version();
                        state.hub.bookmark_one(id, resource_version);
                    }
                });
                pre_timeout_bookmark = Some((timeouts.pre_timeout_bookmark, request));
            }
            let guard = OnDrop::new(move || {
                if let Some(shared) = shared.upgrade() {
                    shared.state().hub.unregister(id);
                }
            });
            (items, guard)
        }
        None => (mpsc::channel(1).1, OnDrop::new(|| {})),
    };
    let (out, events) = mpsc::channel(WATCH_OUTPUT_BUFFER);
    let stream = WatchStream {
        view: ctx.view(),
        filter,
        start,
        timeout,
        bookmarks,
        pre_timeout_bookmark,
    };
    tokio::spawn(watch::run(stream, items, out, guard));
    Ok(Reply::stream(events))
}
