//! Strict query-string parameters: unknown or repeated parameters are refused, each value is checked, and
//! every refusal names the parameter.

use std::collections::BTreeMap;

use mss_annuaire::{BalType, Department};
use mss_index::Filters;

use crate::problem::Problem;

/// Longest query text accepted.
pub const MAX_Q_CHARS: usize = 200;
/// Largest page.
pub const MAX_LIMIT: usize = 100;

/// The parameters of one request, checked against the names a route accepts.
pub struct Params {
    values: BTreeMap<String, String>,
}

impl Params {
    /// Parses `raw` (the query string, undecoded) and refuses names outside `allowed` and repeated names.
    pub fn parse(raw: Option<&str>, allowed: &[&str]) -> Result<Self, Problem> {
        let mut values = BTreeMap::new();
        for (name, value) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            if !allowed.contains(&name.as_ref()) {
                return Err(Problem::invalid_param(
                    &name,
                    format!(
                        "unknown parameter; this route accepts {}",
                        allowed.join(", ")
                    ),
                ));
            }
            if values
                .insert(name.to_string(), value.into_owned())
                .is_some()
            {
                return Err(Problem::invalid_param(&name, "given more than once"));
            }
        }
        Ok(Params { values })
    }

    /// A present, non-blank value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// `q`: at most 200 characters, no control characters.
    pub fn query(&self, required: bool) -> Result<String, Problem> {
        let q = self.values.get("q").map(String::as_str).unwrap_or("");
        let chars = q.chars().count();
        if chars > MAX_Q_CHARS {
            return Err(Problem::invalid_param(
                "q",
                format!("is {chars} characters long; at most {MAX_Q_CHARS}"),
            ));
        }
        if q.chars().any(char::is_control) {
            return Err(Problem::invalid_param("q", "contains control characters"));
        }
        if required && q.trim().is_empty() {
            return Err(Problem::invalid_param("q", "is required"));
        }
        Ok(q.trim().to_string())
    }

    /// `limit`: 1 to `max`, `default` when absent.
    pub fn limit(&self, default: usize, max: usize) -> Result<usize, Problem> {
        let Some(raw) = self.get("limit") else {
            return Ok(default);
        };
        match raw.parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(Problem::invalid_param(
                "limit",
                format!("must be a whole number from 1 to {max}, got `{raw}`"),
            )),
        }
    }

    /// The directory filters: `type`, `profession`, `speciality`, `dept`, `postal_code`.
    pub fn filters(&self) -> Result<Filters, Problem> {
        let bal_type = self
            .get("type")
            .map(|t| t.parse::<BalType>())
            .transpose()
            .map_err(|_| Problem::invalid_param("type", "must be one of PER, ORG, APP, CAB"))?;
        let department = self
            .get("dept")
            .map(Department::parse)
            .transpose()
            .map_err(|_| {
                Problem::invalid_param("dept", "must be a department code: 01–95, 2A, 2B, 971–976")
            })?
            .map(|d| d.to_string());
        let code = |name: &str, max: usize| -> Result<Option<String>, Problem> {
            match self.get(name) {
                None => Ok(None),
                Some(v) if v.len() <= max && v.chars().all(|c| c.is_ascii_alphanumeric()) => {
                    Ok(Some(v.to_string()))
                }
                Some(_) => Err(Problem::invalid_param(
                    name,
                    format!("must be a code of 1 to {max} letters or digits"),
                )),
            }
        };
        let postal_code = match self.get("postal_code") {
            None => None,
            Some(v) if v.len() == 5 && v.bytes().all(|b| b.is_ascii_digit()) => Some(v.to_string()),
            Some(_) => return Err(Problem::invalid_param("postal_code", "must be 5 digits")),
        };
        Ok(Filters {
            bal_type,
            profession: code("profession", 8)?,
            speciality: code("speciality", 16)?,
            department,
            postal_code,
        })
    }
}

/// The `{id}` of a path naming a stored row (a message, an inbox entry): a positive whole number, or 400
/// naming `id` and saying what kind of id was expected.
pub(crate) fn row_id(id: &str, kind: &str) -> Result<i64, Problem> {
    id.parse().ok().filter(|k: &i64| *k > 0).ok_or_else(|| {
        Problem::invalid_param(
            "id",
            format!("must be {kind} (a positive whole number), got `{id}`"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_and_repeated_parameters_are_refused() {
        let e = Params::parse(Some("q=a&foo=1"), &["q"]).err().unwrap();
        assert_eq!(e.invalid_params[0].name, "foo");
        let e = Params::parse(Some("q=a&q=b"), &["q"]).err().unwrap();
        assert_eq!(e.detail, "q: given more than once");
    }

    #[test]
    fn values_are_checked() {
        let p = Params::parse(
            Some("limit=0&type=XYZ&dept=2a&postal_code=7501"),
            &["limit", "type", "dept", "postal_code"],
        )
        .unwrap();
        assert_eq!(
            p.limit(10, 100).err().unwrap().detail,
            "limit: must be a whole number from 1 to 100, got `0`"
        );
        assert_eq!(p.filters().err().unwrap().invalid_params[0].name, "type");
        let p = Params::parse(Some("dept=2a&postal_code=20000"), &["dept", "postal_code"]).unwrap();
        let f = p.filters().unwrap();
        assert_eq!(f.department.as_deref(), Some("2A"));
        assert_eq!(f.postal_code.as_deref(), Some("20000"));
        let long = "a".repeat(201);
        let p = Params::parse(Some(&format!("q={long}")), &["q"]).unwrap();
        assert_eq!(
            p.query(false).err().unwrap().detail,
            "q: is 201 characters long; at most 200"
        );
        let p = Params::parse(Some("q=%C3%A9l%C3%A8ne+"), &["q"]).unwrap();
        assert_eq!(p.query(true).unwrap(), "élène");
    }
}
