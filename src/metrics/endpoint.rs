//! `GET /metrics`: the Prometheus text format, for the operator's token only. Without
//! `--metrics-token` the path is not served at all (the ordinary 404).

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use super::Sampled;
use crate::auth::tokens;
use crate::state::AppState;

/// Shortest token accepted: a scraper's secret, not a password to remember.
pub const MIN_TOKEN_LEN: usize = 16;

/// The operator's metrics token, kept as its SHA-256 only: comparing hashes takes the same
/// time whatever the presented token's length or first differing byte.
#[derive(Clone)]
pub struct MetricsToken {
    sha256: Vec<u8>,
}

impl std::fmt::Debug for MetricsToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetricsToken(…)")
    }
}

impl MetricsToken {
    /// The flag's value, checked: printable ASCII without spaces, `MIN_TOKEN_LEN` or longer.
    pub fn parse(s: &str) -> Result<MetricsToken, String> {
        if s.len() < MIN_TOKEN_LEN || !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!(
                "invalid --metrics-token: use at least {MIN_TOKEN_LEN} printable characters without spaces (e.g. `openssl rand -hex 32`)"
            ));
        }
        Ok(MetricsToken {
            sha256: tokens::hash(s),
        })
    }

    fn accepts(&self, presented: &str) -> bool {
        tokens::ct_eq(&self.sha256, &tokens::hash(presented))
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(metrics));
}

async fn metrics(
    req: HttpRequest,
    session: actix_session::Session,
    state: web::Data<AppState>,
) -> HttpResponse {
    let Some(expected) = &state.config.metrics_token else {
        return crate::pages::not_found(req, session).await;
    };
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    if !presented.is_some_and(|t| expected.accepts(t)) {
        return HttpResponse::Unauthorized()
            .insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"roster-metrics\""))
            .content_type("text/plain")
            .body("send `Authorization: Bearer <metrics token>` (the --metrics-token value)\n");
    }
    let Some(metrics) = &state.metrics else {
        return HttpResponse::ServiceUnavailable()
            .content_type("text/plain")
            .body("metrics are not available on this instance (see its log)\n");
    };
    let pool = state.pool.clone();
    let gauges = web::block(move || {
        let mut conn = pool.get().map_err(|e| e.to_string())?;
        crate::db::gauges::read(&mut conn).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|r| r)
    .inspect_err(|e| log::warn!("/metrics: the database's gauges were not read: {e}"))
    .ok();
    let rendered = metrics.render(Sampled {
        writer_queue_depth: state.writer.queue_depth(),
        worker: &state.worker_health,
        pool: &state.pool,
        gauges,
    });
    match rendered {
        Ok(text) => HttpResponse::Ok()
            .content_type(prometheus::TEXT_FORMAT)
            .body(text),
        Err(e) => {
            log::error!("/metrics: {e}");
            HttpResponse::InternalServerError()
                .content_type("text/plain")
                .body("the metrics could not be rendered\n")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::MetricsToken;

    #[test]
    fn a_short_or_spaced_token_is_refused() {
        assert!(MetricsToken::parse("short").is_err());
        assert!(MetricsToken::parse("sixteen chars ok").is_err());
        let t = MetricsToken::parse("0123456789abcdef").unwrap();
        assert!(t.accepts("0123456789abcdef"));
        assert!(!t.accepts("0123456789abcdeg"));
        assert!(!format!("{t:?}").contains("0123"));
    }
}
