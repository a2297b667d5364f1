//! Branding of the Admin Portal: the product name, logo, accent colour and support contact
//! the owner set instance-wide and, per organization, overrides of each. What is not set
//! falls back to the wider scope, and the product name finally to `--product-name`.

pub mod assets;
pub mod contrast;
pub mod error_pages;
pub mod logo;

use crate::db::{self, DbConn, brands::BrandRow};
use contrast::Rgb;

/// Where the IT admin gets help: an email address or an https URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Support {
    Email(String),
    Url(String),
}

impl Support {
    /// Parses what the owner typed; the error says what is accepted.
    pub fn parse(s: &str) -> Result<Support, &'static str> {
        let s = s.trim();
        let bad =
            "The support contact must be an email address (help@example.com) or an https:// URL.";
        if s.len() > 500 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad);
        }
        if let Some(rest) = s.strip_prefix("https://") {
            return if rest.is_empty() || rest.starts_with('/') {
                Err(bad)
            } else {
                Ok(Support::Url(s.to_string()))
            };
        }
        match s.split_once('@') {
            Some((local, domain))
                if !local.is_empty()
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !s.contains([':', '/', '<', '>', '"', '\'', '?', '&']) =>
            {
                Ok(Support::Email(s.to_string()))
            }
            _ => Err(bad),
        }
    }

    pub fn href(&self) -> String {
        match self {
            Support::Email(e) => format!("mailto:{e}"),
            Support::Url(u) => u.clone(),
        }
    }

    pub fn label(&self) -> &str {
        match self {
            Support::Email(s) | Support::Url(s) => s,
        }
    }
}

/// Why an accent colour was refused.
pub fn check_accent(s: &str) -> Result<Rgb, String> {
    let rgb = Rgb::parse(s.trim()).ok_or_else(|| {
        format!(
            "The accent colour must be written #rrggbb (e.g. #1d4ed8); \"{}\" is not.",
            s.trim()
        )
    })?;
    let ratio = contrast::with_white(rgb);
    if ratio < contrast::AA_NORMAL {
        return Err(format!(
            "The accent colour {} gives white button text a contrast of only {:.2}:1; WCAG AA needs at least 4.5:1. Choose a darker colour.",
            rgb.css(),
            // Rounded down, so 4.496 does not read as the 4.50 it fails.
            (ratio * 100.0).floor() / 100.0
        ));
    }
    Ok(rgb)
}

/// The branding a page shows, every fallback applied.
#[derive(Debug, Clone)]
pub struct Brand {
    pub product: String,
    pub accent: Option<Rgb>,
    pub support: Option<Support>,
    /// The logo's URL (it contains the logo's hash).
    pub logo: Option<String>,
}

impl Brand {
    /// The default branding: the configured product name and nothing else.
    pub fn plain(product: &str) -> Brand {
        Brand {
            product: product.to_string(),
            accent: None,
            support: None,
            logo: None,
        }
    }

    /// The branding of `org` (or instance-wide with None) over `default_product`.
    pub fn load(
        conn: &mut DbConn,
        default_product: &str,
        org: Option<&str>,
    ) -> diesel::QueryResult<Brand> {
        let wide = db::brands::get(conn, db::brands::INSTANCE)?.unwrap_or_default();
        let own = match org {
            Some(id) => db::brands::get(conn, id)?.unwrap_or_default(),
            None => BrandRow::default(),
        };
        let logo = match (&own.logo_sha256, &own.logo_type) {
            (Some(sha), Some(t)) => Some((sha.clone(), t.clone())),
            _ => wide.logo_sha256.clone().zip(wide.logo_type.clone()),
        };
        Ok(Brand {
            product: own
                .product_name
                .or(wide.product_name)
                .unwrap_or_else(|| default_product.to_string()),
            accent: own.accent.or(wide.accent).and_then(|a| Rgb::parse(&a)),
            support: own
                .support
                .or(wide.support)
                .and_then(|s| Support::parse(&s).ok()),
            logo: logo.and_then(|(sha, t)| assets::logo_url(&sha, &t)),
        })
    }

    /// The stylesheet setting the accent colour, if one is set.
    pub fn stylesheet(&self) -> Option<String> {
        self.accent.map(assets::stylesheet_url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accent_failing_aa_is_refused_with_its_ratio() {
        let e = check_accent("#ffcc00").unwrap_err();
        assert!(e.contains("1.51:1"), "{e}");
        assert!(e.contains("4.5:1"), "{e}");
        assert_eq!(check_accent("#1D4ED8"), Ok(Rgb(0x1d, 0x4e, 0xd8)));
        assert!(check_accent("blue").unwrap_err().contains("#rrggbb"));
    }

    #[test]
    fn support_is_an_email_or_an_https_url() {
        assert_eq!(
            Support::parse("help@vendor.example").unwrap().href(),
            "mailto:help@vendor.example"
        );
        assert_eq!(
            Support::parse("https://vendor.example/help")
                .unwrap()
                .href(),
            "https://vendor.example/help"
        );
        for bad in [
            "http://vendor.example",
            "javascript:alert(1)",
            "help",
            "a b@c.d",
            "x@y",
        ] {
            assert!(Support::parse(bad).is_err(), "{bad}");
        }
    }
}
