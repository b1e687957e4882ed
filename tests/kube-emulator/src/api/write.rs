//! create, update (PUT), patch (JSON patch, merge patch, server-side apply),
//! delete and deletecollection.
//!
//! The rules follow the real API server: status-subresource isolation,
//! `metadata.generation` bumps on spec changes only, optimistic concurrency on
//! `metadata.resourceVersion`, two-phase deletion with finalizers, namespaces
//! that terminate and disappear once empty. Server-side apply is approximated
//! as create-or-merge (RFC 7386 merge of the applied configuration, no field
//! ownership or conflicts between managers).

use std::sync::Arc;

use serde_json::{Value, json};

use super::meta::{self, finalizers, is_being_deleted, meta_str, metadata_mut};
use super::{Ctx, Reply};
use crate::resources::{Builtin, Registry, ResourceType};
use crate::schema::UnknownFields;
use crate::state::State;
use crate::status::{ApiError, FieldError, FieldErrorKind, GroupResource, success_status};
use crate::store::ObjectKey;
use crate::view::ObjectFilter;

/// Which part of the object a write may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// The main resource: everything but `.status` when there is a status subresource.
    Main,
    /// The `/status` subresource: only `.status`.
    Status,
}

fn target(ctx: &Ctx<'_>) -> Target {
    if ctx.status_subresource {
        Target::Status
    } else {
        Target::Main
    }
}

fn parse_body(ctx: &Ctx<'_>) -> Result<Value, ApiError> {
    if ctx
        .request
        .content_type
        .starts_with(crate::proto::CONTENT_TYPE)
    {
        return crate::proto::decode(&ctx.request.body)
            .map_err(|why| ApiError::new(415, "UnsupportedMediaType", why));
    }
    let value: Value = serde_json::from_slice(&ctx.request.body).map_err(|e| {
        ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
    })?;
    if !value.is_object() {
        return Err(ApiError::bad_request(
            "couldn't get version/kind; json parse error: the object is not a JSON object",
        ));
    }
    Ok(value)
}

fn unknown_field_mode(ctx: &Ctx<'_>) -> Result<UnknownFields, ApiError> {
    match ctx.request.param("fieldValidation") {
        None | Some("Warn") => Ok(UnknownFields::Warn),
        Some("Ignore") => Ok(UnknownFields::Ignore),
        Some("Strict") => Ok(UnknownFields::Strict),
        Some(other) => Err(ApiError::bad_request(format!(
            "fieldValidation: Unsupported value: \"{other}\": supported values: \"Ignore\", \"Strict\", \"Warn\""
        ))),
    }
}

fn check_type_meta(ctx: &Ctx<'_>, object: &Value) -> Result<(), ApiError> {
    let expected = ctx.resource.api_version(&ctx.version.name);
    if let Some(api_version) = object.get("apiVersion").and_then(Value::as_str)
        && api_version != expected
    {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({api_version}) does not match the expected API version ({expected})"
        )));
    }
    if let Some(kind) = object.get("kind").and_then(Value::as_str)
        && kind != ctx.resource.kind
    {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({kind}) does not match the expected kind ({})",
            ctx.resource.kind
        )));
    }
    Ok(())
}

/// Sets `apiVersion` and `kind` to the storage version's.
fn to_storage_form(resource: &ResourceType, object: &mut Value) {
    if let Some(map) = object.as_object_mut() {
        map.insert(
            "apiVersion".into(),
            json!(resource.api_version(&resource.storage_version().name)),
        );
        map.insert("kind".into(), json!(resource.kind));
    }
}

/// Prunes, defaults and validates; returns the warnings to send.
fn admit(
    ctx: &Ctx<'_>,
    object: &mut Value,
    target: Target,
    mode: UnknownFields,
    mut errors: Vec<FieldError>,
) -> Result<Vec<String>, ApiError> {
    let kind = &ctx.resource.kind;
    let cannot_handle = |why: &str| {
        ApiError::bad_request(format!(
            "{kind} in version \"{}\" cannot be handled as a {kind}: {why}",
            ctx.version.name
        ))
    };
    let mut unknown = Vec::new();
    if target == Target::Main {
        unknown.extend(meta::prune_metadata(object));
        errors.extend(meta::validate_metadata(object).map_err(|why| cannot_handle(&why))?);
    }
    if let Some(schema) = &ctx.version.schema {
        let admission = match target {
            Target::Main => schema.admit_root(object),
            Target::Status => schema.admit_property(object, "status"),
        };
        unknown.extend(admission.unknown_fields);
        errors.extend(admission.errors);
    }
    let unknown: Vec<String> = unknown
        .iter()
        .map(|field| format!("unknown field \"{field}\""))
        .collect();
    if mode == UnknownFields::Strict && !unknown.is_empty() {
        return Err(cannot_handle(&format!(
            "strict decoding error: {}",
            unknown.join(", ")
        )));
    }
    if !errors.is_empty() {
        let name = meta_str(object, "name").unwrap_or_default().to_string();
        return Err(ApiError::invalid(kind, &ctx.resource.group, &name, &errors));
    }
    Ok(if mode == UnknownFields::Warn {
        unknown
    } else {
        Vec::new()
    })
}

fn check_namespace_of_body(ctx: &Ctx<'_>, object: &mut Value) -> Result<(), ApiError> {
    let metadata = metadata_mut(object);
    if ctx.resource.namespaced {
        let url_namespace = ctx.namespace.clone().unwrap_or_default();
        match metadata.get("namespace").and_then(Value::as_str) {
            Some(ns) if !ns.is_empty() && ns != url_namespace => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            _ => {
                metadata.insert("namespace".into(), json!(url_namespace));
            }
        }
    } else {
        metadata.remove("namespace");
    }
    Ok(())
}

struct Prepared {
    object: Value,
    warnings: Vec<String>,
}

fn prepare_create(
    ctx: &Ctx<'_>,
    mut object: Value,
    mode: UnknownFields,
) -> Result<Prepared, ApiError> {
    check_type_meta(ctx, &object)?;
    check_namespace_of_body(ctx, &mut object)?;
    if meta_str(&object, "resourceVersion").is_some_and(|rv| !rv.is_empty()) {
        // The real storage layer refuses this with an internal error, not a 4xx.
        return Err(ApiError::internal(
            "resourceVersion should not be set on objects to be created",
        ));
    }
    let mut errors = Vec::new();
    let metadata = metadata_mut(&mut object);
    let name = match metadata.get("name").and_then(Value::as_str) {
        Some(name) if !name.is_empty() => name.to_string(),
        _ => match metadata.get("generateName").and_then(Value::as_str) {
            Some(prefix) if !prefix.is_empty() => meta::generate_name(prefix),
            _ => {
                errors.push(FieldError {
                    kind: FieldErrorKind::Required,
                    field: "metadata.name".to_string(),
                    value: None,
                    detail: "name or generateName is required".to_string(),
                });
                String::new()
            }
        },
    };
    if !name.is_empty() {
        errors.extend(meta::validate_name(
            &name,
            ctx.resource.builtin == Some(Builtin::Namespace),
        ));
    }
    metadata.insert("name".into(), json!(name));
    if ctx.version.status_subresource {
        // Status is owned by the subresource and reset on create.
        if let Some(map) = object.as_object_mut() {
            map.remove("status");
        }
    }
    let warnings = admit(ctx, &mut object, Target::Main, mode, errors)?;
    if ctx.resource.builtin == Some(Builtin::Namespace) {
        object["spec"] = json!({"finalizers": ["kubernetes"]});
        object["status"] = json!({"phase": "Active"});
        let metadata = metadata_mut(&mut object);
        let labels = metadata.entry("labels").or_insert_with(|| json!({}));
        labels["kubernetes.io/metadata.name"] = json!(name);
    }
    let tracks_generation = ctx.resource.tracks_generation();
    let metadata = metadata_mut(&mut object);
    for server_owned in [
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "resourceVersion",
        "selfLink",
        "generation",
    ] {
        metadata.remove(server_owned);
    }
    metadata.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
    metadata.insert("creationTimestamp".into(), json!(meta::now()));
    if tracks_generation {
        metadata.insert("generation".into(), json!(1));
    }
    to_storage_form(ctx.resource, &mut object);
    Ok(Prepared { object, warnings })
}

fn namespace_accepts(
    state: &State,
    registry: &Registry,
    gr: &GroupResource,
    name: &str,
    namespace: &str,
) -> Result<(), ApiError> {
    let namespaces = registry.namespaces();
    let Some(ns) = state
        .store
        .get(namespaces.id, &ObjectKey::new("", namespace))
    else {
        return Err(ApiError::not_found(&namespaces.group_resource(), namespace));
    };
    if is_being_deleted(ns) {
        return Err(ApiError::namespace_terminating(gr, name, namespace));
    }
    Ok(())
}

fn commit_create(
    state: &mut State,
    ctx: &Ctx<'_>,
    mut object: Value,
) -> Result<Arc<Value>, ApiError> {
    let gr = ctx.group_resource();
    let namespace = meta_str(&object, "namespace")
        .unwrap_or_default()
        .to_string();
    let mut name = meta_str(&object, "name").unwrap_or_default().to_string();
    if ctx.resource.namespaced {
        namespace_accepts(state, &ctx.shared.registry, &gr, &name, &namespace)?;
    }
    let generate_prefix = meta_str(&object, "generateName").map(str::to_string);
    let mut attempts = 0;
    while state
        .store
        .get(ctx.resource.id, &ObjectKey::new(&namespace, &name))
        .is_some()
    {
        match &generate_prefix {
            Some(prefix) if name.starts_with(prefix.as_str()) && attempts < 8 => {
                attempts += 1;
                name = meta::generate_name(prefix);
                metadata_mut(&mut object).insert("name".into(), json!(name));
            }
            _ => return Err(ApiError::already_exists(&gr, &name)),
        }
    }
    if ctx.dry_run() {
        return Ok(Arc::new(object));
    }
    let change = state
        .store
        .put(ctx.resource.id, ObjectKey::new(namespace, name), object);
    state.publish(&change);
    Ok(Arc::clone(&change.object))
}

pub(super) fn create(ctx: &Ctx<'_>) -> Result<Reply, ApiError> {
    if ctx.status_subresource || ctx.name.is_some() {
        return Err(ApiError::method_not_supported(
            &ctx.group_resource(),
            "create",
        ));
    }
    let body = parse_body(ctx)?;
    let mode = unknown_field_mode(ctx)?;
    let prepared = prepare_create(ctx, body, mode)?;
    let stored = {
        let mut state = ctx.shared.state();
        commit_create(&mut state, ctx, prepared.object)?
    };
    Ok(Reply::json(201, ctx.view().object(&stored)).with_warnings(&prepared.warnings))
}

fn check_name_of_body(ctx: &Ctx<'_>, object: &mut Value) -> Result<(), ApiError> {
    let url_name = ctx.name().to_string();
    let metadata = metadata_mut(object);
    match metadata.get("name").and_then(Value::as_str) {
        Some(name) if !name.is_empty() && name != url_name => Err(ApiError::bad_request(format!(
            "the name of the object ({name}) does not match the name on the URL ({url_name})"
        ))),
        _ => {
            metadata.insert("name".into(), json!(url_name));
            Ok(())
        }
    }
}

struct Updated {
    object: Arc<Value>,
    warnings: Vec<String>,
}

/// Turns the client's desired object into the next stored state and commits it.
fn apply_update(
    state: &mut State,
    ctx: &Ctx<'_>,
    existing: &Arc<Value>,
    incoming: Value,
    mode: UnknownFields,
) -> Result<Updated, ApiError> {
    let gr = ctx.group_resource();
    let name = ctx.name().to_string();
    let current_version = meta_str(existing, "resourceVersion").unwrap_or_default();
    if let Some(requested) = meta_str(&incoming, "resourceVersion")
        && !requested.is_empty()
        && requested != current_version
    {
        return Err(ApiError::conflict_modified(&gr, &name));
    }
    let target = target(ctx);
    let (mut next, warnings) = match target {
        Target::Main => {
            let mut next = incoming;
            check_type_meta(ctx, &next)?;
            if ctx.version.status_subresource {
                match existing.get("status") {
                    Some(status) => next["status"] = status.clone(),
                    None => {
                        if let Some(map) = next.as_object_mut() {
                            map.remove("status");
                        }
                    }
                }
            }
            let warnings = admit(ctx, &mut next, Target::Main, mode, Vec::new())?;
            let old_metadata = existing.get("metadata").cloned().unwrap_or_default();
            let metadata = metadata_mut(&mut next);
            for field in meta::SERVER_OWNED {
                match old_metadata.get(field) {
                    Some(value) => {
                        metadata.insert(field.into(), value.clone());
                    }
                    None => {
                        metadata.remove(field);
                    }
                }
            }
            (next, warnings)
        }
        Target::Status => {
            let mut next = (**existing).clone();
            match incoming.get("status") {
                Some(status) => next["status"] = status.clone(),
                None => {
                    if let Some(map) = next.as_object_mut() {
                        map.remove("status");
                    }
                }
            }
            let warnings = admit(ctx, &mut next, Target::Status, mode, Vec::new())?;
            (next, warnings)
        }
    };
    to_storage_form(ctx.resource, &mut next);
    if is_being_deleted(existing) {
        let old = finalizers(existing);
        let added: Vec<String> = finalizers(&next)
            .into_iter()
            .filter(|f| !old.contains(f))
            .collect();
        if !added.is_empty() {
            let quoted: Vec<String> = added.iter().map(|f| format!("{f:?}")).collect();
            return Err(ApiError::invalid(
                &ctx.resource.kind,
                &ctx.resource.group,
                &name,
                &[FieldError::forbidden(
                    "metadata.finalizers",
                    format!(
                        "no new finalizers can be added if the object is being deleted, found new finalizers []string{{{}}}",
                        quoted.join(", ")
                    ),
                )],
            ));
        }
    }
    if ctx.resource.tracks_generation() && target == Target::Main {
        let excluded: &[&str] = if ctx.version.status_subresource {
            &["apiVersion", "kind", "metadata", "status"]
        } else {
            &["apiVersion", "kind", "metadata"]
        };
        if meta::content_without(existing, excluded) != meta::content_without(&next, excluded) {
            let generation = existing
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            metadata_mut(&mut next).insert("generation".into(), json!(generation + 1));
        }
    }
    metadata_mut(&mut next).insert("resourceVersion".into(), json!(current_version));
    if next == **existing {
        // A no-op write keeps the resourceVersion and emits no event, like the real server.
        return Ok(Updated {
            object: Arc::clone(existing),
            warnings,
        });
    }
    if ctx.dry_run() {
        return Ok(Updated {
            object: Arc::new(next),
            warnings,
        });
    }
    let key = ctx.key(&name);
    let finished = is_being_deleted(&next) && finalizers(&next).is_empty();
    if finished && ctx.resource.builtin != Some(Builtin::Namespace) {
        let change = state
            .store
            .remove(ctx.resource.id, &key, Some(next))
            .ok_or_else(|| ApiError::not_found(&gr, &name))?;
        state.publish(&change);
        finish_namespace_if_empty(state, &ctx.shared.registry, &key.namespace);
        return Ok(Updated {
            object: Arc::clone(&change.object),
            warnings,
        });
    }
    let change = state.store.put(ctx.resource.id, key, next);
    state.publish(&change);
    let mut object = Arc::clone(&change.object);
    if finished && let Some(removed) = finish_namespace_if_empty(state, &ctx.shared.registry, &name)
    {
        object = removed;
    }
    Ok(Updated { object, warnings })
}

pub(super) fn update(ctx: &Ctx<'_>) -> Result<Reply, ApiError> {
    let mut incoming = parse_body(ctx)?;
    let mode = unknown_field_mode(ctx)?;
    check_name_of_body(ctx, &mut incoming)?;
    check_namespace_of_body(ctx, &mut incoming)?;
    let updated = {
        let mut state = ctx.shared.state();
        let existing = state
            .store
            .get(ctx.resource.id, &ctx.key(ctx.name()))
            .cloned()
            .ok_or_else(|| ApiError::not_found(&ctx.group_resource(), ctx.name()))?;
        apply_update(&mut state, ctx, &existing, incoming, mode)?
    };
    Ok(Reply::json(200, ctx.view().object(&updated.object)).with_warnings(&updated.warnings))
}

enum PatchDocument {
    Json(json_patch::Patch),
    Merge(Value),
    Apply(Value),
}

const CUSTOM_PATCH_TYPES: [&str; 3] = [
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/apply-patch+yaml",
];
const BUILTIN_PATCH_TYPES: [&str; 4] = [
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
];

fn parse_patch(ctx: &Ctx<'_>) -> Result<PatchDocument, ApiError> {
    let content_type = ctx
        .request
        .content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let body = &ctx.request.body;
    let bad =
        |e: &dyn std::fmt::Display| ApiError::bad_request(format!("error decoding patch: {e}"));
    match content_type.as_str() {
        "application/json-patch+json" => serde_json::from_slice(body)
            .map(PatchDocument::Json)
            .map_err(|e| bad(&e)),
        "application/merge-patch+json" => serde_json::from_slice(body)
            .map(PatchDocument::Merge)
            .map_err(|e| bad(&e)),
        "application/strategic-merge-patch+json" if !ctx.resource.is_custom() => {
            // Built-in types: approximated by a merge patch (no patch strategies).
            serde_json::from_slice(body)
                .map(PatchDocument::Merge)
                .map_err(|e| bad(&e))
        }
        "application/apply-patch+yaml" => {
            if ctx.request.param("fieldManager").is_none() {
                return Err(ApiError::new(
                    422,
                    "Invalid",
                    "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
                ));
            }
            serde_yaml_ng::from_slice::<Value>(body)
                .map(PatchDocument::Apply)
                .map_err(|e| bad(&e))
        }
        other => {
            let accepted: &[&str] = if ctx.resource.is_custom() {
                &CUSTOM_PATCH_TYPES
            } else {
                &BUILTIN_PATCH_TYPES
            };
            Err(ApiError::unsupported_media_type(other, accepted))
        }
    }
}

pub(super) fn patch(ctx: &Ctx<'_>) -> Result<Reply, ApiError> {
    let document = parse_patch(ctx)?;
    let mode = unknown_field_mode(ctx)?;
    let mut state = ctx.shared.state();
    let existing = state
        .store
        .get(ctx.resource.id, &ctx.key(ctx.name()))
        .cloned();
    let Some(existing) = existing else {
        return match document {
            PatchDocument::Apply(mut applied) if target(ctx) == Target::Main => {
                check_name_of_body(ctx, &mut applied)?;
                let prepared = prepare_create(ctx, applied, mode)?;
                let stored = commit_create(&mut state, ctx, prepared.object)?;
                drop(state);
                Ok(Reply::json(201, ctx.view().object(&stored)).with_warnings(&prepared.warnings))
            }
            _ => Err(ApiError::not_found(&ctx.group_resource(), ctx.name())),
        };
    };
    let mut patched = ctx.view().object(&existing);
    match &document {
        PatchDocument::Json(operations) => json_patch::patch(&mut patched, operations)
            .map_err(|e| ApiError::new(422, "Invalid", e.to_string()))?,
        PatchDocument::Merge(merge) | PatchDocument::Apply(merge) => {
            json_patch::merge(&mut patched, merge)
        }
    }
    if !patched.is_object() {
        return Err(ApiError::new(
            422,
            "Invalid",
            "the patched object is not a JSON object",
        ));
    }
    check_name_of_body(ctx, &mut patched)?;
    check_namespace_of_body(ctx, &mut patched)?;
    let updated = apply_update(&mut state, ctx, &existing, patched, mode)?;
    drop(state);
    Ok(Reply::json(200, ctx.view().object(&updated.object)).with_warnings(&updated.warnings))
}

/// What a delete did.
enum Deletion {
    /// Finalizers remain: marked for deletion and kept.
    Pending(Arc<Value>),
    /// Gone.
    Removed(Arc<Value>),
}

fn delete_object(
    state: &mut State,
    registry: &Registry,
    resource: &ResourceType,
    key: &ObjectKey,
    dry_run: bool,
) -> Option<Deletion> {
    let existing = state.store.get(resource.id, key)?.clone();
    if !finalizers(&existing).is_empty() {
        if is_being_deleted(&existing) {
            return Some(Deletion::Pending(existing));
        }
        let mut next = (*existing).clone();
        let generation = next.pointer("/metadata/generation").and_then(Value::as_i64);
        let metadata = metadata_mut(&mut next);
        metadata.insert("deletionTimestamp".into(), json!(meta::now()));
        metadata.insert("deletionGracePeriodSeconds".into(), json!(0));
        if let Some(generation) = generation {
            metadata.insert("generation".into(), json!(generation + 1));
        }
        if dry_run {
            return Some(Deletion::Pending(Arc::new(next)));
        }
        let change = state.store.put(resource.id, key.clone(), next);
        state.publish(&change);
        return Some(Deletion::Pending(Arc::clone(&change.object)));
    }
    if dry_run {
        return Some(Deletion::Removed(existing));
    }
    let change = state.store.remove(resource.id, key, None)?;
    state.publish(&change);
    finish_namespace_if_empty(state, registry, &key.namespace);
    Some(Deletion::Removed(Arc::clone(&change.object)))
}

/// Removes a terminating namespace once nothing is left in it.
fn finish_namespace_if_empty(
    state: &mut State,
    registry: &Registry,
    namespace: &str,
) -> Option<Arc<Value>> {
    if namespace.is_empty() {
        return None;
    }
    let namespaces = registry.namespaces();
    let key = ObjectKey::new("", namespace);
    let ns = state.store.get(namespaces.id, &key)?;
    if !is_being_deleted(ns) || !finalizers(ns).is_empty() {
        return None;
    }
    if state.store.has_objects_in_namespace(namespace) {
        return None;
    }
    let change = state.store.remove(namespaces.id, &key, None)?;
    state.publish(&change);
    Some(Arc::clone(&change.object))
}

fn delete_namespace(
    state: &mut State,
    registry: &Registry,
    name: &str,
    dry_run: bool,
) -> Option<Arc<Value>> {
    let namespaces = registry.namespaces();
    let key = ObjectKey::new("", name);
    let existing = state.store.get(namespaces.id, &key)?.clone();
    if dry_run {
        return Some(existing);
    }
    let mut latest = existing;
    if !is_being_deleted(&latest) {
        let mut next = (*latest).clone();
        metadata_mut(&mut next).insert("deletionTimestamp".into(), json!(meta::now()));
        next["status"] = json!({"phase": "Terminating"});
        let change = state.store.put(namespaces.id, key.clone(), next);
        state.publish(&change);
        latest = Arc::clone(&change.object);
    }
    for (resource, object_key) in state.store.keys_in_namespace(name) {
        delete_object(state, registry, registry.get(resource), &object_key, false);
    }
    Some(finish_namespace_if_empty(state, registry, name).unwrap_or(latest))
}

fn check_preconditions(ctx: &Ctx<'_>, options: &Value, existing: &Value) -> Result<(), ApiError> {
    let gr = ctx.group_resource();
    let preconditions = options.get("preconditions");
    if let Some(uid) = preconditions
        .and_then(|p| p.get("uid"))
        .and_then(Value::as_str)
    {
        let actual = meta_str(existing, "uid").unwrap_or_default();
        if uid != actual {
            return Err(ApiError::conflict(
                &gr,
                ctx.name(),
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {actual}"
                ),
            ));
        }
    }
    if let Some(rv) = preconditions
        .and_then(|p| p.get("resourceVersion"))
        .and_then(Value::as_str)
    {
        let actual = meta_str(existing, "resourceVersion").unwrap_or_default();
        if rv != actual {
            return Err(ApiError::conflict(
                &gr,
                ctx.name(),
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {actual}"
                ),
            ));
        }
    }
    Ok(())
}

fn delete_options(ctx: &Ctx<'_>) -> Result<(Value, bool), ApiError> {
    // Typed clients may send protobuf DeleteOptions; their defaults are what we do anyway.
    let is_protobuf = ctx
        .request
        .content_type
        .starts_with(crate::proto::CONTENT_TYPE);
    let options: Value = if is_protobuf || ctx.request.body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(&ctx.request.body)
            .map_err(|e| ApiError::bad_request(format!("invalid DeleteOptions: {e}")))?
    };
    let dry_run = ctx.dry_run()
        || options
            .get("dryRun")
            .and_then(Value::as_array)
            .is_some_and(|d| d.iter().any(|v| v == "All"));
    Ok((options, dry_run))
}

pub(super) fn delete(ctx: &Ctx<'_>) -> Result<Reply, ApiError> {
    if ctx.status_subresource {
        return Err(ApiError::method_not_supported(
            &ctx.group_resource(),
            "delete",
        ));
    }
    let (options, dry_run) = delete_options(ctx)?;
    let gr = ctx.group_resource();
    let name = ctx.name();
    let key = ctx.key(name);
    let registry = &ctx.shared.registry;
    let mut state = ctx.shared.state();
    let existing = state
        .store
        .get(ctx.resource.id, &key)
        .cloned()
        .ok_or_else(|| ApiError::not_found(&gr, name))?;
    check_preconditions(ctx, &options, &existing)?;
    if ctx.resource.builtin == Some(Builtin::Namespace) {
        let namespace = delete_namespace(&mut state, registry, name, dry_run)
            .ok_or_else(|| ApiError::not_found(&gr, name))?;
        drop(state);
        return Ok(Reply::json(200, ctx.view().object(&namespace)));
    }
    let deletion = delete_object(&mut state, registry, ctx.resource, &key, dry_run)
        .ok_or_else(|| ApiError::not_found(&gr, name))?;
    drop(state);
    Ok(match deletion {
        Deletion::Pending(object) => Reply::json(200, ctx.view().object(&object)),
        Deletion::Removed(object) => {
            let uid = meta_str(&object, "uid").unwrap_or_default();
            Reply::json(200, success_status(&gr, name, uid))
        }
    })
}

pub(super) fn delete_collection(ctx: &Ctx<'_>) -> Result<Reply, ApiError> {
    let filter: ObjectFilter = super::read::filter(ctx)?;
    let (_, dry_run) = delete_options(ctx)?;
    let registry = &ctx.shared.registry;
    let mut state = ctx.shared.state();
    let keys: Vec<ObjectKey> = state
        .store
        .list(ctx.resource.id)
        .filter(|(_, object)| filter.matches(object))
        .map(|(key, _)| key.clone())
        .collect();
    let mut affected = Vec::new();
    for key in keys {
        let outcome = if ctx.resource.builtin == Some(Builtin::Namespace) {
            delete_namespace(&mut state, registry, &key.name, dry_run)
        } else {
            delete_object(&mut state, registry, ctx.resource, &key, dry_run).map(|d| match d {
                Deletion::Pending(o) | Deletion::Removed(o) => o,
            })
        };
        affected.extend(outcome);
    }
    let resource_version = state.store.resource_version();
    drop(state);
    Ok(Reply::json(
        200,
        ctx.view()
            .render_list(&affected, resource_version, None, None),
    ))
}
