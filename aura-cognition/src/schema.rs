//! Checking model output against a JSON Schema.

use serde_json::Value;

use crate::{Error, Result};

/// Checks that `schema` is a usable JSON Schema (draft 2020-12 unless it says otherwise).
pub fn check_schema(schema: &Value) -> Result<()> {
    jsonschema::validator_for(schema)
        .map(|_| ())
        .map_err(|e| Error::Invalid(format!("unusable JSON Schema: {e}")))
}

/// Checks `instance` against `schema`: [`Error::InvalidOutput`] lists what fails.
pub fn validate(schema: &Value, instance: &Value) -> Result<()> {
    let validator = jsonschema::validator_for(schema)
        .map_err(|e| Error::Invalid(format!("unusable JSON Schema: {e}")))?;
    let problems: Vec<String> = validator
        .iter_errors(instance)
        .take(5)
        .map(|e| {
            let at = e.instance_path().to_string();
            if at.is_empty() {
                e.to_string()
            } else {
                format!("{at}: {e}")
            }
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::InvalidOutput(format!(
            "reply does not match the schema: {}",
            problems.join("; ")
        )))
    }
}

/// Parses a model's reply as JSON and validates it against `schema`.
pub fn parse_structured(text: &str, schema: &Value) -> Result<Value> {
    let value: Value = serde_json::from_str(text.trim())
        .map_err(|e| Error::InvalidOutput(format!("reply is not JSON ({e}): {text:.200}")))?;
    validate(schema, &value)?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn validates_and_reports() {
        let schema = json!({"type":"object","properties":{"n":{"type":"integer","minimum":1}},"required":["n"]});
        assert_eq!(
            parse_structured(r#"{"n":2}"#, &schema).unwrap(),
            json!({"n":2})
        );
        assert!(
            matches!(parse_structured(r#"{"n":0}"#, &schema), Err(Error::InvalidOutput(m)) if m.contains("/n"))
        );
        assert!(matches!(
            parse_structured("{", &schema),
            Err(Error::InvalidOutput(_))
        ));
        assert!(matches!(
            check_schema(&json!({"type": 5})),
            Err(Error::Invalid(_))
        ));
    }
}
