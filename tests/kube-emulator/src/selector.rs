//! Label and field selectors: parsing of the query-string syntax and matching.
//!
//! The grammar follows `k8s.io/apimachinery/pkg/labels` (`=`, `==`, `!=`, `in`,
//! `notin`, `key`, `!key`, `<`, `>`) and `pkg/fields` (`=`, `==`, `!=`).

use std::collections::BTreeMap;

use serde_json::Value;

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelRequirement {
    /// `key=value` / `key==value`.
    Equals(String, String),
    /// `key!=value`: also true when the key is absent.
    NotEquals(String, String),
    /// `key in (a,b)`.
    In(String, Vec<String>),
    /// `key notin (a,b)`: also true when the key is absent.
    NotIn(String, Vec<String>),
    /// `key`.
    Exists(String),
    /// `!key`.
    DoesNotExist(String),
    /// `key>n` (integer comparison).
    GreaterThan(String, i64),
    /// `key<n` (integer comparison).
    LessThan(String, i64),
}

/// A parsed label selector; empty selects everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    requirements: Vec<LabelRequirement>,
}

impl LabelSelector {
    /// Parses the `labelSelector` query parameter.
    pub fn parse(input: &str) -> Result<Self, String> {
        let mut requirements = Vec::new();
        for part in split_top_level(input) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            requirements.push(parse_requirement(part)?);
        }
        Ok(Self { requirements })
    }

    /// Whether the selector has no requirement.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Matches an object's `metadata.labels`.
    pub fn matches_object(&self, object: &Value) -> bool {
        if self.requirements.is_empty() {
            return true;
        }
        let labels = object
            .pointer("/metadata/labels")
            .and_then(Value::as_object);
        let lookup = |key: &str| labels.and_then(|l| l.get(key)).and_then(Value::as_str);
        self.requirements
            .iter()
            .all(|r| requirement_holds(r, lookup))
    }

    /// Matches a plain label map (for tests and callers without an object).
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements
            .iter()
            .all(|r| requirement_holds(r, |k| labels.get(k).map(String::as_str)))
    }
}

fn requirement_holds<'a>(
    requirement: &LabelRequirement,
    lookup: impl Fn(&str) -> Option<&'a str>,
) -> bool {
    match requirement {
        LabelRequirement::Equals(k, v) => lookup(k) == Some(v.as_str()),
        LabelRequirement::NotEquals(k, v) => lookup(k) != Some(v.as_str()),
        LabelRequirement::In(k, vs) => lookup(k).is_some_and(|x| vs.iter().any(|v| v == x)),
        LabelRequirement::NotIn(k, vs) => !lookup(k).is_some_and(|x| vs.iter().any(|v| v == x)),
        LabelRequirement::Exists(k) => lookup(k).is_some(),
        LabelRequirement::DoesNotExist(k) => lookup(k).is_none(),
        LabelRequirement::GreaterThan(k, n) => lookup(k)
            .and_then(|x| x.parse::<i64>().ok())
            .is_some_and(|x| x > *n),
        LabelRequirement::LessThan(k, n) => lookup(k)
            .and_then(|x| x.parse::<i64>().ok())
            .is_some_and(|x| x < *n),
    }
}

/// Splits on commas that are not inside parentheses (`a in (x,y),b`).
fn split_top_level(input: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in input.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&input[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&input[start..]);
    parts
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/')
}

fn parse_requirement(part: &str) -> Result<LabelRequirement, String> {
    let error = |why: &str| format!("unable to parse requirement: {why}: {part:?}");
    if let Some(rest) = part.strip_prefix('!') {
        let key = rest.trim();
        validate_key(key).map_err(|e| error(&e))?;
        return Ok(LabelRequirement::DoesNotExist(key.to_string()));
    }
    let key_end = part.find(|c: char| !is_key_char(c)).unwrap_or(part.len());
    let key = &part[..key_end];
    validate_key(key).map_err(|e| error(&e))?;
    let rest = part[key_end..].trim_start();
    if rest.is_empty() {
        return Ok(LabelRequirement::Exists(key.to_string()));
    }
    let key = key.to_string();
    for (operator, build) in [
        (
            "==",
            LabelRequirement::Equals as fn(String, String) -> LabelRequirement,
        ),
        ("!=", LabelRequirement::NotEquals),
        ("=", LabelRequirement::Equals),
    ] {
        if let Some(value) = rest.strip_prefix(operator) {
            let value = value.trim();
            validate_value(value).map_err(|e| error(&e))?;
            return Ok(build(key, value.to_string()));
        }
    }
    for (operator, is_greater) in [(">", true), ("<", false)] {
        if let Some(value) = rest.strip_prefix(operator) {
            let number = value
                .trim()
                .parse::<i64>()
                .map_err(|_| error("for 'Gt', 'Lt' operators, the value must be an integer"))?;
            return Ok(if is_greater {
                LabelRequirement::GreaterThan(key, number)
            } else {
                LabelRequirement::LessThan(key, number)
            });
        }
    }
    let (is_in, after) = if let Some(after) = rest.strip_prefix("notin") {
        (false, after)
    } else if let Some(after) = rest.strip_prefix("in") {
        (true, after)
    } else {
        return Err(error(
            "found unexpected operator, expected one of '=', '==', '!=', 'in', 'notin', '<', '>'",
        ));
    };
    let list = after.trim();
    let inner = list
        .strip_prefix('(')
        .and_then(|l| l.strip_suffix(')'))
        .ok_or_else(|| error("expected a parenthesized list of values"))?;
    let values: Vec<String> = inner
        .split(',')
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect();
    for value in &values {
        validate_value(value).map_err(|e| error(&e))?;
    }
    if values.is_empty() {
        return Err(error(
            "for 'in', 'notin' operators, values set can't be empty",
        ));
    }
    Ok(if is_in {
        LabelRequirement::In(key, values)
    } else {
        LabelRequirement::NotIn(key, values)
    })
}

fn validate_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("name part must be non-empty".to_string());
    }
    if !key.chars().all(is_key_char) {
        return Err(format!("invalid label key {key:?}"));
    }
    Ok(())
}

fn validate_value(value: &str) -> Result<(), String> {
    if value.len() > 63
        || !value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err(format!("invalid label value: {value:?}"));
    }
    Ok(())
}

/// One term of a field selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRequirement {
    /// The field path, e.g. `metadata.name`.
    pub field: String,
    /// The value compared against.
    pub value: String,
    /// `!=` rather than `=`.
    pub negated: bool,
}

/// A parsed field selector; empty selects everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    requirements: Vec<FieldRequirement>,
}

impl FieldSelector {
    /// Parses the `fieldSelector` query parameter.
    pub fn parse(input: &str) -> Result<Self, String> {
        let mut requirements = Vec::new();
        for part in input.split(',') {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let (field, value, negated) = if let Some((f, v)) = part.split_once("!=") {
                (f, v, true)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, v, false)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, v, false)
            } else {
                return Err(format!(
                    "invalid selector: '{part}'; can't understand '{part}'"
                ));
            };
            requirements.push(FieldRequirement {
                field: field.trim().to_string(),
                value: value.trim().to_string(),
                negated,
            });
        }
        Ok(Self { requirements })
    }

    /// The requirements, for checking field names against the supported set.
    pub fn requirements(&self) -> &[FieldRequirement] {
        &self.requirements
    }

    /// Whether the selector has no requirement.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// The exact name asked for by `metadata.name=x`, used to watch one object.
    pub fn exact_name(&self) -> Option<&str> {
        self.requirements
            .iter()
            .find(|r| r.field == "metadata.name" && !r.negated)
            .map(|r| r.value.as_str())
    }

    /// Matches using a function that extracts a field's string value.
    pub fn matches_with(&self, field_value: impl Fn(&str) -> Option<String>) -> bool {
        self.requirements.iter().all(|r| {
            let actual = field_value(&r.field).unwrap_or_default();
            (actual == r.value) != r.negated
        })
    }
}

/// Evaluates a simple JSONPath such as `.status.currentState.currentStateSummary`
/// (dot-separated keys, optional `[n]` indexes); `None` when any step is missing.
pub fn simple_json_path<'a>(object: &'a Value, path: &str) -> Option<&'a Value> {
    let path = path.trim().trim_start_matches('{').trim_end_matches('}');
    let mut current = object;
    for segment in path.split('.').filter(|s| !s.is_empty()) {
        let (name, indexes) = match segment.find('[') {
            Some(i) => (&segment[..i], &segment[i..]),
            None => (segment, ""),
        };
        if !name.is_empty() {
            current = current.get(name)?;
        }
        for index in indexes
            .split(']')
            .filter_map(|s| s.strip_prefix('['))
            .filter(|s| !s.is_empty())
        {
            let index = index.trim_matches(|c| c == '\'' || c == '"');
            current = match index.parse::<usize>() {
                Ok(i) => current.get(i)?,
                Err(_) => current.get(index)?,
            };
        }
    }
    Some(current)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    #[test]
    fn equality_operators() {
        let l = labels(&[("app", "spark"), ("tier", "batch")]);
        assert!(LabelSelector::parse("app=spark").unwrap().matches(&l));
        assert!(LabelSelector::parse("app==spark").unwrap().matches(&l));
        assert!(!LabelSelector::parse("app!=spark").unwrap().matches(&l));
        assert!(LabelSelector::parse("missing!=x").unwrap().matches(&l));
        assert!(
            LabelSelector::parse("app=spark,tier=batch")
                .unwrap()
                .matches(&l)
        );
        assert!(
            !LabelSelector::parse("app=spark,tier=web")
                .unwrap()
                .matches(&l)
        );
    }

    #[test]
    fn set_operators_and_existence() {
        let l = labels(&[("env", "prod")]);
        assert!(
            LabelSelector::parse("env in (dev, prod)")
                .unwrap()
                .matches(&l)
        );
        assert!(
            LabelSelector::parse("env in(dev,prod),env")
                .unwrap()
                .matches(&l)
        );
        assert!(
            !LabelSelector::parse("env notin (prod)")
                .unwrap()
                .matches(&l)
        );
        assert!(LabelSelector::parse("team notin (a)").unwrap().matches(&l));
        assert!(LabelSelector::parse("env").unwrap().matches(&l));
        assert!(!LabelSelector::parse("!env").unwrap().matches(&l));
        assert!(LabelSelector::parse("!team").unwrap().matches(&l));
        assert!(LabelSelector::parse("").unwrap().matches(&l));
    }

    #[test]
    fn numeric_comparisons() {
        let l = labels(&[("n", "5")]);
        assert!(LabelSelector::parse("n>3").unwrap().matches(&l));
        assert!(!LabelSelector::parse("n<3").unwrap().matches(&l));
    }

    #[test]
    fn rejects_garbage() {
        assert!(LabelSelector::parse("a in b").is_err());
        assert!(LabelSelector::parse("=x").is_err());
        assert!(LabelSelector::parse("a=b c").is_err());
    }

    #[test]
    fn matches_object_labels() {
        let object = json!({"metadata": {"labels": {"app": "pi"}}});
        assert!(
            LabelSelector::parse("app=pi")
                .unwrap()
                .matches_object(&object)
        );
        assert!(
            !LabelSelector::parse("app")
                .unwrap()
                .matches_object(&json!({"metadata": {}}))
        );
    }

    #[test]
    fn field_selector_terms() {
        let selector =
            FieldSelector::parse("metadata.name=pi,metadata.namespace!=kube-system").unwrap();
        assert_eq!(selector.exact_name(), Some("pi"));
        let get = |field: &str| match field {
            "metadata.name" => Some("pi".to_string()),
            "metadata.namespace" => Some("jobs".to_string()),
            _ => None,
        };
        assert!(selector.matches_with(get));
        assert!(
            !FieldSelector::parse("metadata.name==other")
                .unwrap()
                .matches_with(get)
        );
        assert!(FieldSelector::parse("nonsense").is_err());
    }

    #[test]
    fn json_paths() {
        let object = json!({"status": {"currentState": {"currentStateSummary": "Submitted"}}, "items": [{"a": 1}]});
        assert_eq!(
            simple_json_path(&object, ".status.currentState.currentStateSummary"),
            Some(&json!("Submitted"))
        );
        assert_eq!(simple_json_path(&object, ".items[0].a"), Some(&json!(1)));
        assert_eq!(simple_json_path(&object, ".status.missing"), None);
    }
}
