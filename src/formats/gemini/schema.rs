//! Tool schemas as Gemini takes them. `functionDeclarations[].parameters` is Gemini's Schema
//! object, a subset of OpenAPI 3.0, and Gemini refuses the whole request (400
//! `INVALID_ARGUMENT`, "Unknown name …") for a keyword outside it. Clients send full JSON
//! Schema (Claude Code's tools, MCP servers, pydantic models), so each schema is rewritten:
//!
//! - kept: the keywords of `KEPT` (Gemini's Schema fields);
//! - `$ref` to `#/$defs/…` or `#/definitions/…`: inlined (Gemini has no references); a
//!   reference that cycles or points elsewhere is refused with a 400 naming the tool, since no
//!   finite schema says the same;
//! - `const: v` becomes `enum: [v]` (a string) — the same constraint in Gemini's words;
//! - `type: ["string", "null"]`: the non-null type with `nullable: true`;
//! - `format` on strings: only `enum` and `date-time` are accepted by Gemini; others (`uri`,
//!   `email`, `uuid`…) are dropped (a hint, not a constraint the model needs);
//! - `enum` of non-strings: dropped (Gemini's enums are strings only);
//! - `required` naming a property not listed: dropped from the list (Gemini refuses it);
//! - removed, with the reason: `$schema`, `$id`, `$comment` (document metadata);
//!   `additionalProperties`, `patternProperties`, `unevaluatedProperties` (not in Gemini's
//!   Schema); `default` and `examples` (refused by older Gemini models; a hint only);
//!   `exclusiveMinimum`/`exclusiveMaximum`, `multipleOf`, `uniqueItems`, `contains`, `not`,
//!   `if`/`then`/`else`, `oneOf`/`allOf` (not in the subset; `allOf` of one schema is that
//!   schema, `oneOf` becomes `anyOf`, which Gemini has);
//! - an object with no properties: `properties` left out (Gemini refuses an empty map there).

use crate::formats::FormatError;
use serde_json::{Map, Value};

/// The keywords of Gemini's Schema object.
const KEPT: &[&str] = &[
    "type",
    "format",
    "title",
    "description",
    "nullable",
    "enum",
    "maxItems",
    "minItems",
    "properties",
    "required",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "example",
    "anyOf",
    "propertyOrdering",
    "items",
    "minimum",
    "maximum",
];

/// Deepest nesting followed (references inlined included): a bound on untrusted input.
const MAX_DEPTH: usize = 64;

/// `schema` (a tool's parameters) as Gemini takes it; `None` when nothing is left (an object
/// with no properties: the function takes no arguments).
pub fn clean(tool: &str, schema: &Value) -> Result<Option<Value>, FormatError> {
    if schema.is_null() {
        return Ok(None);
    }
    let defs = defs_of(schema);
    let mut stack = Vec::new();
    let v = walk(tool, schema, &defs, &mut stack, 0)?;
    let empty_object = v.get("type").and_then(Value::as_str) == Some("object")
        && v.get("properties").is_none()
        && v.get("anyOf").is_none();
    Ok((!empty_object).then_some(v))
}

fn defs_of(schema: &Value) -> Map<String, Value> {
    let mut defs = Map::new();
    for k in ["$defs", "definitions"] {
        if let Some(Value::Object(d)) = schema.get(k) {
            for (name, v) in d {
                defs.insert(format!("#/{k}/{name}"), v.clone());
            }
        }
    }
    defs
}

fn refuse(tool: &str, why: &str) -> FormatError {
    FormatError(format!(
        "tool '{tool}': its schema {why}; Gemini takes no references, so it cannot be sent to a gemini channel"
    ))
}

fn walk(
    tool: &str,
    v: &Value,
    defs: &Map<String, Value>,
    stack: &mut Vec<String>,
    depth: usize,
) -> Result<Value, FormatError> {
    if depth > MAX_DEPTH {
        return Err(FormatError(format!(
            "tool '{tool}': its schema nests deeper than {MAX_DEPTH} levels"
        )));
    }
    let Value::Object(o) = v else {
        // `true` / `false` schemas and anything else: no constraint Gemini can say.
        return Ok(Value::Object(Map::new()));
    };
    if let Some(r) = o.get("$ref") {
        let r = r.as_str().unwrap_or("");
        if stack.iter().any(|s| s == r) {
            return Err(refuse(tool, &format!("refers to itself ({r})")));
        }
        let Some(target) = defs.get(r) else {
            return Err(refuse(
                tool,
                &format!("has a reference it does not define ({r})"),
            ));
        };
        stack.push(r.to_string());
        let mut inlined = walk(tool, target, defs, stack, depth + 1)?;
        stack.pop();
        // A description beside the reference describes this use of it.
        if let (Some(d), Value::Object(m)) = (o.get("description"), &mut inlined) {
            m.insert("description".into(), d.clone());
        }
        return Ok(inlined);
    }
    if let Some(Value::Array(all)) = o.get("allOf")
        && all.len() == 1
    {
        return walk(tool, &all[0], defs, stack, depth + 1);
    }
    let mut out = Map::new();
    for (k, val) in o {
        match k.as_str() {
            "properties" => {
                let Value::Object(props) = val else { continue };
                let mut p = Map::new();
                for (name, s) in props {
                    p.insert(name.clone(), walk(tool, s, defs, stack, depth + 1)?);
                }
                if !p.is_empty() {
                    out.insert(k.clone(), Value::Object(p));
                }
            }
            "items" => {
                out.insert(k.clone(), walk(tool, val, defs, stack, depth + 1)?);
            }
            "anyOf" | "oneOf" => {
                let Value::Array(xs) = val else { continue };
                let mut any = Vec::new();
                for x in xs {
                    any.push(walk(tool, x, defs, stack, depth + 1)?);
                }
                out.insert("anyOf".into(), Value::Array(any));
            }
            "type" => match val {
                Value::Array(ts) => {
                    let named: Vec<&Value> = ts.iter().filter(|t| *t != "null").collect();
                    if named.len() < ts.len() {
                        out.insert("nullable".into(), Value::Bool(true));
                    }
                    if let Some(t) = named.first() {
                        out.insert("type".into(), (*t).clone());
                    }
                }
                _ => {
                    out.insert(k.clone(), val.clone());
                }
            },
            "const" if val.is_string() => {
                out.insert("enum".into(), Value::Array(vec![val.clone()]));
            }
            "enum"
                if val
                    .as_array()
                    .is_some_and(|a| a.iter().all(Value::is_string)) =>
            {
                out.insert(k.clone(), val.clone());
            }
            "format" => {
                let string = o.get("type").and_then(Value::as_str) == Some("string");
                let ok = matches!(val.as_str(), Some("enum" | "date-time"));
                if !string || ok {
                    out.insert(k.clone(), val.clone());
                }
            }
            // Kept only in the forms above.
            "const" | "enum" => {}
            k if KEPT.contains(&k) => {
                out.insert(k.to_string(), val.clone());
            }
            _ => {}
        }
    }
    // `required` may name only listed properties.
    if let Some(Value::Array(req)) = out.get("required").cloned() {
        let props = out.get("properties").and_then(Value::as_object);
        let kept: Vec<Value> = req
            .into_iter()
            .filter(|r| {
                r.as_str()
                    .is_some_and(|n| props.is_some_and(|p| p.contains_key(n)))
            })
            .collect();
        if kept.is_empty() {
            out.remove("required");
        } else {
            out.insert("required".into(), Value::Array(kept));
        }
    }
    Ok(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn refused_keywords_go_and_references_are_inlined() {
        let s = json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "city": {"type": "string", "default": "Paris", "format": "uri"},
                "when": {"type": "string", "format": "date-time"},
                "unit": {"const": "c"},
                "maybe": {"type": ["integer", "null"], "exclusiveMinimum": 0},
                "place": {"$ref": "#/$defs/Place", "description": "where"}
            },
            "required": ["city", "ghost"],
            "$defs": {"Place": {"type": "object", "properties": {"lat": {"type": "number"}}}}
        });
        let c = clean("t", &s).unwrap().unwrap();
        assert_eq!(
            c,
            json!({"type": "object", "properties": {
                "city": {"type": "string"},
                "when": {"type": "string", "format": "date-time"},
                "unit": {"enum": ["c"]},
                "maybe": {"type": "integer", "nullable": true},
                "place": {"type": "object", "properties": {"lat": {"type": "number"}},
                          "description": "where"}},
                "required": ["city"]})
        );
    }

    #[test]
    fn cycles_and_unknown_references_are_refused_and_empty_objects_dropped() {
        let s = json!({"type": "object", "properties": {"n": {"$ref": "#/$defs/Node"}},
            "$defs": {"Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}}}});
        let e = clean("tree", &s).unwrap_err();
        assert!(
            e.0.contains("tool 'tree'") && e.0.contains("refers to itself"),
            "{e}"
        );
        let s = json!({"type": "object", "properties": {"n": {"$ref": "other.json#/x"}}});
        assert!(clean("t", &s).unwrap_err().0.contains("does not define"));
        assert_eq!(
            clean("t", &json!({"type": "object", "properties": {}})).unwrap(),
            None
        );
        assert_eq!(clean("t", &Value::Null).unwrap(), None);
    }
}
