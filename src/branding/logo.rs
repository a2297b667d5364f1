//! Checks an uploaded logo: its size, its type by content (PNG, JPEG, WebP, SVG), and for SVG
//! anything that could run or fetch (scripts, event handlers, `javascript:` URLs,
//! `<foreignObject>`, external references).

/// Largest logo accepted.
pub const MAX_BYTES: usize = 256 * 1024;

/// A logo's type, found from its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogoType {
    Png,
    Jpeg,
    Webp,
    Svg,
}

impl LogoType {
    pub fn content_type(self) -> &'static str {
        match self {
            LogoType::Png => "image/png",
            LogoType::Jpeg => "image/jpeg",
            LogoType::Webp => "image/webp",
            LogoType::Svg => "image/svg+xml",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            LogoType::Png => "png",
            LogoType::Jpeg => "jpg",
            LogoType::Webp => "webp",
            LogoType::Svg => "svg",
        }
    }

    pub fn from_content_type(t: &str) -> Option<LogoType> {
        [LogoType::Png, LogoType::Jpeg, LogoType::Webp, LogoType::Svg]
            .into_iter()
            .find(|l| l.content_type() == t)
    }
}

/// Why a logo was refused, as shown to the owner.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogoProblem {
    #[error("Choose a logo file to upload.")]
    Empty,
    #[error(
        "The logo is {0} KB; the largest accepted is 256 KB. Export it smaller and upload it again."
    )]
    TooLarge(usize),
    #[error("The logo must be a PNG, JPEG, WebP or SVG image; this file is none of them.")]
    WrongType,
    #[error(
        "The SVG logo was refused: it contains {0}. Remove it (export the logo as plain shapes) and upload it again."
    )]
    UnsafeSvg(&'static str),
}

/// Checks `bytes` and returns their type.
pub fn check(bytes: &[u8]) -> Result<LogoType, LogoProblem> {
    if bytes.is_empty() {
        return Err(LogoProblem::Empty);
    }
    if bytes.len() > MAX_BYTES {
        return Err(LogoProblem::TooLarge(bytes.len().div_ceil(1024)));
    }
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Ok(LogoType::Png);
    }
    if bytes.starts_with(b"\xff\xd8\xff") {
        return Ok(LogoType::Jpeg);
    }
    if bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        return Ok(LogoType::Webp);
    }
    let text = std::str::from_utf8(bytes).map_err(|_| LogoProblem::WrongType)?;
    if !text.to_ascii_lowercase().contains("<svg") {
        return Err(LogoProblem::WrongType);
    }
    check_svg(text)?;
    Ok(LogoType::Svg)
}

/// Refuses an SVG with anything active or external. Deliberately coarse: a logo needs none
/// of these, so a false refusal costs a re-export while a miss could run in the portal.
pub fn check_svg(text: &str) -> Result<(), LogoProblem> {
    // Compare without case and whitespace, so `<SCRIPT`, `java\nscript:` and `on load=`
    // variants are caught too.
    let squeezed: String = text
        .chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect();
    let lower = text.to_ascii_lowercase();
    if squeezed.contains("<script") {
        return Err(LogoProblem::UnsafeSvg("a script"));
    }
    if squeezed.contains("<foreignobject") {
        return Err(LogoProblem::UnsafeSvg("a <foreignObject>"));
    }
    if squeezed.contains("javascript:") || squeezed.contains("&#") {
        // Character references could spell `javascript:` in an attribute.
        return Err(LogoProblem::UnsafeSvg(
            "a javascript: URL or an encoded character",
        ));
    }
    if has_event_handler(&lower) {
        return Err(LogoProblem::UnsafeSvg("an event handler attribute (on…=)"));
    }
    if has_external_reference(&squeezed) {
        return Err(LogoProblem::UnsafeSvg("an external reference"));
    }
    if squeezed.contains("<!entity") || squeezed.contains("<?xml-stylesheet") {
        return Err(LogoProblem::UnsafeSvg("an external reference"));
    }
    Ok(())
}

/// An attribute named `on…` (after whitespace or `/`), e.g. `onload=`, `onclick =`.
fn has_event_handler(lower: &str) -> bool {
    let b = lower.as_bytes();
    (1..b.len().saturating_sub(2)).any(|i| {
        let before = b[i - 1];
        if !(before.is_ascii_whitespace() || before == b'/') || &b[i..i + 2] != b"on" {
            return false;
        }
        let name_end = b[i + 2..]
            .iter()
            .position(|c| !(c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_'))
            .map_or(b.len(), |p| i + 2 + p);
        if name_end == i + 2 {
            return false;
        }
        b[name_end..]
            .iter()
            .find(|c| !c.is_ascii_whitespace())
            .is_some_and(|c| *c == b'=')
    })
}

/// A link or style fetching something outside the file: `href`/`src` to anything but a
/// `#fragment`, or a CSS `url(` / `@import` not pointing into the file.
fn has_external_reference(squeezed: &str) -> bool {
    for attr in ["href=", "src="] {
        let mut rest = squeezed;
        while let Some(p) = rest.find(attr) {
            rest = &rest[p + attr.len()..];
            let value = rest.trim_start_matches(['"', '\'']);
            if !value.starts_with('#') {
                return true;
            }
        }
    }
    let mut rest = squeezed;
    while let Some(p) = rest.find("url(") {
        rest = &rest[p + 4..];
        if !rest.trim_start_matches(['"', '\'']).starts_with('#') {
            return true;
        }
    }
    squeezed.contains("@import")
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAIN: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><defs><linearGradient id="g"/></defs><rect width="10" height="10" fill="url(#g)"/><use href="#g"/></svg>"##;

    #[test]
    fn plain_svg_and_raster_magic_are_accepted() {
        assert_eq!(check(PLAIN.as_bytes()), Ok(LogoType::Svg));
        assert_eq!(check(b"\x89PNG\r\n\x1a\nrest"), Ok(LogoType::Png));
        assert_eq!(check(b"\xff\xd8\xff\xe0rest"), Ok(LogoType::Jpeg));
        assert_eq!(check(b"RIFF\0\0\0\0WEBPVP8 "), Ok(LogoType::Webp));
    }

    #[test]
    fn wrong_type_empty_and_too_large_are_refused() {
        assert_eq!(check(b"GIF89a..."), Err(LogoProblem::WrongType));
        assert_eq!(check(b"hello"), Err(LogoProblem::WrongType));
        assert_eq!(check(b""), Err(LogoProblem::Empty));
        let big = vec![0x89u8; MAX_BYTES + 1];
        assert_eq!(check(&big), Err(LogoProblem::TooLarge(257)));
    }

    #[test]
    fn active_or_external_svg_content_is_refused() {
        let cases = [
            ("<svg><script>alert(1)</script></svg>", "a script"),
            ("<svg><SCRIPT >x</SCRIPT></svg>", "a script"),
            (
                "<svg onload=\"x()\"></svg>",
                "an event handler attribute (on…=)",
            ),
            (
                "<svg><rect\nonClick = 'x'/></svg>",
                "an event handler attribute (on…=)",
            ),
            (
                "<svg><a href=\"javascript:x()\"/></svg>",
                "a javascript: URL or an encoded character",
            ),
            (
                "<svg><a href=\"java\tscript:x()\"/></svg>",
                "a javascript: URL or an encoded character",
            ),
            ("<svg><foreignObject/></svg>", "a <foreignObject>"),
            (
                "<svg><image href=\"https://x.example/a.png\"/></svg>",
                "an external reference",
            ),
            (
                "<svg><use xlink:href='other.svg#a'/></svg>",
                "an external reference",
            ),
            (
                "<svg><style>@import 'x.css';</style></svg>",
                "an external reference",
            ),
            (
                "<svg><rect fill=\"url(https://x.example/#a)\"/></svg>",
                "an external reference",
            ),
        ];
        for (svg, why) in cases {
            assert_eq!(check_svg(svg), Err(LogoProblem::UnsafeSvg(why)), "{svg}");
        }
    }

    #[test]
    fn words_starting_with_on_that_are_not_attributes_pass() {
        assert_eq!(
            check_svg("<svg><title>one two</title><g id=\"ontop\"/></svg>"),
            Ok(())
        );
    }
}
