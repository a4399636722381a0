//! JSON Schema → GBNF (llama.cpp's grammar format), for constrained decoding.
//!
//! Covers the subset AURA's personas ask for: `object` (with `properties`, which are
//! all emitted in declaration order, `required` or not), `string` (with `maxLength`
//! and `minLength`), `integer`, `number`, `boolean`, `null`, `array` (with `items`,
//! `minItems`, `maxItems`), `enum`, `const`, `anyOf`/`oneOf`, a list of types, local
//! `$ref`s into `$defs`/`definitions`, and `{}` (any JSON value). The grammar allows
//! no whitespace between tokens, so even a tiny model writes compact JSON. What the
//! grammar cannot express (`minimum`, `pattern`, …) is checked afterwards by
//! [`crate::schema::validate`].

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

use crate::{Error, Result};

/// The GBNF grammar (root rule `root`) whose sentences are JSON texts matching `schema`.
pub fn json_schema_to_gbnf(schema: &Value) -> Result<String> {
    let mut c = Converter {
        root: schema,
        rules: BTreeMap::new(),
        refs: BTreeMap::new(),
        depth: 0,
    };
    let body = c.visit(schema, "root")?;
    c.rules.insert("root".into(), body);
    let mut out = String::new();
    // `root` first for readability; the rest sorted.
    if let Some(root) = c.rules.get("root") {
        let _ = writeln!(out, "root ::= {root}");
    }
    for (name, body) in &c.rules {
        if name != "root" {
            let _ = writeln!(out, "{name} ::= {body}");
        }
    }
    out.push_str(PRIMITIVES);
    Ok(out)
}

/// Shared rules every grammar carries.
const PRIMITIVES: &str = r#"json-char ::= [^"\\\x00-\x1F\x7F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F])
json-string ::= "\"" json-char* "\""
json-integer ::= "-"? ("0" | [1-9] [0-9]{0,15})
json-number ::= json-integer ("." [0-9]{1,15})? ([eE] [-+]? [0-9]{1,3})?
json-boolean ::= "true" | "false"
json-null ::= "null"
json-value ::= json-object | json-array | json-string | json-number | json-boolean | json-null
json-object ::= "{" ( json-string ":" json-value ( "," json-string ":" json-value )* )? "}"
json-array ::= "[" ( json-value ( "," json-value )* )? "]"
"#;

struct Converter<'a> {
    root: &'a Value,
    rules: BTreeMap<String, String>,
    refs: BTreeMap<String, String>,
    depth: usize,
}

impl Converter<'_> {
    /// Returns a GBNF expression for `schema`, adding helper rules named after `name`.
    fn visit(&mut self, schema: &Value, name: &str) -> Result<String> {
        self.depth += 1;
        if self.depth > 64 {
            return Err(Error::Invalid("JSON Schema nests too deeply".into()));
        }
        let out = self.visit_inner(schema, name);
        self.depth -= 1;
        out
    }

    fn visit_inner(&mut self, schema: &Value, name: &str) -> Result<String> {
        let obj = match schema {
            Value::Bool(true) => return Ok("json-value".into()),
            Value::Bool(false) => {
                return Err(Error::Invalid("schema `false` admits no value".into()))
            }
            Value::Object(o) => o,
            _ => return Err(Error::Invalid(format!("not a JSON Schema: {schema}"))),
        };
        if let Some(r) = obj.get("$ref").and_then(Value::as_str) {
            return self.reference(r);
        }
        if let Some(c) = obj.get("const") {
            return Ok(literal(&c.to_string()));
        }
        if let Some(e) = obj.get("enum") {
            let values = e
                .as_array()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| Error::Invalid("`enum` must be a non-empty array".into()))?;
            let alts: Vec<String> = values.iter().map(|v| literal(&v.to_string())).collect();
            return Ok(format!("({})", alts.join(" | ")));
        }
        for key in ["anyOf", "oneOf"] {
            if let Some(list) = obj.get(key) {
                let list = list
                    .as_array()
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| Error::Invalid(format!("`{key}` must be a non-empty array")))?;
                let mut alts = Vec::new();
                for (i, s) in list.iter().enumerate() {
                    alts.push(self.visit(s, &format!("{name}-{i}"))?);
                }
                return Ok(format!("({})", alts.join(" | ")));
            }
        }
        match obj.get("type") {
            None => {
                if obj.contains_key("properties") {
                    self.typed("object", obj, name)
                } else if obj.contains_key("items") {
                    self.typed("array", obj, name)
                } else {
                    Ok("json-value".into())
                }
            }
            Some(Value::String(t)) => self.typed(t, obj, name),
            Some(Value::Array(types)) => {
                let mut alts = Vec::new();
                for t in types {
                    let t = t
                        .as_str()
                        .ok_or_else(|| Error::Invalid("`type` entries must be strings".into()))?;
                    alts.push(self.typed(t, obj, &format!("{name}-{t}"))?);
                }
                if alts.is_empty() {
                    return Err(Error::Invalid("`type` must not be empty".into()));
                }
                Ok(format!("({})", alts.join(" | ")))
            }
            Some(other) => Err(Error::Invalid(format!("unusable `type`: {other}"))),
        }
    }

    fn typed(
        &mut self,
        ty: &str,
        obj: &serde_json::Map<String, Value>,
        name: &str,
    ) -> Result<String> {
        Ok(match ty {
            "string" => {
                let min = obj.get("minLength").and_then(Value::as_u64);
                let max = obj.get("maxLength").and_then(Value::as_u64);
                match (min, max) {
                    (None, None) => "json-string".into(),
                    (min, max) => {
                        let min = min.unwrap_or(0);
                        let max = max.map(|m| m.to_string()).unwrap_or_default();
                        format!("\"\\\"\" json-char{{{min},{max}}} \"\\\"\"")
                    }
                }
            }
            "integer" => "json-integer".into(),
            "number" => "json-number".into(),
            "boolean" => "json-boolean".into(),
            "null" => "json-null".into(),
            "array" => {
                let item = match obj.get("items") {
                    Some(items) => self.rule(items, &format!("{name}-item"))?,
                    None => "json-value".into(),
                };
                let min = obj.get("minItems").and_then(Value::as_u64).unwrap_or(0);
                let max = obj.get("maxItems").and_then(Value::as_u64);
                if max == Some(0) {
                    return Ok(r#""[" "]""#.into());
                }
                let rest_max = max.map(|m| (m - 1).to_string()).unwrap_or_default();
                if min == 0 {
                    format!(r#""[" ( {item} ( "," {item} ){{0,{rest_max}}} )? "]""#)
                } else {
                    let rest_min = min - 1;
                    format!(r#""[" {item} ( "," {item} ){{{rest_min},{rest_max}}} "]""#)
                }
            }
            "object" => {
                let props = obj.get("properties").and_then(Value::as_object);
                match props {
                    None => "json-object".into(),
                    Some(props) if props.is_empty() => r#""{" "}""#.into(),
                    Some(props) => {
                        let mut parts = Vec::new();
                        for (key, sub) in props {
                            let rule = self.rule(sub, &format!("{name}-{}", rule_name(key)))?;
                            let key_lit = literal(&format!("{}:", Value::String(key.clone())));
                            parts.push(format!("{key_lit} {rule}"));
                        }
                        format!(r#""{{" {} "}}""#, parts.join(r#" "," "#))
                    }
                }
            }
            other => {
                return Err(Error::Invalid(format!(
                    "unsupported JSON Schema type `{other}`"
                )))
            }
        })
    }

    /// Like `visit`, but names the expression as its own rule (keeps grammars small).
    fn rule(&mut self, schema: &Value, name: &str) -> Result<String> {
        let body = self.visit(schema, name)?;
        if is_simple(&body) {
            return Ok(body);
        }
        let mut unique = name.to_string();
        let mut n = 1;
        while self.rules.contains_key(&unique) {
            n += 1;
            unique = format!("{name}{n}");
        }
        self.rules.insert(unique.clone(), body);
        Ok(unique)
    }

    fn reference(&mut self, r: &str) -> Result<String> {
        if let Some(done) = self.refs.get(r) {
            return Ok(done.clone());
        }
        let path = r
            .strip_prefix("#/")
            .ok_or_else(|| Error::Invalid(format!("only local `$ref`s are supported: {r}")))?;
        let mut target = self.root;
        for part in path.split('/') {
            let part = part.replace("~1", "/").replace("~0", "~");
            target = target
                .get(&part)
                .ok_or_else(|| Error::Invalid(format!("unresolvable `$ref`: {r}")))?;
        }
        let name = format!("ref-{}", rule_name(path));
        // Register first so recursive schemas terminate.
        self.refs.insert(r.to_string(), name.clone());
        self.rules.insert(name.clone(), "json-value".into());
        let body = self.visit(target, &name)?;
        self.rules.insert(name.clone(), body);
        Ok(name)
    }
}

fn is_simple(body: &str) -> bool {
    body.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// A GBNF rule name made from arbitrary text.
fn rule_name(text: &str) -> String {
    let s: String = text
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    if s.is_empty() {
        "x".into()
    } else {
        s
    }
}

/// A GBNF string literal matching `text` exactly.
fn literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn object_with_typed_properties() {
        let g = json_schema_to_gbnf(&json!({
            "type": "object",
            "properties": {
                "count": {"type": "integer"},
                "name": {"type": "string", "maxLength": 10},
                "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "minItems": 1}
            },
            "required": ["name"]
        }))
        .unwrap();
        let expected = [
            r#"root ::= "{" "\"count\":" json-integer "," "\"name\":" root-name "," "\"tags\":" root-tags "}""#,
            r#"root-name ::= "\"" json-char{0,10} "\"""#,
            r#"root-tags ::= "[" root-tags-item ( "," root-tags-item ){0,} "]""#,
            r#"root-tags-item ::= ("\"a\"" | "\"b\"")"#,
        ];
        assert_eq!(g.lines().take(4).collect::<Vec<_>>(), expected, "{g}");
    }

    #[test]
    fn refs_and_unions() {
        let g = json_schema_to_gbnf(&json!({
            "$defs": {"node": {"type": "object", "properties": {"next": {"anyOf": [{"$ref": "#/$defs/node"}, {"type": "null"}]}}}},
            "$ref": "#/$defs/node"
        }))
        .unwrap();
        let expected = [
            "root ::= ref--defs-node",
            r#"ref--defs-node ::= "{" "\"next\":" ref--defs-node-next "}""#,
            "ref--defs-node-next ::= (ref--defs-node | json-null)",
        ];
        assert_eq!(g.lines().take(3).collect::<Vec<_>>(), expected, "{g}");
    }

    #[test]
    fn rejects_what_it_cannot_express() {
        assert!(json_schema_to_gbnf(&json!({"type": "frob"})).is_err());
        assert!(json_schema_to_gbnf(&json!(false)).is_err());
        assert!(json_schema_to_gbnf(&json!({"$ref": "http://x/y"})).is_err());
        assert_eq!(
            json_schema_to_gbnf(&json!({})).unwrap().lines().next(),
            Some("root ::= json-value")
        );
    }
}
