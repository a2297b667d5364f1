//! The accent colour and its WCAG contrast with the white text buttons carry.

/// WCAG AA minimum contrast for normal text.
pub const AA_NORMAL: f64 = 4.5;

/// A `#rrggbb` colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rgb(pub u8, pub u8, pub u8);

impl Rgb {
    /// Parses `#rrggbb` (either case); anything else is None.
    pub fn parse(s: &str) -> Option<Rgb> {
        let hex = s.strip_prefix('#')?;
        if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
        Some(Rgb(byte(0)?, byte(2)?, byte(4)?))
    }

    /// The canonical lower-case `#rrggbb`.
    pub fn css(self) -> String {
        format!("#{:02x}{:02x}{:02x}", self.0, self.1, self.2)
    }

    /// WCAG 2 relative luminance.
    pub fn luminance(self) -> f64 {
        let channel = |v: u8| {
            let c = f64::from(v) / 255.0;
            if c <= 0.04045 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * channel(self.0) + 0.7152 * channel(self.1) + 0.0722 * channel(self.2)
    }
}

/// WCAG contrast ratio of two colours (1 to 21).
pub fn contrast(a: Rgb, b: Rgb) -> f64 {
    let (la, lb) = (a.luminance(), b.luminance());
    let (hi, lo) = if la > lb { (la, lb) } else { (lb, la) };
    (hi + 0.05) / (lo + 0.05)
}

/// Contrast of white text on `accent`.
pub fn with_white(accent: Rgb) -> f64 {
    contrast(Rgb(255, 255, 255), accent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn black_on_white_is_21_and_same_colour_is_1() {
        assert!((contrast(Rgb(0, 0, 0), Rgb(255, 255, 255)) - 21.0).abs() < 1e-9);
        assert!((contrast(Rgb(18, 52, 86), Rgb(18, 52, 86)) - 1.0).abs() < 1e-9);
    }

    #[test]
    fn known_ratios_with_white() {
        // Reference values from the WebAIM contrast checker.
        assert!((with_white(Rgb::parse("#777777").unwrap()) - 4.48).abs() < 0.01);
        assert!((with_white(Rgb::parse("#767676").unwrap()) - 4.54).abs() < 0.01);
        assert!((with_white(Rgb::parse("#1d4ed8").unwrap()) - 6.70).abs() < 0.01);
        assert!(with_white(Rgb::parse("#ffcc00").unwrap()) < AA_NORMAL);
    }

    #[test]
    fn order_does_not_matter() {
        let (a, b) = (Rgb(10, 200, 30), Rgb(240, 10, 90));
        assert_eq!(contrast(a, b), contrast(b, a));
    }

    #[test]
    fn parses_only_hash_rrggbb() {
        assert_eq!(Rgb::parse("#0055AA"), Some(Rgb(0, 0x55, 0xaa)));
        assert_eq!(Rgb::parse("#0055AA").unwrap().css(), "#0055aa");
        for bad in ["0055aa", "#05a", "#0055aag", "#0055aa0", "", "#ééé"] {
            assert_eq!(Rgb::parse(bad), None, "{bad}");
        }
    }
}
