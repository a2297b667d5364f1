//! PATCH (RFC 7644 §3.5.2) applied to a resource's JSON document, in every form providers send:
//! ops in any case, paths with value filters, sub-attributes and URN prefixes, no-path ops with
//! object values (including Entra's dotted and URN keys). Group `members` are not part of the
//! document: their changes are collected into `MemberChanges`, so storage touches only the
//! changed membership rows. All ops are applied in order to a copy; an error means nothing changed.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::ScimError;
use super::filter::{
    AttrPath, CompValue, CompareOp, Filter, get_ci, is_core_urn, parse_patch_path,
};

/// Most operations accepted in one PATCH request.
pub const MAX_OPERATIONS: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    Add,
    Replace,
    Remove,
}

#[derive(Debug, Clone)]
pub struct PatchOp {
    pub kind: OpKind,
    pub path: Option<String>,
    pub value: Option<Value>,
}

/// Membership changes a PATCH asks for, folded in order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MemberChanges {
    /// When set, the final member set (a `replace` or a remove-all happened).
    pub replace_all: Option<BTreeSet<String>>,
    pub add: BTreeSet<String>,
    pub remove: BTreeSet<String>,
}

impl MemberChanges {
    pub fn is_empty(&self) -> bool {
        self.replace_all.is_none() && self.add.is_empty() && self.remove.is_empty()
    }

    fn add(&mut self, id: String) {
        match &mut self.replace_all {
            Some(all) => {
                all.insert(id);
            }
            None => {
                self.remove.remove(&id);
                self.add.insert(id);
            }
        }
    }

    fn remove(&mut self, id: &str) {
        match &mut self.replace_all {
            Some(all) => {
                all.remove(id);
            }
            None => {
                self.add.remove(id);
                self.remove.insert(id.to_string());
            }
        }
    }

    fn replace(&mut self, ids: BTreeSet<String>) {
        self.add.clear();
        self.remove.clear();
        self.replace_all = Some(ids);
    }
}

/// Parses a PatchOp request body.
pub fn parse_request(body: &Value) -> Result<Vec<PatchOp>, ScimError> {
    let ops = get_ci(body, "Operations")
        .and_then(Value::as_array)
        .ok_or_else(|| ScimError::invalid_syntax("PATCH body needs an `Operations` array"))?;
    if ops.is_empty() {
        return Err(ScimError::invalid_syntax("`Operations` is empty"));
    }
    if ops.len() > MAX_OPERATIONS {
        return Err(ScimError::too_many(format!(
            "at most {MAX_OPERATIONS} operations per PATCH request"
        )));
    }
    ops.iter()
        .enumerate()
        .map(|(i, op)| {
            let kind = match get_ci(op, "op")
                .and_then(Value::as_str)
                .map(str::to_ascii_lowercase)
            {
                Some(k) if k == "add" => OpKind::Add,
                Some(k) if k == "replace" => OpKind::Replace,
                Some(k) if k == "remove" => OpKind::Remove,
                Some(k) => {
                    return Err(ScimError::invalid_syntax(format!(
                        "operation {i}: unknown op `{k}` (expected add, replace or remove)"
                    )));
                }
                None => {
                    return Err(ScimError::invalid_syntax(format!(
                        "operation {i}: missing `op`"
                    )));
                }
            };
            let path = match get_ci(op, "path") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) if s.trim().is_empty() => None,
                Some(Value::String(s)) => Some(s.trim().to_string()),
                Some(_) => {
                    return Err(ScimError::invalid_path(format!(
                        "operation {i}: `path` must be a string"
                    )));
                }
            };
            let value = get_ci(op, "value").cloned();
            if kind != OpKind::Remove && value.is_none() {
                return Err(ScimError::invalid_syntax(format!(
                    "operation {i}: `value` is required"
                )));
            }
            if kind == OpKind::Remove && path.is_none() && value.is_none() {
                return Err(ScimError::no_target(format!(
                    "operation {i}: remove needs a `path`"
                )));
            }
            Ok(PatchOp { kind, path, value })
        })
        .collect()
}

/// Applies `ops` to `doc` (a resource object). With `members` given (groups), `members` ops are
/// collected there instead of the document. Names of read-only attributes are ignored.
pub fn apply(
    doc: &Value,
    ops: &[PatchOp],
    mut members: Option<&mut MemberChanges>,
    read_only: &[&str],
) -> Result<Value, ScimError> {
    let mut out = doc.clone();
    if !out.is_object() {
        return Err(ScimError::internal());
    }
    for (i, op) in ops.iter().enumerate() {
        apply_one(&mut out, op, members.as_deref_mut(), read_only).map_err(|mut e| {
            e.detail = format!("operation {i}: {}", e.detail);
            e
        })?;
    }
    Ok(out)
}

fn apply_one(
    doc: &mut Value,
    op: &PatchOp,
    members: Option<&mut MemberChanges>,
    read_only: &[&str],
) -> Result<(), ScimError> {
    match &op.path {
        None => {
            let Some(Value::Object(values)) = &op.value else {
                return Err(ScimError::invalid_value(
                    "without a `path`, `value` must be an object of attributes",
                ));
            };
            let mut members = members;
            for (key, value) in values {
                // Keys may be plain names, dotted (`name.givenName`) or URN-qualified.
                let (attr, filter, sub) = parse_patch_path(key).map_err(ScimError::invalid_path)?;
                if filter.is_some() {
                    return Err(ScimError::invalid_path(format!(
                        "`{key}` cannot carry a filter here"
                    )));
                }
                let value = value.clone();
                apply_path(
                    doc,
                    op.kind,
                    &attr,
                    None,
                    sub.as_deref(),
                    Some(value),
                    members.as_deref_mut(),
                    read_only,
                    true,
                )?;
            }
            Ok(())
        }
        Some(path) => {
            let (attr, filter, sub) = parse_patch_path(path)
                .map_err(|e| ScimError::invalid_path(format!("invalid path `{path}`: {e}")))?;
            apply_path(
                doc,
                op.kind,
                &attr,
                filter.as_ref(),
                sub.as_deref(),
                op.value.clone(),
                members,
                read_only,
                false,
            )
        }
    }
}

/// The object holding `attr` (the resource, or its extension object for a URN).
fn container<'a>(
    doc: &'a mut Value,
    attr: &AttrPath,
    create: bool,
) -> Option<&'a mut Map<String, Value>> {
    let root = doc.as_object_mut()?;
    match &attr.urn {
        Some(urn) if !is_core_urn(urn) => {
            let key = find_key(root, urn).unwrap_or_else(|| urn.clone());
            if !root.contains_key(&key) {
                if !create {
                    return None;
                }
                root.insert(key.clone(), Value::Object(Map::new()));
            }
            let ext = root.get_mut(&key)?;
            if !ext.is_object() {
                *ext = Value::Object(Map::new());
            }
            ext.as_object_mut()
        }
        _ => Some(root),
    }
}

fn find_key(obj: &Map<String, Value>, key: &str) -> Option<String> {
    obj.keys().find(|k| k.eq_ignore_ascii_case(key)).cloned()
}

/// A URN-only key or path (`"urn:…:enterprise:2.0:User": {…}`) parses as urn = everything
/// before the last `:` (ending in a version such as `2.0`) and name = `User`: it designates a
/// whole extension object, whose attributes are then merged rather than wiped.
fn extension_key(attr: &AttrPath) -> Option<String> {
    let urn = attr.urn.as_ref()?;
    if attr.sub.is_some() {
        return None;
    }
    let last = urn.rsplit(':').next()?;
    let is_version = last.contains('.') && last.chars().all(|c| c.is_ascii_digit() || c == '.');
    is_version.then(|| format!("{urn}:{}", attr.name))
}

#[allow(clippy::too_many_arguments)]
fn apply_path(
    doc: &mut Value,
    kind: OpKind,
    attr: &AttrPath,
    filter: Option<&Filter>,
    sub: Option<&str>,
    value: Option<Value>,
    members: Option<&mut MemberChanges>,
    read_only: &[&str],
    no_path: bool,
) -> Result<(), ScimError> {
    // The whole extension object (`urn:…:User` as a key or path): merge its attributes.
    if filter.is_none()
        && let Some(ext) = extension_key(attr)
    {
        let root = doc.as_object_mut().ok_or_else(ScimError::internal)?;
        if is_core_urn(&ext) {
            // A core schema URN as a key: its attributes belong to the resource itself.
            if let (OpKind::Add | OpKind::Replace, Some(Value::Object(values))) = (kind, value) {
                for (k, v) in values {
                    set_ci(root, &k, v);
                }
            }
            return Ok(());
        }
        let key = find_key(root, &ext).unwrap_or(ext);
        match (kind, value) {
            (OpKind::Remove, _) => {
                root.remove(&key);
            }
            (_, Some(Value::Object(values))) => {
                let target = root.entry(key).or_insert_with(|| Value::Object(Map::new()));
                if !target.is_object() {
                    *target = Value::Object(Map::new());
                }
                if let Some(t) = target.as_object_mut() {
                    for (k, v) in values {
                        set_ci(t, &k, v);
                    }
                }
            }
            _ => {
                return Err(ScimError::invalid_value(
                    "an extension's value must be an object",
                ));
            }
        }
        return Ok(());
    }

    if attr.urn_is_core() && read_only.iter().any(|r| attr.name.eq_ignore_ascii_case(r)) {
        return Ok(()); // Read-only attributes in a request are ignored (Okta sends `id`).
    }
    if attr.urn_is_core() && attr.name.eq_ignore_ascii_case("schemas") {
        return Ok(());
    }

    if let Some(m) = members
        && attr.urn_is_core()
        && attr.name.eq_ignore_ascii_case("members")
    {
        return apply_members(m, kind, filter, attr.sub.as_deref().or(sub), value, no_path);
    }

    let sub = attr.sub.as_deref().or(sub);
    let value = value.map(normalize_empty);
    let Some(obj) = container(doc, attr, kind != OpKind::Remove) else {
        return Ok(()); // Removing from an extension that is not there: nothing to do.
    };
    let key = find_key(obj, &attr.name).unwrap_or_else(|| attr.name.clone());

    if let Some(filter) = filter {
        return apply_filtered(obj, &key, kind, filter, sub, value);
    }

    match (kind, sub) {
        (OpKind::Remove, None) => {
            match (&value, obj.get_mut(&key)) {
                // `remove` with a value list removes those elements (Entra legacy, JumpCloud).
                (Some(Value::Array(victims)), Some(Value::Array(items))) => {
                    items.retain(|item| !victims.iter().any(|v| same_element(item, v)));
                }
                _ => {
                    obj.remove(&key);
                }
            }
        }
        (OpKind::Remove, Some(sub)) => match obj.get_mut(&key) {
            Some(Value::Object(inner)) => {
                if let Some(k) = find_key(inner, sub) {
                    inner.remove(&k);
                }
            }
            Some(Value::Array(items)) => {
                for item in items.iter_mut().filter_map(Value::as_object_mut) {
                    if let Some(k) = find_key(item, sub) {
                        item.remove(&k);
                    }
                }
            }
            _ => {}
        },
        (_, Some(sub)) => {
            let v = value.ok_or_else(|| ScimError::invalid_syntax("`value` is required"))?;
            let target = obj.entry(key).or_insert_with(|| Value::Object(Map::new()));
            match target {
                Value::Object(inner) => set_ci(inner, sub, v),
                Value::Array(items) => {
                    for item in items.iter_mut().filter_map(Value::as_object_mut) {
                        set_ci(item, sub, v.clone());
                    }
                }
                other => {
                    let mut inner = Map::new();
                    inner.insert(sub.to_string(), v);
                    *other = Value::Object(inner);
                }
            }
        }
        (OpKind::Replace, None) => {
            let v = value.ok_or_else(|| ScimError::invalid_syntax("`value` is required"))?;
            if v.is_null() {
                obj.remove(&key);
            } else {
                obj.insert(key, v);
            }
        }
        (OpKind::Add, None) => {
            let v = value.ok_or_else(|| ScimError::invalid_syntax("`value` is required"))?;
            match (obj.get_mut(&key), v) {
                (_, Value::Null) => {}
                (Some(Value::Array(items)), Value::Array(new)) => {
                    for n in new {
                        if !items.iter().any(|i| i == &n) {
                            items.push(n);
                        }
                    }
                }
                (Some(Value::Array(items)), n) => {
                    if !items.iter().any(|i| i == &n) {
                        items.push(n);
                    }
                }
                (Some(Value::Object(existing)), Value::Object(new)) => {
                    for (k, v) in new {
                        set_ci(existing, &k, v);
                    }
                }
                (_, v) => {
                    obj.insert(key, v);
                }
            }
        }
    }
    Ok(())
}

/// Treats `""` as absent (OneLogin templates render empty strings).
fn normalize_empty(v: Value) -> Value {
    match v {
        Value::String(s) if s.is_empty() => Value::Null,
        other => other,
    }
}

fn set_ci(obj: &mut Map<String, Value>, key: &str, value: Value) {
    let key = find_key(obj, key).unwrap_or_else(|| key.to_string());
    if value.is_null() {
        obj.remove(&key);
    } else {
        obj.insert(key, value);
    }
}

fn same_element(item: &Value, victim: &Value) -> bool {
    match (get_ci(item, "value"), get_ci(victim, "value")) {
        (Some(a), Some(b)) => a == b,
        _ => item == victim,
    }
}

/// `attr[filter]` or `attr[filter].sub` on a multi-valued attribute.
fn apply_filtered(
    obj: &mut Map<String, Value>,
    key: &str,
    kind: OpKind,
    filter: &Filter,
    sub: Option<&str>,
    value: Option<Value>,
) -> Result<(), ScimError> {
    let items = match obj.get_mut(key) {
        Some(Value::Array(items)) => items,
        Some(single @ Value::Object(_)) => {
            // OneLogin sends some multi-valued attributes as a single object.
            let one = single.take();
            *single = Value::Array(vec![one]);
            match single {
                Value::Array(items) => items,
                _ => return Err(ScimError::internal()),
            }
        }
        Some(_) => {
            return Err(ScimError::invalid_path(format!(
                "`{key}` is not multi-valued"
            )));
        }
        None => {
            if kind == OpKind::Remove {
                return Ok(());
            }
            obj.insert(key.to_string(), Value::Array(Vec::new()));
            match obj.get_mut(key) {
                Some(Value::Array(items)) => items,
                _ => return Err(ScimError::internal()),
            }
        }
    };
    let matched: Vec<usize> = (0..items.len())
        .filter(|&i| filter.matches(&items[i]))
        .collect();
    match kind {
        OpKind::Remove => {
            match sub {
                None => {
                    let mut i = 0;
                    items.retain(|_| {
                        let keep = !matched.contains(&i);
                        i += 1;
                        keep
                    });
                }
                Some(sub) => {
                    for &i in &matched {
                        if let Some(o) = items[i].as_object_mut()
                            && let Some(k) = find_key(o, sub)
                        {
                            o.remove(&k);
                        }
                    }
                }
            }
            Ok(())
        }
        OpKind::Add | OpKind::Replace => {
            let value = value.ok_or_else(|| ScimError::invalid_syntax("`value` is required"))?;
            if matched.is_empty() {
                // Entra: add/replace on a filtered path with no match creates the element.
                let mut element = Map::new();
                seed_from_filter(filter, &mut element)?;
                match (sub, value) {
                    (Some(sub), v) => set_ci(&mut element, sub, v),
                    (None, Value::Object(fields)) => {
                        for (k, v) in fields {
                            set_ci(&mut element, &k, v);
                        }
                    }
                    (None, _) => {
                        return Err(ScimError::invalid_value(
                            "the value for a filtered path must be an object",
                        ));
                    }
                }
                items.push(Value::Object(element));
                return Ok(());
            }
            for &i in &matched {
                let Some(element) = items[i].as_object_mut() else {
                    continue;
                };
                match (sub, &value) {
                    (Some(sub), v) => set_ci(element, sub, v.clone()),
                    (None, Value::Object(fields)) => {
                        for (k, v) in fields {
                            set_ci(element, k, v.clone());
                        }
                    }
                    (None, _) => {
                        return Err(ScimError::invalid_value(
                            "the value for a filtered path must be an object",
                        ));
                    }
                }
            }
            Ok(())
        }
    }
}

/// The attributes an `eq`-only filter pins down (`type eq "work"` → `{"type":"work"}`).
fn seed_from_filter(filter: &Filter, element: &mut Map<String, Value>) -> Result<(), ScimError> {
    match filter {
        Filter::And(a, b) => {
            seed_from_filter(a, element)?;
            seed_from_filter(b, element)
        }
        Filter::Compare {
            attr,
            op: CompareOp::Eq,
            value,
        } if attr.sub.is_none() => {
            let v = match value {
                CompValue::Str(s) => Value::String(s.clone()),
                CompValue::Num(n) => Value::Number(n.clone()),
                CompValue::Bool(b) => Value::Bool(*b),
                CompValue::Null => Value::Null,
            };
            element.insert(attr.name.clone(), v);
            Ok(())
        }
        _ => Err(ScimError::no_target(
            "no element matches the filter, and it is not a simple `eq` filter to create one from",
        )),
    }
}

/// Member ids in a value: `[{"value":"id"}]`, `{"value":"id"}` or `"id"`.
fn member_ids(value: &Value) -> Result<Vec<String>, ScimError> {
    let one = |v: &Value| -> Result<String, ScimError> {
        match v {
            Value::String(s) if !s.is_empty() => Ok(s.clone()),
            Value::Object(_) => match get_ci(v, "value") {
                Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
                _ => Err(ScimError::invalid_value(
                    "each member needs a string `value` (the user's id)",
                )),
            },
            _ => Err(ScimError::invalid_value(
                "each member needs a string `value` (the user's id)",
            )),
        }
    };
    match value {
        Value::Array(items) => items.iter().map(one).collect(),
        Value::Null => Ok(Vec::new()),
        other => Ok(vec![one(other)?]),
    }
}

/// The ids an `value eq "id"` (or an `or` of them) member filter names.
fn member_filter_ids(filter: &Filter, out: &mut Vec<String>) -> Result<(), ScimError> {
    match filter {
        Filter::Or(a, b) => {
            member_filter_ids(a, out)?;
            member_filter_ids(b, out)
        }
        Filter::Compare {
            attr,
            op: CompareOp::Eq,
            value: CompValue::Str(id),
        } if attr.is("value") => {
            out.push(id.clone());
            Ok(())
        }
        _ => Err(ScimError::invalid_filter(
            "a members filter must be `value eq \"<user id>\"` (optionally joined with `or`)",
        )),
    }
}

fn apply_members(
    m: &mut MemberChanges,
    kind: OpKind,
    filter: Option<&Filter>,
    sub: Option<&str>,
    value: Option<Value>,
    no_path: bool,
) -> Result<(), ScimError> {
    if sub.is_some() {
        return Err(ScimError::invalid_path(
            "members' sub-attributes cannot be changed",
        ));
    }
    if let Some(filter) = filter {
        let mut ids = Vec::new();
        member_filter_ids(filter, &mut ids)?;
        return match kind {
            OpKind::Remove => {
                ids.iter().for_each(|id| m.remove(id));
                Ok(())
            }
            // `replace members[value eq "x"]` with `{"value":"y"}` swaps one member for another.
            _ => {
                let new = member_ids(value.as_ref().unwrap_or(&Value::Null))?;
                ids.iter().for_each(|id| m.remove(id));
                new.into_iter().for_each(|id| m.add(id));
                Ok(())
            }
        };
    }
    match kind {
        OpKind::Add => {
            for id in member_ids(value.as_ref().unwrap_or(&Value::Null))? {
                m.add(id);
            }
        }
        OpKind::Replace => {
            let ids = member_ids(value.as_ref().unwrap_or(&Value::Null))?;
            m.replace(ids.into_iter().collect());
        }
        OpKind::Remove => match value {
            Some(v) if !v.is_null() => {
                for id in member_ids(&v)? {
                    m.remove(&id);
                }
            }
            _ if no_path => {}
            _ => m.replace(BTreeSet::new()),
        },
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ops(body: Value) -> Vec<PatchOp> {
        parse_request(&body).unwrap()
    }

    fn patch(doc: Value, body: Value) -> Value {
        apply(&doc, &ops(body), None, &["id", "meta", "groups"]).unwrap()
    }

    #[test]
    fn ops_in_any_case_and_no_path_object_touch_only_given_attributes() {
        let doc = json!({"userName": "a", "active": true, "title": "x"});
        let out = patch(
            doc,
            json!({"Operations": [{"op": "Replace", "value": {"active": false}}]}),
        );
        assert_eq!(out, json!({"userName": "a", "active": false, "title": "x"}));
    }

    #[test]
    fn entra_dotted_and_urn_keys() {
        let doc = json!({"userName": "a", "name": {"givenName": "A", "familyName": "B"}});
        let out = patch(
            doc,
            json!({"Operations": [{"op": "replace", "value": {
                "name.givenName": "Alice",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "R&D"
            }}]}),
        );
        assert_eq!(
            out["name"],
            json!({"givenName": "Alice", "familyName": "B"})
        );
        assert_eq!(
            out["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
            json!({"department": "R&D"})
        );
    }

    #[test]
    fn filtered_path_without_match_creates_element() {
        let doc = json!({"userName": "a", "emails": [{"type": "home", "value": "h@x"}]});
        let out = patch(
            doc,
            json!({"Operations": [{"op": "Add", "path": "emails[type eq \"work\"].value", "value": "w@x"}]}),
        );
        assert_eq!(
            out["emails"],
            json!([{"type": "home", "value": "h@x"}, {"type": "work", "value": "w@x"}])
        );
        let out2 = patch(
            out,
            json!({"Operations": [{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "w2@x"}]}),
        );
        assert_eq!(out2["emails"][1]["value"], "w2@x");
    }

    #[test]
    fn member_changes_in_all_forms_fold_in_order() {
        let mut m = MemberChanges::default();
        let body = json!({"Operations": [
            {"op": "add", "path": "members", "value": [{"value": "u1"}, {"value": "u2", "display": "U2"}]},
            {"op": "remove", "path": "members[value eq \"u1\"]"},
            {"op": "Remove", "path": "members", "value": [{"value": "u3"}]},
            {"op": "add", "value": {"members": [{"value": "u4", "$ref": null}]}}
        ]});
        let out = apply(
            &json!({"displayName": "g"}),
            &ops(body),
            Some(&mut m),
            &["id"],
        )
        .unwrap();
        assert_eq!(out, json!({"displayName": "g"}));
        assert_eq!(m.add, ["u2", "u4"].iter().map(|s| s.to_string()).collect());
        assert_eq!(
            m.remove,
            ["u1", "u3"].iter().map(|s| s.to_string()).collect()
        );
        assert!(m.replace_all.is_none());

        let mut m = MemberChanges::default();
        let body = json!({"Operations": [
            {"op": "replace", "path": "members", "value": [{"value": "a"}]},
            {"op": "add", "path": "members", "value": [{"value": "b"}]}
        ]});
        apply(&json!({}), &ops(body), Some(&mut m), &[]).unwrap();
        assert_eq!(
            m.replace_all,
            Some(["a", "b"].iter().map(|s| s.to_string()).collect())
        );
    }

    #[test]
    fn unsupported_shapes_are_400_not_silent() {
        for body in [
            json!({"Operations": [{"op": "frobnicate", "path": "x", "value": 1}]}),
            json!({"Operations": []}),
            json!({}),
            json!({"Operations": [{"op": "remove"}]}),
            json!({"Operations": [{"op": "add", "path": "x"}]}),
        ] {
            assert_eq!(parse_request(&body).unwrap_err().status, 400, "{body}");
        }
        let bad_path = ops(json!({"Operations": [{"op": "add", "path": "a[b", "value": 1}]}));
        assert_eq!(
            apply(&json!({}), &bad_path, None, &[]).unwrap_err().status,
            400
        );
        let mut m = MemberChanges::default();
        let bad_member_filter =
            ops(json!({"Operations": [{"op": "remove", "path": "members[display eq \"x\"]"}]}));
        assert_eq!(
            apply(&json!({}), &bad_member_filter, Some(&mut m), &[])
                .unwrap_err()
                .status,
            400
        );
    }

    #[test]
    fn read_only_attributes_are_ignored() {
        let out = patch(
            json!({"displayName": "g"}),
            json!({"Operations": [{"op": "replace", "value": {"id": "evil", "displayName": "h"}}]}),
        );
        assert_eq!(out, json!({"displayName": "h"}));
    }

    fn arbitrary_value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            "\\PC{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map(
                    "(value|members|emails|type|name|active|\\PC{0,6})",
                    inner,
                    0..4
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #[test]
        fn patch_never_panics(
            op in "(add|Replace|REMOVE|remove|x)",
            path in proptest::option::of("(members|emails|name|urn:ietf:params:scim:schemas:extension:enterprise:2.0:User)?(\\[[a-z \"=]{0,20}\\])?(\\.[a-zA-Z]{1,8})?|\\PC{0,30}"),
            value in arbitrary_value(),
            doc in arbitrary_value(),
        ) {
            let mut body = json!({"Operations": [{"op": op, "value": value}]});
            if let Some(p) = path {
                body["Operations"][0]["path"] = Value::String(p);
            }
            if let Ok(ops) = parse_request(&body) {
                let doc = if doc.is_object() { doc } else { json!({"userName": "u"}) };
                let mut members = MemberChanges::default();
                let _ = apply(&doc, &ops, Some(&mut members), &["id"]);
                let _ = apply(&doc, &ops, None, &["id"]);
            }
        }
    }
}
