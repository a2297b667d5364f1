//! The stored branding rows: instance-wide (`INSTANCE`) and per-organization overrides.

use diesel::prelude::*;

use super::schema::brands;
use super::{DbConn, write_tx};

/// The scope of the instance-wide row; an organization's row uses its id.
pub const INSTANCE: &str = "*";

/// One scope's settings, without the logo's bytes.
#[derive(Debug, Clone, Default, Queryable, Selectable)]
#[diesel(table_name = brands)]
pub struct BrandRow {
    pub product_name: Option<String>,
    pub accent: Option<String>,
    pub support: Option<String>,
    pub logo_type: Option<String>,
    pub logo_sha256: Option<String>,
}

pub fn get(conn: &mut DbConn, scope: &str) -> QueryResult<Option<BrandRow>> {
    brands::table
        .find(scope)
        .select(BrandRow::as_select())
        .first(conn)
        .optional()
}

/// Makes sure `scope` has a row, so the setters below only update.
fn ensure(c: &mut DbConn, scope: &str) -> QueryResult<()> {
    if brands::table
        .find(scope)
        .select(brands::scope)
        .first::<String>(c)
        .optional()?
        .is_none()
    {
        diesel::insert_into(brands::table)
            .values(brands::scope.eq(scope))
            .execute(c)?;
    }
    Ok(())
}

/// Stores the text settings of `scope` (None: not set, the wider scope applies).
pub fn set_text(
    conn: &mut DbConn,
    scope: &str,
    product_name: Option<&str>,
    accent: Option<&str>,
    support: Option<&str>,
) -> QueryResult<()> {
    write_tx(conn, |c| {
        ensure(c, scope)?;
        diesel::update(brands::table.find(scope))
            .set((
                brands::product_name.eq(product_name),
                brands::accent.eq(accent),
                brands::support.eq(support),
            ))
            .execute(c)?;
        Ok(())
    })
}

/// Replaces (or with `None` removes) the logo of `scope`.
pub fn set_logo(
    conn: &mut DbConn,
    scope: &str,
    logo: Option<(&[u8], &str, &str)>,
) -> QueryResult<()> {
    let (bytes, content_type, sha) = match logo {
        Some((b, t, s)) => (Some(b), Some(t), Some(s)),
        None => (None, None, None),
    };
    write_tx(conn, |c| {
        ensure(c, scope)?;
        diesel::update(brands::table.find(scope))
            .set((
                brands::logo.eq(bytes),
                brands::logo_type.eq(content_type),
                brands::logo_sha256.eq(sha),
            ))
            .execute(c)?;
        Ok(())
    })
}

/// The logo whose hash is `sha256`: its content type and bytes.
pub fn logo(conn: &mut DbConn, sha256: &str) -> QueryResult<Option<(String, Vec<u8>)>> {
    brands::table
        .filter(brands::logo_sha256.eq(sha256))
        .select((brands::logo_type, brands::logo))
        .first::<(Option<String>, Option<Vec<u8>>)>(conn)
        .optional()
        .map(|r| match r {
            Some((Some(t), Some(b))) => Some((t, b)),
            _ => None,
        })
}
