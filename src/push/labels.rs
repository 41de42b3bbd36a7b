//! `--label k=v,k2=v2`: the series labels a pushed profile carries.

use super::PushError;

/// Parses `k=v,k2=v2`. Names are Prometheus label names
/// (`[a-zA-Z_][a-zA-Z0-9_]*`); values are non-empty and hold none of
/// `{ } , =`, which Pyroscope's `name={...}` syntax cannot quote.
pub fn parse_labels(text: &str) -> Result<Vec<(String, String)>, PushError> {
    let mut labels: Vec<(String, String)> = Vec::new();
    for item in text.split(',') {
        let item = item.trim();
        let (name, value) = item
            .split_once('=')
            .ok_or_else(|| PushError::Label(format!("`{item}` is not `name=value`")))?;
        let (name, value) = (name.trim(), value.trim());
        validate_name(name)?;
        if value.is_empty() {
            return Err(PushError::Label(format!(
                "label `{name}` has an empty value"
            )));
        }
        if let Some(c) = value
            .chars()
            .find(|c| matches!(c, '{' | '}' | '=') || c.is_control())
        {
            return Err(PushError::Label(format!(
                "label `{name}`: the value `{value}` has `{}`, which Pyroscope's label syntax cannot carry",
                c.escape_default()
            )));
        }
        if labels.iter().any(|(n, _)| n == name) {
            return Err(PushError::Label(format!("label `{name}` is given twice")));
        }
        labels.push((name.to_string(), value.to_string()));
    }
    Ok(labels)
}

/// A Prometheus label name; `__name__` and other `__` names are the
/// backends' own.
fn validate_name(name: &str) -> Result<(), PushError> {
    let mut chars = name.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(PushError::Label(format!(
            "`{name}` is not a label name: use letters, digits and `_`, not starting with a digit"
        )));
    }
    if name.starts_with("__") {
        return Err(PushError::Label(format!(
            "`{name}`: names starting with `__` are reserved for the backend"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_pairs_in_order_trimming_spaces() {
        assert_eq!(
            parse_labels("service_name=api, env=prod,_x1=a.b-c/d").unwrap(),
            pairs(&[("service_name", "api"), ("env", "prod"), ("_x1", "a.b-c/d")])
        );
    }

    #[test]
    fn rejects_bad_names_values_and_duplicates_with_the_reason() {
        for (text, expect) in [
            ("env", "not `name=value`"),
            ("1env=a", "not a label name"),
            ("en-v=a", "not a label name"),
            ("=a", "not a label name"),
            ("env=", "empty value"),
            ("env=a}b", "cannot carry"),
            ("__name__=x", "reserved"),
            ("env=a,env=b", "twice"),
            ("env=a,", "not `name=value`"),
        ] {
            let err = parse_labels(text).unwrap_err().to_string();
            assert!(err.contains(expect), "{text}: {err}");
        }
    }
}
