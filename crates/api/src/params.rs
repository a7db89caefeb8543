//! Business parameters: flat `Name.0.Sub=value` fields (GET, form) nested into the same JSON
//! shape as a JSON body, and decoding into typed request structs with the spec's error codes.

use crate::error::{detail_for_param, invalid_detail_exists, missing_detail_exists, ApiError};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// Deepest nesting of a flat field name (`A.0.B.1.C` has five segments); the spec's deepest
/// structures need far fewer, and the limit keeps a hostile name from recursing without bound.
pub const MAX_NAME_SEGMENTS: usize = 16;

/// Nests flat fields (`UserIds.0=a`, `Agent.UserId=b`, `List.0.Name=c`) into a JSON object.
/// Values stay strings; typed fields accept numeric strings (see [`int`]).
pub fn nest(fields: Vec<(String, String)>) -> Result<Value, ApiError> {
    let mut root = Value::Object(Map::new());
    for (key, value) in fields {
        let segments: Vec<&str> = key.split('.').collect();
        if segments.len() > MAX_NAME_SEGMENTS {
            return Err(ApiError::InvalidParameter(format!(
                "The parameter name `{}…` nests deeper than {MAX_NAME_SEGMENTS} levels.",
                key.chars().take(32).collect::<String>()
            )));
        }
        if segments.iter().any(|s| s.is_empty()) {
            return Err(ApiError::InvalidParameter(format!(
                "The parameter name `{key}` is malformed."
            )));
        }
        insert(&mut root, &segments, value, &key)?;
    }
    Ok(root)
}

fn insert(node: &mut Value, path: &[&str], value: String, key: &str) -> Result<(), ApiError> {
    let clash = || {
        ApiError::InvalidParameter(format!(
            "The parameter `{key}` conflicts with another parameter."
        ))
    };
    let (head, rest) = path.split_first().expect("path has at least one segment");
    let is_index = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let child: &mut Value = if is_index(head) {
        let Value::Array(items) = node else {
            return Err(clash());
        };
        let i: usize = head.parse().map_err(|_| clash())?;
        if i > items.len() {
            return Err(ApiError::InvalidParameter(format!(
                "The parameter `{key}` skips an index; array elements start at 0 without gaps."
            )));
        }
        if i == items.len() {
            items.push(Value::Null);
        }
        &mut items[i]
    } else {
        let Value::Object(map) = node else {
            return Err(clash());
        };
        map.entry(head.to_string()).or_insert(Value::Null)
    };
    match rest.first() {
        None => {
            if !child.is_null() {
                return Err(ApiError::InvalidParameter(format!(
                    "The parameter `{key}` is repeated."
                )));
            }
            *child = Value::String(value);
            Ok(())
        }
        Some(next) => {
            if child.is_null() {
                *child = if is_index(next) {
                    Value::Array(vec![])
                } else {
                    Value::Object(Map::new())
                };
            }
            insert(child, rest, value, key)
        }
    }
}

/// Decodes business parameters into an action's request struct, mapping serde's complaints to
/// `MissingParameter[.X]`, `UnknownParameter`, `InvalidParameter[.X]`.
pub fn decode<T: DeserializeOwned>(params: Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize::<_, T>(params).map_err(|e| {
        let path = e.path().to_string();
        let msg = e.inner().to_string();
        if let Some(name) = between_backticks(&msg, "missing field `") {
            return match detail_for_param(&name).filter(|d| missing_detail_exists(d)) {
                Some(detail) => ApiError::MissingParameterOf { detail, name },
                None => ApiError::MissingParameter(name),
            };
        }
        if let Some(name) = between_backticks(&msg, "unknown field `") {
            return ApiError::UnknownParameter(name);
        }
        let top = path.split(['.', '[']).next().unwrap_or_default().to_owned();
        let message = format!("The value of parameter `{path}` is invalid: {msg}.");
        match detail_for_param(&top).filter(|d| invalid_detail_exists(d)) {
            Some(detail) => ApiError::InvalidParameterOf { detail, message },
            None => ApiError::InvalidParameter(message),
        }
    })
}

fn between_backticks(msg: &str, prefix: &str) -> Option<String> {
    let rest = msg.strip_prefix(prefix)?;
    Some(rest.split('`').next()?.to_owned())
}

/// Integer fields: a JSON number, or a decimal string (as GET and form requests send them).
pub mod int {
    use serde::{de::Error, Deserialize, Deserializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Num(serde_json::Number),
        Str(String),
    }

    fn parse<'de, D: Deserializer<'de>, T: TryFrom<i64>>(raw: Raw) -> Result<T, D::Error> {
        let n: i64 = match raw {
            Raw::Num(n) => n
                .as_i64()
                .ok_or_else(|| D::Error::custom("expected an integer"))?,
            Raw::Str(s) => s
                .trim()
                .parse()
                .map_err(|_| D::Error::custom("expected an integer"))?,
        };
        T::try_from(n).map_err(|_| D::Error::custom("integer out of range"))
    }

    pub fn de<'de, D: Deserializer<'de>, T: TryFrom<i64>>(d: D) -> Result<T, D::Error> {
        parse::<D, T>(Raw::deserialize(d).map_err(|_| D::Error::custom("expected an integer"))?)
    }

    pub fn opt<'de, D: Deserializer<'de>, T: TryFrom<i64>>(d: D) -> Result<Option<T>, D::Error> {
        match Option::<Raw>::deserialize(d).map_err(|_| D::Error::custom("expected an integer"))? {
            None => Ok(None),
            Some(raw) => parse::<D, T>(raw).map(Some),
        }
    }
}

/// Boolean fields: JSON `true`/`false`, or `"true"`/`"false"` (and `1`/`0`) as GET and form
/// requests send them.
pub mod flag {
    use serde::{de::Error, Deserialize, Deserializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Bool(bool),
        Num(i64),
        Str(String),
    }

    pub fn opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
        let bad = || D::Error::custom("expected true or false");
        match Option::<Raw>::deserialize(d).map_err(|_| bad())? {
            None => Ok(None),
            Some(Raw::Bool(b)) => Ok(Some(b)),
            Some(Raw::Num(0)) => Ok(Some(false)),
            Some(Raw::Num(1)) => Ok(Some(true)),
            Some(Raw::Str(s)) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "1" => Ok(Some(true)),
                "false" | "0" => Ok(Some(false)),
                _ => Err(bad()),
            },
            Some(Raw::Num(_)) => Err(bad()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    fn f(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn nests_arrays_and_objects() {
        let v = nest(f(&[
            ("UserIds.0", "a"),
            ("UserIds.1", "b"),
            ("A.B", "x"),
            ("L.0.N", "y"),
            ("S", "1"),
        ]))
        .unwrap();
        assert_eq!(
            v,
            json!({"UserIds": ["a", "b"], "A": {"B": "x"}, "L": [{"N": "y"}], "S": "1"})
        );
    }

    #[test]
    fn rejects_hostile_nesting_without_recursing_deeply() {
        let deep = vec!["a"; 5000].join(".");
        assert!(matches!(
            nest(f(&[(&deep, "x")])),
            Err(ApiError::InvalidParameter(_))
        ));
        let ok = vec!["a"; MAX_NAME_SEGMENTS].join(".");
        assert!(nest(f(&[(&ok, "x")])).is_ok());
    }

    #[test]
    fn rejects_gaps_repeats_and_clashes() {
        assert!(nest(f(&[("U.1", "a")])).is_err());
        assert!(nest(f(&[("U", "a"), ("U", "b")])).is_err());
        assert!(nest(f(&[("U", "a"), ("U.0", "b")])).is_err());
        assert!(nest(f(&[("U..0", "a")])).is_err());
    }

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Req {
        #[serde(rename = "SdkAppId", deserialize_with = "int::de")]
        sdk_app_id: u32,
        #[serde(rename = "PageSize", default, deserialize_with = "int::opt")]
        page_size: Option<i64>,
        #[serde(rename = "Name", default)]
        name: Option<String>,
    }

    #[test]
    fn decodes_numbers_from_strings_and_numbers() {
        let r: Req = decode(json!({"SdkAppId": "1400000001", "PageSize": 5})).unwrap();
        assert_eq!((r.sdk_app_id, r.page_size), (1400000001, Some(5)));
    }

    #[test]
    fn maps_decode_failures_to_codes() {
        let code = |v: Value| decode::<Req>(v).unwrap_err().body().code.into_owned();
        assert_eq!(code(json!({})), "MissingParameter.SdkAppId");
        assert_eq!(code(json!({"SdkAppId": "x"})), "InvalidParameter.SdkAppId");
        assert_eq!(code(json!({"SdkAppId": -1})), "InvalidParameter.SdkAppId");
        assert_eq!(code(json!({"SdkAppId": 1, "Bogus": 1})), "UnknownParameter");
        assert_eq!(
            code(json!({"SdkAppId": 1, "PageSize": 1.5})),
            "InvalidParameter.PageSize"
        );
        assert_eq!(code(json!({"SdkAppId": 1, "Name": 7})), "InvalidParameter");
    }
}
