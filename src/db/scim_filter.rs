//! Compiles a parsed SCIM filter (`scim::filter::Filter`) into diesel expressions with bound
//! parameters. Case-insensitive attributes compare against normalised (`*_norm`) columns with a
//! normalised operand, so both backends agree. Nullable columns are guarded so that `not (…)`
//! follows SCIM semantics (an absent attribute is "not equal"), not SQL's three-valued logic.

use chrono::{DateTime, NaiveDateTime};
use diesel::dsl::not;
use diesel::expression::BoxableExpression;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Nullable};

use super::schema::{group_members, scim_groups, scim_users};
use super::{MultiBackend, like_escape};
use crate::scim::ScimError;
use crate::scim::filter::{AttrPath, CompValue, CompareOp, Filter};
use crate::scim::resource::normalize;

pub type UserCond =
    Box<dyn BoxableExpression<scim_users::table, MultiBackend, SqlType = Nullable<Bool>>>;
pub type GroupCond =
    Box<dyn BoxableExpression<scim_groups::table, MultiBackend, SqlType = Nullable<Bool>>>;

fn text_operand(
    attr: &AttrPath,
    value: &CompValue,
    case_insensitive: bool,
) -> Result<Option<String>, ScimError> {
    let s = match value {
        CompValue::Str(s) => s.clone(),
        CompValue::Num(n) => n.to_string(),
        CompValue::Null => return Ok(None),
        CompValue::Bool(_) => {
            return Err(ScimError::invalid_filter(format!(
                "`{attr}` is a string; compare it with a quoted value"
            )));
        }
    };
    Ok(Some(if case_insensitive { normalize(&s) } else { s }))
}

/// A comparison on a text column; `$nullable` says whether the column can be NULL.
macro_rules! text_compare {
    ($col:expr, $op:expr, $operand:expr, $attr:expr, $cond:ty, nullable) => {{
        let col = $col;
        let cond: $cond = match ($op, $operand) {
            (CompareOp::Eq, None) => Box::new(col.is_null().nullable()),
            (CompareOp::Ne, None) => Box::new(col.is_not_null().nullable()),
            (CompareOp::Ne, Some(v)) => Box::new(col.is_null().or(col.ne(v))),
            (op, Some(v)) => {
                let inner: $cond = text_compare!(@op col, op, v);
                Box::new(col.is_not_null().and(inner))
            }
            (_, None) => return Err(CompileError::Invalid(ScimError::invalid_filter(format!("`{}`: only eq and ne compare with null", $attr)))),
        };
        cond
    }};
    ($col:expr, $op:expr, $operand:expr, $attr:expr, $cond:ty, not_null) => {{
        let col = $col;
        let cond: $cond = match ($op, $operand) {
            (CompareOp::Eq, None) => Box::new(diesel::dsl::sql::<Bool>("1=0").nullable()),
            (CompareOp::Ne, None) => Box::new(diesel::dsl::sql::<Bool>("1=1").nullable()),
            (op, Some(v)) => text_compare!(@op col, op, v),
            (_, None) => return Err(CompileError::Invalid(ScimError::invalid_filter(format!("`{}`: only eq and ne compare with null", $attr)))),
        };
        cond
    }};
    (@op $col:expr, $op:expr, $v:expr) => {{
        let v: String = $v;
        match $op {
            CompareOp::Eq => Box::new($col.eq(v).nullable()),
            CompareOp::Ne => Box::new($col.ne(v).nullable()),
            CompareOp::Co => Box::new($col.like(format!("%{}%", like_escape(&v))).escape('\\').nullable()),
            CompareOp::Sw => Box::new($col.like(format!("{}%", like_escape(&v))).escape('\\').nullable()),
            CompareOp::Ew => Box::new($col.like(format!("%{}", like_escape(&v))).escape('\\').nullable()),
            CompareOp::Gt => Box::new($col.gt(v).nullable()),
            CompareOp::Ge => Box::new($col.ge(v).nullable()),
            CompareOp::Lt => Box::new($col.lt(v).nullable()),
            CompareOp::Le => Box::new($col.le(v).nullable()),
        }
    }};
}

macro_rules! time_compare {
    ($col:expr, $op:expr, $value:expr, $attr:expr, $cond:ty) => {{
        let t = parse_time($attr, $value)?;
        let col = $col;
        let cond: $cond = match $op {
            CompareOp::Eq => Box::new(col.eq(t).nullable()),
            CompareOp::Ne => Box::new(col.ne(t).nullable()),
            CompareOp::Gt => Box::new(col.gt(t).nullable()),
            CompareOp::Ge => Box::new(col.ge(t).nullable()),
            CompareOp::Lt => Box::new(col.lt(t).nullable()),
            CompareOp::Le => Box::new(col.le(t).nullable()),
            _ => {
                return Err(CompileError::Invalid(ScimError::invalid_filter(format!(
                    "`{}` is a date: use eq, ne, gt, ge, lt or le",
                    $attr
                ))));
            }
        };
        cond
    }};
}

fn parse_time(attr: &AttrPath, value: &CompValue) -> Result<NaiveDateTime, ScimError> {
    match value {
        CompValue::Str(s) => DateTime::parse_from_rfc3339(s)
            .map(|d| d.naive_utc())
            .map_err(|_| {
                ScimError::invalid_filter(format!("`{attr}` needs an RFC 3339 date, not \"{s}\""))
            }),
        _ => Err(ScimError::invalid_filter(format!(
            "`{attr}` needs a quoted RFC 3339 date"
        ))),
    }
}

fn bool_operand(
    attr: &AttrPath,
    op: CompareOp,
    value: &CompValue,
) -> Result<(bool, bool), ScimError> {
    let b = match value {
        CompValue::Bool(b) => *b,
        CompValue::Str(s) if s.eq_ignore_ascii_case("true") => true,
        CompValue::Str(s) if s.eq_ignore_ascii_case("false") => false,
        _ => {
            return Err(ScimError::invalid_filter(format!(
                "`{attr}` is a boolean: compare it with true or false"
            )));
        }
    };
    match op {
        CompareOp::Eq => Ok((b, true)),
        CompareOp::Ne => Ok((b, false)),
        _ => Err(ScimError::invalid_filter(format!(
            "`{attr}` is a boolean: use eq or ne"
        ))),
    }
}

/// Why a filter did not compile to SQL.
#[derive(Debug)]
pub enum CompileError {
    /// Valid, but it names an attribute without a column: evaluate it on the documents.
    NeedsScan,
    /// Invalid for its attribute (e.g. a date compared with a boolean).
    Invalid(ScimError),
}

impl From<ScimError> for CompileError {
    fn from(e: ScimError) -> Self {
        CompileError::Invalid(e)
    }
}

fn unsupported(_attr: &AttrPath) -> CompileError {
    CompileError::NeedsScan
}

/// A user condition, scoped to `directory_id` where it reads side tables.
pub fn user_condition(directory_id: &str, f: &Filter) -> Result<UserCond, CompileError> {
    Ok(match f {
        Filter::And(a, b) => {
            Box::new(user_condition(directory_id, a)?.and(user_condition(directory_id, b)?))
        }
        Filter::Or(a, b) => {
            Box::new(user_condition(directory_id, a)?.or(user_condition(directory_id, b)?))
        }
        Filter::Not(a) => Box::new(not(user_condition(directory_id, a)?)),
        Filter::Present(attr) => user_present(directory_id, attr)?,
        Filter::Compare { attr, op, value } => user_compare(directory_id, attr, *op, value)?,
        Filter::ValuePath { attr, filter } if attr.is("emails") => {
            emails_matching(directory_id, email_condition(filter)?)
        }
        Filter::ValuePath { attr, .. } => return Err(unsupported(attr)),
    })
}

/// Users with an email matching `cond` (a condition on `user_emails` rows aliased `ue`).
fn emails_matching(directory_id: &str, cond: RawCond) -> UserCond {
    let mut sql = RawCond::default();
    sql.sql("scim_users.id IN (SELECT ue.user_id FROM user_emails ue WHERE ue.directory_id = ")
        .text(directory_id.to_string())
        .sql(" AND (")
        .append(cond)
        .sql("))");
    Box::new(sql.nullable())
}

fn user_present(directory_id: &str, attr: &AttrPath) -> Result<UserCond, CompileError> {
    Ok(
        if attr.is("userName")
            || attr.is("id")
            || attr.is("active")
            || attr.is_sub("meta", "created")
            || attr.is_sub("meta", "lastModified")
        {
            Box::new(diesel::dsl::sql::<Bool>("1=1").nullable())
        } else if attr.is("externalId") {
            Box::new(scim_users::external_id.is_not_null().nullable())
        } else if attr.is("displayName") {
            Box::new(scim_users::display_name.is_not_null().nullable())
        } else if attr.is("emails") || attr.is_sub("emails", "value") {
            emails_matching(directory_id, RawCond::literal("1=1"))
        } else {
            return Err(unsupported(attr));
        },
    )
}

fn user_compare(
    directory_id: &str,
    attr: &AttrPath,
    op: CompareOp,
    value: &CompValue,
) -> Result<UserCond, CompileError> {
    Ok(if attr.is("userName") {
        text_compare!(
            scim_users::user_name_norm,
            op,
            text_operand(attr, value, true)?,
            attr,
            UserCond,
            not_null
        )
    } else if attr.is("id") {
        text_compare!(
            scim_users::id,
            op,
            text_operand(attr, value, false)?,
            attr,
            UserCond,
            not_null
        )
    } else if attr.is("externalId") {
        text_compare!(
            scim_users::external_id,
            op,
            text_operand(attr, value, false)?,
            attr,
            UserCond,
            nullable
        )
    } else if attr.is("displayName") {
        text_compare!(
            scim_users::display_name_norm,
            op,
            text_operand(attr, value, true)?,
            attr,
            UserCond,
            nullable
        )
    } else if attr.is("active") {
        let (b, equal) = bool_operand(attr, op, value)?;
        if equal {
            Box::new(scim_users::active.eq(b).nullable())
        } else {
            Box::new(scim_users::active.ne(b).nullable())
        }
    } else if attr.is_sub("meta", "created") {
        time_compare!(scim_users::created_at, op, value, attr, UserCond)
    } else if attr.is_sub("meta", "lastModified") {
        time_compare!(scim_users::updated_at, op, value, attr, UserCond)
    } else if attr.is("emails") || attr.is_sub("emails", "value") || attr.is_sub("emails", "type") {
        let element = AttrPath {
            urn: None,
            name: attr.sub.clone().unwrap_or_else(|| "value".into()),
            sub: None,
        };
        let cond = email_compare(&element, op, value)?;
        if op == CompareOp::Ne {
            // "no email equals x": negate the positive match, so users without emails qualify.
            return Ok(Box::new(not(emails_matching(
                directory_id,
                email_compare(&element, CompareOp::Eq, value)?,
            ))));
        }
        emails_matching(directory_id, cond)
    } else {
        return Err(unsupported(attr));
    })
}

/// A condition on one email element (inside `emails[…]`), on `user_emails` aliased `ue`.
fn email_condition(f: &Filter) -> Result<RawCond, CompileError> {
    let mut out = RawCond::default();
    match f {
        Filter::And(a, b) | Filter::Or(a, b) => {
            let joiner = if matches!(f, Filter::And(..)) {
                " AND "
            } else {
                " OR "
            };
            out.sql("(")
                .append(email_condition(a)?)
                .sql(joiner)
                .append(email_condition(b)?)
                .sql(")");
        }
        Filter::Not(a) => {
            out.sql("NOT (").append(email_condition(a)?).sql(")");
        }
        Filter::Present(attr) if attr.is("value") => {
            out.sql("1=1");
        }
        Filter::Present(attr) if attr.is("type") => {
            out.sql("ue.type_norm IS NOT NULL");
        }
        Filter::Compare { attr, op, value } => return email_compare(attr, *op, value),
        Filter::Present(attr) | Filter::ValuePath { attr, .. } => return Err(unsupported(attr)),
    };
    Ok(out)
}

fn email_compare(
    attr: &AttrPath,
    op: CompareOp,
    value: &CompValue,
) -> Result<RawCond, CompileError> {
    let mut out = RawCond::default();
    if attr.is("primary") {
        let (b, equal) = bool_operand(attr, op, value)?;
        out.sql(if equal {
            "ue.is_primary = "
        } else {
            "ue.is_primary <> "
        })
        .boolean(b);
        return Ok(out);
    }
    let column = if attr.is("value") {
        "ue.value_norm"
    } else if attr.is("type") {
        "ue.type_norm"
    } else {
        return Err(unsupported(attr));
    };
    let Some(v) = text_operand(attr, value, true)? else {
        return Ok(match op {
            CompareOp::Eq => RawCond::literal(&format!("{column} IS NULL")),
            CompareOp::Ne => RawCond::literal(&format!("{column} IS NOT NULL")),
            _ => {
                return Err(CompileError::Invalid(ScimError::invalid_filter(format!(
                    "`{attr}`: only eq and ne compare with null"
                ))));
            }
        });
    };
    let (sql_op, operand) = match op {
        CompareOp::Eq => (" = ", v),
        CompareOp::Ne => (" <> ", v),
        CompareOp::Co => (" LIKE ", format!("%{}%", like_escape(&v))),
        CompareOp::Sw => (" LIKE ", format!("{}%", like_escape(&v))),
        CompareOp::Ew => (" LIKE ", format!("%{}", like_escape(&v))),
        CompareOp::Gt => (" > ", v),
        CompareOp::Ge => (" >= ", v),
        CompareOp::Lt => (" < ", v),
        CompareOp::Le => (" <= ", v),
    };
    out.sql("(")
        .sql(column)
        .sql(" IS NOT NULL AND ")
        .sql(column)
        .sql(sql_op)
        .text(operand);
    if matches!(op, CompareOp::Co | CompareOp::Sw | CompareOp::Ew) {
        out.sql(" ESCAPE '\\'");
    }
    out.sql(")");
    Ok(out)
}

/// A group condition.
pub fn group_condition(f: &Filter) -> Result<GroupCond, CompileError> {
    Ok(match f {
        Filter::And(a, b) => Box::new(group_condition(a)?.and(group_condition(b)?)),
        Filter::Or(a, b) => Box::new(group_condition(a)?.or(group_condition(b)?)),
        Filter::Not(a) => Box::new(not(group_condition(a)?)),
        Filter::Present(attr) if attr.is("displayName") || attr.is("id") => {
            Box::new(diesel::dsl::sql::<Bool>("1=1").nullable())
        }
        Filter::Present(attr) if attr.is("externalId") => {
            Box::new(scim_groups::external_id.is_not_null().nullable())
        }
        Filter::Present(attr) if attr.is("members") => Box::new(
            scim_groups::id
                .eq_any(group_members::table.select(group_members::group_id))
                .nullable(),
        ),
        Filter::Compare { attr, op, value } => group_compare(attr, *op, value)?,
        Filter::ValuePath { attr, filter } if attr.is("members") => match filter.as_ref() {
            Filter::Compare {
                attr: inner,
                op: CompareOp::Eq,
                value,
            } if inner.is("value") => group_compare(
                &AttrPath {
                    urn: None,
                    name: "members".into(),
                    sub: None,
                },
                CompareOp::Eq,
                value,
            )?,
            _ => {
                return Err(CompileError::Invalid(ScimError::invalid_filter(
                    "a members filter must be `members[value eq \"<user id>\"]`",
                )));
            }
        },
        Filter::Present(attr) | Filter::ValuePath { attr, .. } => return Err(unsupported(attr)),
    })
}

fn group_compare(
    attr: &AttrPath,
    op: CompareOp,
    value: &CompValue,
) -> Result<GroupCond, CompileError> {
    Ok(if attr.is("displayName") {
        text_compare!(
            scim_groups::display_name_norm,
            op,
            text_operand(attr, value, true)?,
            attr,
            GroupCond,
            not_null
        )
    } else if attr.is("id") {
        text_compare!(
            scim_groups::id,
            op,
            text_operand(attr, value, false)?,
            attr,
            GroupCond,
            not_null
        )
    } else if attr.is("externalId") {
        text_compare!(
            scim_groups::external_id,
            op,
            text_operand(attr, value, false)?,
            attr,
            GroupCond,
            nullable
        )
    } else if attr.is_sub("meta", "created") {
        time_compare!(scim_groups::created_at, op, value, attr, GroupCond)
    } else if attr.is_sub("meta", "lastModified") {
        time_compare!(scim_groups::updated_at, op, value, attr, GroupCond)
    } else if attr.is("members") || attr.is_sub("members", "value") {
        let Some(user_id) = text_operand(attr, value, false)? else {
            return Err(CompileError::Invalid(ScimError::invalid_filter(
                "`members` cannot be compared with null",
            )));
        };
        let subquery = group_members::table
            .select(group_members::group_id)
            .filter(group_members::user_id.eq(user_id));
        match op {
            CompareOp::Eq => Box::new(scim_groups::id.eq_any(subquery).nullable()),
            CompareOp::Ne => Box::new(not(scim_groups::id.eq_any(subquery)).nullable()),
            _ => {
                return Err(CompileError::Invalid(ScimError::invalid_filter(
                    "`members` supports eq and ne",
                )));
            }
        }
    } else {
        return Err(unsupported(attr));
    })
}

/// A SQL condition assembled from fixed fragments and bound parameters. Used for subqueries,
/// which diesel's `MultiBackend` cannot box; every value still goes through a bind parameter.
#[derive(Debug, Clone, Default)]
pub struct RawCond {
    parts: Vec<Part>,
}

#[derive(Debug, Clone)]
enum Part {
    Sql(String),
    Text(String),
    Bool(bool),
}

impl RawCond {
    fn literal(sql: &str) -> RawCond {
        let mut c = RawCond::default();
        c.sql(sql);
        c
    }
    fn sql(&mut self, sql: &str) -> &mut Self {
        self.parts.push(Part::Sql(sql.to_string()));
        self
    }
    fn text(&mut self, value: String) -> &mut Self {
        self.parts.push(Part::Text(value));
        self
    }
    fn boolean(&mut self, value: bool) -> &mut Self {
        self.parts.push(Part::Bool(value));
        self
    }
    fn append(&mut self, other: RawCond) -> &mut Self {
        self.parts.extend(other.parts);
        self
    }
}

impl diesel::expression::Expression for RawCond {
    type SqlType = Bool;
}

impl<QS> diesel::expression::AppearsOnTable<QS> for RawCond {}
impl<QS> diesel::expression::SelectableExpression<QS> for RawCond {}

impl diesel::expression::ValidGrouping<()> for RawCond {
    type IsAggregate = diesel::expression::is_aggregate::Never;
}

impl diesel::query_builder::QueryId for RawCond {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<DB> diesel::query_builder::QueryFragment<DB> for RawCond
where
    DB: diesel::backend::Backend
        + diesel::sql_types::HasSqlType<diesel::sql_types::Text>
        + diesel::sql_types::HasSqlType<Bool>,
    String: diesel::serialize::ToSql<diesel::sql_types::Text, DB>,
    bool: diesel::serialize::ToSql<Bool, DB>,
{
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, DB>,
    ) -> QueryResult<()> {
        for part in &self.parts {
            match part {
                Part::Sql(s) => out.push_sql(s),
                Part::Text(t) => out.push_bind_param::<diesel::sql_types::Text, _>(t)?,
                Part::Bool(b) => out.push_bind_param::<Bool, _>(b)?,
            }
        }
        Ok(())
    }
}
