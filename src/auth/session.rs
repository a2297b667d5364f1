//! What the session cookie holds (encrypted; the key is shared by all instances through the
//! database): the CSRF token, the signed-in owner, and the organization a portal link opened.

use actix_session::Session;
use base64::Engine;

const CSRF: &str = "csrf";
const OWNER: &str = "owner";
const PORTAL_ORG: &str = "portal_org";
const SIGNED_IN_AT: &str = "signed_in_at";
/// Set only in a portal session an embed link opened: the origin of the page framing it.
const EMBED_ORIGIN: &str = "embed_origin";
/// The server-side session row (`db::sessions`) this sign-in is valid only as long as.
const SESSION_ID: &str = "sid";

/// How long an owner or portal sign-in lasts, enforced on the server (not only by the
/// cookie's expiry, which a client controls).
pub const MAX_AGE_SECONDS: i64 = 12 * 3600;

fn fresh(session: &Session) -> bool {
    session
        .get::<i64>(SIGNED_IN_AT)
        .ok()
        .flatten()
        .is_some_and(|t| (chrono::Utc::now().timestamp() - t) < MAX_AGE_SECONDS)
}

fn stamp(session: &Session) {
    let _ = session.insert(SIGNED_IN_AT, chrono::Utc::now().timestamp());
}

/// The session's CSRF token, created on first use.
pub fn csrf_token(session: &Session) -> String {
    if let Ok(Some(t)) = session.get::<String>(CSRF) {
        return t;
    }
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let _ = session.insert(CSRF, &token);
    token
}

/// The CSRF token if the session has one (without creating it).
pub fn existing_csrf_token(session: &Session) -> Option<String> {
    session.get::<String>(CSRF).ok().flatten()
}

pub fn owner_id(session: &Session) -> Option<String> {
    session
        .get::<String>(OWNER)
        .ok()
        .flatten()
        .filter(|_| fresh(session))
}

/// Signs the owner in, with a fresh session id and CSRF token (no session fixation).
/// `session_id`: the row `db::sessions::open` recorded for this sign-in.
pub fn sign_in_owner(session: &Session, owner_id: &str, session_id: &str) {
    session.renew();
    let _ = session.remove(CSRF);
    let _ = session.insert(OWNER, owner_id);
    let _ = session.insert(SESSION_ID, session_id);
    stamp(session);
}

/// The server-side session row this cookie's sign-in belongs to.
pub fn session_id(session: &Session) -> Option<String> {
    session.get::<String>(SESSION_ID).ok().flatten()
}

/// Who the cookie says is signed in, before the server-side check: the owner's id or the
/// portal's organization, with the session row.
pub fn claimed(session: &Session) -> Option<(crate::db::sessions::Kind, String, Option<String>)> {
    use crate::db::sessions::Kind;
    let get = |key: &str| session.get::<String>(key).ok().flatten();
    let sid = session_id(session);
    get(OWNER)
        .map(|o| (Kind::Owner, o, sid.clone()))
        .or_else(|| get(PORTAL_ORG).map(|org| (Kind::Portal, org, sid)))
}

pub fn sign_out(session: &Session) {
    session.purge();
}

pub fn portal_org(session: &Session) -> Option<String> {
    session
        .get::<String>(PORTAL_ORG)
        .ok()
        .flatten()
        .filter(|_| fresh(session))
}

/// Scopes the session's portal to one organization (the one the link opened).
/// `session_id`: the row `db::sessions::open` recorded for this sign-in.
pub fn open_portal(session: &Session, org_id: &str, session_id: &str) {
    session.renew();
    let _ = session.remove(CSRF);
    let _ = session.insert(PORTAL_ORG, org_id);
    let _ = session.insert(SESSION_ID, session_id);
    stamp(session);
}

/// Like `open_portal`, for an embed link: the session is also marked as framed by `origin`.
pub fn open_embedded_portal(session: &Session, org_id: &str, session_id: &str, origin: &str) {
    open_portal(session, org_id, session_id);
    let _ = session.insert(EMBED_ORIGIN, origin);
}

/// The origin framing this portal session, if an embed link opened it.
pub fn embed_origin(session: &Session) -> Option<String> {
    session
        .get::<String>(EMBED_ORIGIN)
        .ok()
        .flatten()
        .filter(|_| portal_org(session).is_some())
}

const NEW_TOKEN: &str = "new_token";

/// Keeps a directory's new bearer token for the one page view that shows it (the page that
/// Configure redirects to).
pub fn flash_token(session: &Session, directory_id: &str, token: &str) {
    let _ = session.insert(NEW_TOKEN, (directory_id, token));
}

/// The token kept by `flash_token` for this directory, removed from the session.
pub fn take_token(session: &Session, directory_id: &str) -> Option<String> {
    let (dir, token) = session.get::<(String, String)>(NEW_TOKEN).ok().flatten()?;
    if dir != directory_id {
        return None;
    }
    session.remove(NEW_TOKEN);
    Some(token)
}
