//! SCIM filter language (RFC 7644 §3.4.2.2): a parser into an AST and an in-memory evaluator.
//! The SQL compiler lives in `db::scim_filter`; both read the same AST.
//!
//! Attribute names, operators and keywords are case-insensitive (PingOne sends
//! `username Eq "…"`). Inputs are bounded (length, nesting, terms) so no filter can exhaust
//! the stack or the CPU.

use std::fmt;

use chrono::{DateTime, FixedOffset};
use serde_json::{Number, Value};

use super::ScimError;

const MAX_FILTER_LEN: usize = 8192;
const MAX_DEPTH: usize = 32;
const MAX_TERMS: usize = 256;

/// `[urn:]name[.sub]`, with the name as sent (compare with `eq_ignore_ascii_case`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrPath {
    pub urn: Option<String>,
    pub name: String,
    pub sub: Option<String>,
}

impl AttrPath {
    /// True when this path names `name` (and no sub-attribute), ignoring case and a core URN.
    pub fn is(&self, name: &str) -> bool {
        self.sub.is_none() && self.name.eq_ignore_ascii_case(name) && self.urn_is_core()
    }

    /// True when this path is `name.sub`, ignoring case.
    pub fn is_sub(&self, name: &str, sub: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
            && self
                .sub
                .as_deref()
                .is_some_and(|s| s.eq_ignore_ascii_case(sub))
            && self.urn_is_core()
    }

    /// No URN, or a core schema URN (which adds nothing to the name).
    pub fn urn_is_core(&self) -> bool {
        self.urn.as_deref().is_none_or(is_core_urn)
    }

    /// Parses `urn:…:name.sub`, `name.sub` or `name`.
    pub fn parse(text: &str) -> Result<AttrPath, String> {
        let (urn, rest) = if text
            .get(..4)
            .is_some_and(|p| p.eq_ignore_ascii_case("urn:"))
        {
            match text.rfind(':') {
                Some(i) => (Some(text[..i].to_string()), &text[i + 1..]),
                None => return Err(format!("bad attribute path `{text}`")),
            }
        } else {
            (None, text)
        };
        let mut parts = rest.splitn(2, '.');
        let name = parts.next().unwrap_or_default();
        let sub = parts.next();
        if !is_attr_name(name) || sub.is_some_and(|s| !is_attr_name(s)) {
            return Err(format!("bad attribute path `{text}`"));
        }
        Ok(AttrPath {
            urn,
            name: name.to_string(),
            sub: sub.map(str::to_string),
        })
    }
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(urn) = &self.urn {
            write!(f, "{urn}:")?;
        }
        f.write_str(&self.name)?;
        if let Some(sub) = &self.sub {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

/// Core schema URNs (and their legacy spellings), which qualify nothing.
pub fn is_core_urn(urn: &str) -> bool {
    let u = urn.to_ascii_lowercase();
    u == "urn:ietf:params:scim:schemas:core:2.0:user"
        || u == "urn:ietf:params:scim:schemas:core:2.0:group"
        || u == "urn:scim:schemas:core:2.0"
        || u == "urn:scim:schemas:core:1.0"
}

fn is_attr_name(s: &str) -> bool {
    if s == "$ref" {
        return true;
    }
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CompareOp {
    fn parse(word: &str) -> Option<CompareOp> {
        Some(match word.to_ascii_lowercase().as_str() {
            "eq" => CompareOp::Eq,
            "ne" => CompareOp::Ne,
            "co" => CompareOp::Co,
            "sw" => CompareOp::Sw,
            "ew" => CompareOp::Ew,
            "gt" => CompareOp::Gt,
            "ge" => CompareOp::Ge,
            "lt" => CompareOp::Lt,
            "le" => CompareOp::Le,
            _ => return None,
        })
    }
}

/// A comparison value: `"string"`, number, `true`, `false` or `null`.
#[derive(Debug, Clone, PartialEq)]
pub enum CompValue {
    Str(String),
    Num(Number),
    Bool(bool),
    Null,
}

/// A parsed filter. In `ValuePath`, the inner filter's paths are relative to the elements of
/// the multi-valued attribute.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Compare {
        attr: AttrPath,
        op: CompareOp,
        value: CompValue,
    },
    Present(AttrPath),
    Not(Box<Filter>),
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    ValuePath {
        attr: AttrPath,
        filter: Box<Filter>,
    },
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Open,
    Close,
    OpenBracket,
    CloseBracket,
    Str(String),
    Word(String),
}

/// Why a filter holding U+0000 is refused (see `crate::scim::check_document`).
const NUL_IN_FILTER: &str = "U+0000 (NUL) cannot appear in a filter";

fn tokenize(input: &str) -> Result<Vec<Token>, String> {
    if input.contains('\0') {
        return Err(NUL_IN_FILTER.into());
    }
    let mut tokens = Vec::new();
    let bytes = input.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'(' => {
                tokens.push(Token::Open);
                i += 1;
            }
            b')' => {
                tokens.push(Token::Close);
                i += 1;
            }
            b'[' => {
                tokens.push(Token::OpenBracket);
                i += 1;
            }
            b']' => {
                tokens.push(Token::CloseBracket);
                i += 1;
            }
            b'"' => {
                // A JSON string: find its closing quote, honouring backslash escapes.
                let start = i;
                i += 1;
                let mut closed = false;
                while i < bytes.len() {
                    match bytes[i] {
                        b'\\' => i += 2,
                        b'"' => {
                            closed = true;
                            i += 1;
                            break;
                        }
                        _ => i += 1,
                    }
                }
                if !closed || i > bytes.len() {
                    return Err("unterminated string".into());
                }
                let s: String = serde_json::from_str(&input[start..i])
                    .map_err(|_| "invalid string escape".to_string())?;
                if s.contains('\0') {
                    return Err(NUL_IN_FILTER.into());
                }
                tokens.push(Token::Str(s));
            }
            _ => {
                let start = i;
                while i < bytes.len() && !b" \t\n\r()[]\"".contains(&bytes[i]) {
                    i += 1;
                }
                tokens.push(Token::Word(input[start..i].to_string()));
            }
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
    terms: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn peek_keyword(&self, keyword: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(keyword))
    }

    fn enter(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err("filter is nested too deeply".into());
        }
        Ok(())
    }

    fn parse_or(&mut self) -> Result<Filter, String> {
        self.enter()?;
        let mut left = self.parse_and()?;
        while self.peek_keyword("or") {
            self.pos += 1;
            let right = self.parse_and()?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        self.depth -= 1;
        Ok(left)
    }

    fn parse_and(&mut self) -> Result<Filter, String> {
        let mut left = self.parse_unary()?;
        while self.peek_keyword("and") {
            self.pos += 1;
            let right = self.parse_unary()?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn parse_unary(&mut self) -> Result<Filter, String> {
        if self.peek_keyword("not") && matches!(self.tokens.get(self.pos + 1), Some(Token::Open)) {
            self.pos += 1;
            return Ok(Filter::Not(Box::new(self.parse_group()?)));
        }
        if matches!(self.peek(), Some(Token::Open)) {
            return self.parse_group();
        }
        self.parse_attr_expr()
    }

    fn parse_group(&mut self) -> Result<Filter, String> {
        self.expect(Token::Open, "`(`")?;
        let inner = self.parse_or()?;
        self.expect(Token::Close, "`)`")?;
        Ok(inner)
    }

    fn expect(&mut self, want: Token, what: &str) -> Result<(), String> {
        match self.next() {
            Some(t) if t == want => Ok(()),
            Some(t) => Err(format!("expected {what}, found {}", describe(&t))),
            None => Err(format!("expected {what} at the end of the filter")),
        }
    }

    fn parse_attr_expr(&mut self) -> Result<Filter, String> {
        self.terms += 1;
        if self.terms > MAX_TERMS {
            return Err("filter has too many terms".into());
        }
        let attr = match self.next() {
            Some(Token::Word(w)) => AttrPath::parse(&w)?,
            Some(t) => {
                return Err(format!(
                    "expected an attribute name, found {}",
                    describe(&t)
                ));
            }
            None => return Err("expected an attribute name at the end of the filter".into()),
        };
        if matches!(self.peek(), Some(Token::OpenBracket)) {
            if attr.sub.is_some() {
                return Err(format!(
                    "`{attr}[…]`: a value filter applies to an attribute, not a sub-attribute"
                ));
            }
            self.pos += 1;
            let inner = self.parse_or()?;
            self.expect(Token::CloseBracket, "`]`")?;
            // `emails[type eq "work"].value eq "x"`: a sub-attribute comparison after the brackets.
            if let Some(Token::Word(w)) = self.peek()
                && let Some(sub) = w.strip_prefix('.')
            {
                if !is_attr_name(sub) {
                    return Err(format!("bad sub-attribute `{sub}`"));
                }
                let sub_attr = AttrPath {
                    urn: None,
                    name: sub.to_string(),
                    sub: None,
                };
                self.pos += 1;
                let tail = self.parse_comparison(sub_attr)?;
                return Ok(Filter::ValuePath {
                    attr,
                    filter: Box::new(Filter::And(Box::new(inner), Box::new(tail))),
                });
            }
            return Ok(Filter::ValuePath {
                attr,
                filter: Box::new(inner),
            });
        }
        self.parse_comparison(attr)
    }

    fn parse_comparison(&mut self, attr: AttrPath) -> Result<Filter, String> {
        let op_word = match self.next() {
            Some(Token::Word(w)) => w,
            Some(t) => {
                return Err(format!(
                    "expected an operator after `{attr}`, found {}",
                    describe(&t)
                ));
            }
            None => return Err(format!("expected an operator after `{attr}`")),
        };
        if op_word.eq_ignore_ascii_case("pr") {
            return Ok(Filter::Present(attr));
        }
        let op =
            CompareOp::parse(&op_word).ok_or_else(|| format!("unknown operator `{op_word}`"))?;
        let value = match self.next() {
            Some(Token::Str(s)) => CompValue::Str(s),
            Some(Token::Word(w)) => match w.to_ascii_lowercase().as_str() {
                "true" => CompValue::Bool(true),
                "false" => CompValue::Bool(false),
                "null" => CompValue::Null,
                _ => match serde_json::from_str::<Number>(&w) {
                    Ok(n) => CompValue::Num(n),
                    Err(_) => {
                        return Err(format!(
                            "value `{w}` must be a quoted string, a number, true, false or null"
                        ));
                    }
                },
            },
            Some(t) => {
                return Err(format!(
                    "expected a value after `{attr} {op_word}`, found {}",
                    describe(&t)
                ));
            }
            None => return Err(format!("expected a value after `{attr} {op_word}`")),
        };
        Ok(Filter::Compare { attr, op, value })
    }
}

fn describe(t: &Token) -> String {
    match t {
        Token::Open => "`(`".into(),
        Token::Close => "`)`".into(),
        Token::OpenBracket => "`[`".into(),
        Token::CloseBracket => "`]`".into(),
        Token::Str(s) => format!("\"{s}\""),
        Token::Word(w) => format!("`{w}`"),
    }
}

/// Parses a filter; any error is a 400 `invalidFilter` naming what is wrong.
pub fn parse(input: &str) -> Result<Filter, ScimError> {
    if input.len() > MAX_FILTER_LEN {
        return Err(ScimError::invalid_filter("filter is too long"));
    }
    let tokens =
        tokenize(input).map_err(|e| ScimError::invalid_filter(format!("invalid filter: {e}")))?;
    if tokens.is_empty() {
        return Err(ScimError::invalid_filter("filter is empty"));
    }
    let mut p = Parser {
        tokens,
        pos: 0,
        depth: 0,
        terms: 0,
    };
    let filter = p
        .parse_or()
        .map_err(|e| ScimError::invalid_filter(format!("invalid filter: {e}")))?;
    if let Some(t) = p.peek() {
        return Err(ScimError::invalid_filter(format!(
            "invalid filter: unexpected {} (combine expressions with `and`/`or`)",
            describe(t)
        )));
    }
    Ok(filter)
}

/// Parses a PATCH path: `attr`, `attr.sub`, `urn:…:attr`, `attr[filter]` or `attr[filter].sub`.
pub fn parse_patch_path(input: &str) -> Result<(AttrPath, Option<Filter>, Option<String>), String> {
    if input.len() > MAX_FILTER_LEN {
        return Err("path is too long".into());
    }
    let tokens = tokenize(input)?;
    let mut p = Parser {
        tokens,
        pos: 0,
        depth: 0,
        terms: 0,
    };
    let attr = match p.next() {
        Some(Token::Word(w)) => AttrPath::parse(&w)?,
        _ => return Err(format!("bad path `{input}`")),
    };
    if p.peek().is_none() {
        return Ok((attr, None, None));
    }
    if attr.sub.is_some() {
        return Err(format!("bad path `{input}`"));
    }
    p.expect(Token::OpenBracket, "`[`")?;
    let filter = p.parse_or()?;
    p.expect(Token::CloseBracket, "`]`")?;
    let sub = match p.next() {
        None => None,
        Some(Token::Word(w)) => match w.strip_prefix('.') {
            Some(s) if is_attr_name(s) && p.peek().is_none() => Some(s.to_string()),
            _ => return Err(format!("bad path `{input}`")),
        },
        Some(_) => return Err(format!("bad path `{input}`")),
    };
    Ok((attr, Some(filter), sub))
}

// ---- In-memory evaluation -------------------------------------------------------------------

/// Attributes compared case-exactly (RFC 7643: `id`, `externalId`, references); everything
/// else is `caseExact: false`.
fn case_exact(name: &str) -> bool {
    ["id", "externalId", "$ref"]
        .iter()
        .any(|n| n.eq_ignore_ascii_case(name))
}

/// Finds a key in a JSON object ignoring ASCII case.
pub fn get_ci<'a>(obj: &'a Value, key: &str) -> Option<&'a Value> {
    obj.as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

/// The values an attribute path designates in a resource (flattening multi-valued ones).
fn resolve<'a>(resource: &'a Value, attr: &AttrPath) -> Vec<&'a Value> {
    let container = match &attr.urn {
        Some(urn) if !is_core_urn(urn) => match get_ci(resource, urn) {
            Some(ext) => ext,
            None => return Vec::new(),
        },
        _ => resource,
    };
    let Some(v) = get_ci(container, &attr.name) else {
        return Vec::new();
    };
    let tops: Vec<&Value> = match v {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    match &attr.sub {
        None => tops,
        Some(sub) => tops
            .into_iter()
            .filter_map(|t| get_ci(t, sub))
            .flat_map(|v| match v {
                Value::Array(items) => items.iter().collect::<Vec<_>>(),
                other => vec![other],
            })
            .collect(),
    }
}

/// The first value an attribute path designates in a resource (for sorting).
pub fn first_value<'a>(resource: &'a Value, attr: &AttrPath) -> Option<&'a Value> {
    let values = resolve(resource, attr);
    // Prefer the primary value of a multi-valued attribute.
    values
        .iter()
        .find(|v| get_ci(v, "primary") == Some(&Value::Bool(true)))
        .or(values.first())
        .map(|v| {
            if v.is_object() {
                get_ci(v, "value").unwrap_or(v)
            } else {
                v
            }
        })
}

/// Orders two optional values as SCIM sorting does: strings case-insensitively, numbers
/// numerically, missing values last.
pub fn sort_cmp(a: Option<&Value>, b: Option<&Value>) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(Value::Number(x)), Some(Value::Number(y))) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (Some(Value::String(x)), Some(Value::String(y))) => x.to_lowercase().cmp(&y.to_lowercase()),
        (Some(x), Some(y)) => x.to_string().cmp(&y.to_string()),
    }
}

impl Filter {
    /// Evaluates the filter against a resource (or, inside a value path, an element).
    pub fn matches(&self, resource: &Value) -> bool {
        match self {
            Filter::And(a, b) => a.matches(resource) && b.matches(resource),
            Filter::Or(a, b) => a.matches(resource) || b.matches(resource),
            Filter::Not(f) => !f.matches(resource),
            Filter::Present(attr) => resolve(resource, attr)
                .into_iter()
                .any(|v| !matches!(v, Value::Null) && v != &Value::String(String::new())),
            Filter::ValuePath { attr, filter } => resolve(resource, attr)
                .into_iter()
                .any(|element| filter.matches(element)),
            Filter::Compare { attr, op, value } => {
                let exact = case_exact(attr.sub.as_deref().unwrap_or(&attr.name));
                let values = resolve(resource, attr);
                if values.is_empty() {
                    // An absent attribute equals null and differs from everything else.
                    return match (op, value) {
                        (CompareOp::Eq, CompValue::Null) => true,
                        (CompareOp::Ne, CompValue::Null) => false,
                        (CompareOp::Ne, _) => true,
                        _ => false,
                    };
                }
                if *op == CompareOp::Ne {
                    return !values
                        .iter()
                        .any(|v| compare(v, CompareOp::Eq, value, exact));
                }
                values.into_iter().any(|v| {
                    // `emails eq "x"` compares a complex value through its `value` sub-attribute.
                    let v = if v.is_object() && attr.sub.is_none() {
                        get_ci(v, "value").unwrap_or(v)
                    } else {
                        v
                    };
                    compare(v, *op, value, exact)
                })
            }
        }
    }
}

fn parse_date(s: &str) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc3339(s).ok()
}

fn compare(actual: &Value, op: CompareOp, expected: &CompValue, case_exact: bool) -> bool {
    use std::cmp::Ordering;
    let ordering: Option<Ordering> = match (actual, expected) {
        (Value::String(a), CompValue::Str(e)) => {
            if let (Some(da), Some(de)) = (parse_date(a), parse_date(e)) {
                Some(da.cmp(&de))
            } else {
                let (a, e) = if case_exact {
                    (a.clone(), e.clone())
                } else {
                    (a.to_lowercase(), e.to_lowercase())
                };
                match op {
                    CompareOp::Co => return a.contains(&e),
                    CompareOp::Sw => return a.starts_with(&e),
                    CompareOp::Ew => return a.ends_with(&e),
                    _ => Some(a.cmp(&e)),
                }
            }
        }
        (Value::Bool(a), CompValue::Bool(e)) => {
            return match op {
                CompareOp::Eq => a == e,
                CompareOp::Ne => a != e,
                _ => false,
            };
        }
        // Entra sends booleans as strings; compare them as booleans.
        (Value::String(a), CompValue::Bool(e)) => {
            let a = match a.to_ascii_lowercase().as_str() {
                "true" => true,
                "false" => false,
                _ => return false,
            };
            return match op {
                CompareOp::Eq => a == *e,
                CompareOp::Ne => a != *e,
                _ => false,
            };
        }
        (Value::Number(a), CompValue::Num(e)) => match (a.as_f64(), e.as_f64()) {
            (Some(a), Some(e)) => a.partial_cmp(&e),
            _ => None,
        },
        (Value::Null, CompValue::Null) => Some(Ordering::Equal),
        _ => None,
    };
    let Some(ordering) = ordering else {
        return false;
    };
    match op {
        CompareOp::Eq => ordering == Ordering::Equal,
        CompareOp::Ne => ordering != Ordering::Equal,
        CompareOp::Gt => ordering == Ordering::Greater,
        CompareOp::Ge => ordering != Ordering::Less,
        CompareOp::Lt => ordering == Ordering::Less,
        CompareOp::Le => ordering != Ordering::Greater,
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cmp(attr: &str, op: CompareOp, v: &str) -> Filter {
        Filter::Compare {
            attr: AttrPath::parse(attr).unwrap(),
            op,
            value: CompValue::Str(v.into()),
        }
    }

    #[test]
    fn pingone_default_filter_with_odd_case_parses() {
        let f = parse(r#"username Eq "jdoe@acme.com""#).unwrap();
        assert_eq!(f, cmp("username", CompareOp::Eq, "jdoe@acme.com"));
        if let Filter::Compare { attr, .. } = &f {
            assert!(attr.is("userName"));
        }
    }

    #[test]
    fn and_binds_tighter_than_or() {
        let f = parse(r#"a eq "1" or b eq "2" AND c eq "3""#).unwrap();
        assert_eq!(
            f,
            Filter::Or(
                Box::new(cmp("a", CompareOp::Eq, "1")),
                Box::new(Filter::And(
                    Box::new(cmp("b", CompareOp::Eq, "2")),
                    Box::new(cmp("c", CompareOp::Eq, "3"))
                ))
            )
        );
    }

    #[test]
    fn rfc_examples_parse() {
        for f in [
            r#"userName eq "bjensen""#,
            r#"name.familyName co "O'Malley""#,
            r#"userName sw "J""#,
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#,
            r#"title pr"#,
            r#"meta.lastModified gt "2011-05-13T04:42:34Z""#,
            r#"title pr and userType eq "Employee""#,
            r#"title pr or userType eq "Intern""#,
            r#"schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User""#,
            r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
            r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
            r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"]"#,
            r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#,
            r#"emails[type eq "work"].value eq "a@b.c""#,
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "1""#,
            r#"active eq true"#,
            r#"x.y gt 5"#,
        ] {
            parse(f).unwrap_or_else(|e| panic!("{f}: {e:?}"));
        }
    }

    #[test]
    fn malformed_filters_are_invalid_filter_errors() {
        for f in [
            "",
            "userName",
            "userName eq",
            r#"userName eq "x" or"#,
            r#"externalId eq jyoung"#,
            r#"userName zz "x""#,
            r#"(userName eq "x""#,
            r#"userName eq "x")"#,
            r#"emails[type eq "work""#,
            r#"userName eq "unterminated"#,
            r#"1abc eq "x""#,
            r#"userName eq "x" userName eq "y""#,
        ] {
            let e = parse(f).unwrap_err();
            assert_eq!(e.status, 400, "{f}");
            assert_eq!(
                e.scim_type,
                Some(crate::scim::ScimType::InvalidFilter),
                "{f}"
            );
        }
    }

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        let f = format!("{}a eq \"1\"{}", "(".repeat(10_000), ")".repeat(10_000));
        assert!(parse(&f).is_err());
    }

    #[test]
    fn evaluation_follows_case_rules_and_multi_values() {
        let user = json!({
            "userName": "BJensen@Example.com",
            "externalId": "AbC",
            "emails": [{"value": "b@work.com", "type": "work"}, {"value": "b@home.org", "type": "home"}],
            "active": "True",
            "meta": {"lastModified": "2024-05-13T04:42:34Z"}
        });
        let yes = [
            r#"USERNAME eq "bjensen@example.com""#,
            r#"externalId eq "AbC""#,
            r#"emails eq "B@HOME.org""#,
            r#"emails[type eq "work" and value co "@work"]"#,
            r#"emails[type eq "work"].value eq "b@work.com""#,
            r#"active eq true"#,
            r#"meta.lastModified gt "2011-05-13T04:42:34Z""#,
            r#"not (title pr)"#,
            r#"title ne "x""#,
        ];
        for f in yes {
            assert!(parse(f).unwrap().matches(&user), "{f}");
        }
        let no = [
            r#"externalId eq "abc""#,
            r#"emails[type eq "home" and value co "@work"]"#,
            r#"userName eq "someone""#,
            r#"title pr"#,
        ];
        for f in no {
            assert!(!parse(f).unwrap().matches(&user), "{f}");
        }
    }

    #[test]
    fn patch_paths_parse() {
        let (a, f, s) = parse_patch_path(r#"members[value eq "2819c223"]"#).unwrap();
        assert!(a.is("members"));
        assert!(f.is_some() && s.is_none());
        let (a, f, s) = parse_patch_path(r#"emails[type eq "work"].value"#).unwrap();
        assert!(a.is("emails") && f.is_some());
        assert_eq!(s.as_deref(), Some("value"));
        let (a, _, _) =
            parse_patch_path("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager")
                .unwrap();
        assert_eq!(a.name, "manager");
        assert!(parse_patch_path("members[").is_err());
        assert!(parse_patch_path("a b").is_err());
    }

    proptest::proptest! {
        #[test]
        fn parser_never_panics(s in "\\PC{0,200}") {
            let _ = parse(&s);
            let _ = parse_patch_path(&s);
        }

        #[test]
        fn parser_never_panics_on_filter_shaped_input(
            s in r#"[a-zA-Z.:\[\]() "]{0,80}( (eq|co|pr|and|or|not) )?[a-z"()\[\]]{0,20}"#
        ) {
            let _ = parse(&s);
        }
    }
}
