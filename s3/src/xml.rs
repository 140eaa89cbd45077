//! XML as S3 speaks it: answers written with a small builder, request
//! bodies (`Delete`, `CompleteMultipartUpload`) read into a tree with
//! quick-xml, then picked apart. Namespaces are ignored (local names only).

use quick_xml::events::Event;
use quick_xml::Reader;

pub const NS: &str = "http://s3.amazonaws.com/doc/2006-03-01/";

/// Builds an XML document (bytes: a listing writes keys as they are stored,
/// without a second pass to check that they are UTF-8).
pub struct Xml {
    out: Vec<u8>,
}

impl Xml {
    /// Starts an `<Error>` document: S3's have no namespace (and clients
    /// parse them without one).
    pub fn error() -> Xml {
        Xml {
            out: b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>".to_vec(),
        }
    }

    /// Starts a document whose root element `root` carries S3's namespace.
    pub fn new(root: &str) -> Xml {
        let mut out = Vec::with_capacity(1024);
        out.extend_from_slice(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<");
        out.extend_from_slice(root.as_bytes());
        out.extend_from_slice(b" xmlns=\"");
        out.extend_from_slice(NS.as_bytes());
        out.extend_from_slice(b"\">");
        Xml { out }
    }

    /// Room for `more` bytes, so that a long listing is not copied as it
    /// grows.
    pub fn reserve(&mut self, more: usize) {
        self.out.reserve(more);
    }

    pub fn open(&mut self, tag: &str) -> &mut Xml {
        self.out.push(b'<');
        self.out.extend_from_slice(tag.as_bytes());
        self.out.push(b'>');
        self
    }

    pub fn close(&mut self, tag: &str) -> &mut Xml {
        self.out.extend_from_slice(b"</");
        self.out.extend_from_slice(tag.as_bytes());
        self.out.push(b'>');
        self
    }

    /// `<tag>text</tag>`, the text escaped.
    pub fn elem(&mut self, tag: &str, text: &str) -> &mut Xml {
        self.open(tag);
        escape_into(text, &mut self.out);
        self.close(tag)
    }

    /// `<tag>` + what `write` appends + `</tag>`: `write` escapes what needs
    /// it ([`escape_bytes_into`]) and appends UTF-8 only.
    pub fn elem_with(&mut self, tag: &str, write: impl FnOnce(&mut Vec<u8>)) -> &mut Xml {
        self.open(tag);
        write(&mut self.out);
        self.close(tag)
    }

    /// Closes the root and gives the document.
    pub fn finish(mut self, root: &str) -> Vec<u8> {
        self.close(root);
        self.out
    }
}

/// Escapes text for element content; characters XML 1.0 cannot hold at all
/// are written as U+FFFD.
pub fn escape_into(text: &str, out: &mut Vec<u8>) {
    if text.bytes().all(|b| PLAIN[b as usize]) {
        out.extend_from_slice(text.as_bytes());
        return;
    }
    for c in text.chars() {
        let escaped: &str = match c {
            '&' => "&amp;",
            '<' => "&lt;",
            '>' => "&gt;",
            '"' => "&quot;",
            '\'' => "&apos;",
            '\r' => "&#13;",
            '\t' | '\n' => "",
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => "\u{fffd}",
            _ => "",
        };
        if escaped.is_empty() {
            out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
        } else {
            out.extend_from_slice(escaped.as_bytes());
        }
    }
}

/// [`escape_into`] for bytes that should be UTF-8: those that are not are
/// written as U+FFFD. Plain ASCII (most keys) is copied in one pass.
pub fn escape_bytes_into(raw: &[u8], out: &mut Vec<u8>) {
    if raw.iter().all(|&b| PLAIN[b as usize]) {
        out.extend_from_slice(raw);
    } else {
        escape_into(&String::from_utf8_lossy(raw), out);
    }
}

/// A key (or a prefix, a marker) for a listing's text as S3 writes it
/// without `encoding-type=url`: escaped, and the characters XML 1.0 has no
/// room for (C0 controls but tab and line feed, U+FFFE, U+FFFF) written
/// as numeric references (`&#x1;`), so that a lenient reader gets the key
/// back exactly (a strict one refuses the page, as it does S3's; clients
/// ask for `encoding-type=url`). Bytes that are not UTF-8 are U+FFFD.
pub fn escape_key_into(raw: &[u8], out: &mut Vec<u8>) {
    if raw.iter().all(|&b| PLAIN[b as usize]) {
        out.extend_from_slice(raw);
        return;
    }
    let mut one = [0u8; 4];
    for c in String::from_utf8_lossy(raw).chars() {
        let code = c as u32;
        if (code < 0x20 && c != '\t' && c != '\n') || c == '\u{fffe}' || c == '\u{ffff}' {
            out.extend_from_slice(format!("&#x{code:x};").as_bytes());
        } else {
            escape_into(c.encode_utf8(&mut one), out);
        }
    }
}

/// Bytes that stand for themselves in XML text (a table: listings escape
/// every key, ETag and date of a page).
const PLAIN: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = b.is_ascii_alphanumeric();
        c += 1;
    }
    let extra = b"/-_.!*() +,;=:@$%~^?#[]{}|`";
    let mut i = 0;
    while i < extra.len() {
        t[extra[i] as usize] = true;
        i += 1;
    }
    t
};

/// An element of a parsed request body.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Element {
    pub name: String,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The trimmed text of the named child (numbers, flags, ETags).
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.trim())
    }

    /// The named child's text exactly as sent, white space included: for
    /// keys, which are bytes (`" "` and `"\n"` are keys of their own).
    pub fn child_exact(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.as_str())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed XML: {0}")]
pub struct BadXml(pub String);

/// The deepest nesting a request body may have.
const MAX_DEPTH: usize = 8;

/// Parses a request body into its root element.
pub fn parse(body: &[u8]) -> Result<Element, BadXml> {
    let text = std::str::from_utf8(body).map_err(|_| BadXml("not UTF-8".into()))?;
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<Element> = vec![Element::default()];
    loop {
        let event = reader.read_event().map_err(|e| BadXml(e.to_string()))?;
        match event {
            Event::Start(e) => {
                if stack.len() > MAX_DEPTH {
                    return Err(BadXml("nested too deeply".into()));
                }
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                stack.push(Element {
                    name,
                    ..Element::default()
                });
            }
            Event::Empty(e) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                let top = stack.last_mut().ok_or(BadXml("unbalanced".into()))?;
                top.children.push(Element {
                    name,
                    ..Element::default()
                });
            }
            Event::End(_) => {
                let done = stack.pop().ok_or(BadXml("unbalanced".into()))?;
                let parent = stack.last_mut().ok_or(BadXml("unbalanced".into()))?;
                parent.children.push(done);
            }
            Event::Text(t) => push_text(&mut stack, &t.decode().map_err(bad)?)?,
            Event::CData(t) => push_text(&mut stack, &t.decode().map_err(bad)?)?,
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref().map_err(bad)? {
                    Some(c) => c.to_string(),
                    None => predefined(&r.decode().map_err(bad)?)?.to_string(),
                };
                push_text(&mut stack, &resolved)?;
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let mut document = stack.pop().filter(|_| stack.is_empty());
    match document.as_mut().map(|d| d.children.len()) {
        Some(1) => Ok(document
            .and_then(|mut d| d.children.pop())
            .unwrap_or_default()),
        _ => Err(BadXml("a document has one root element".into())),
    }
}

fn bad(e: impl std::fmt::Display) -> BadXml {
    BadXml(e.to_string())
}

fn push_text(stack: &mut [Element], text: &str) -> Result<(), BadXml> {
    let top = stack.last_mut().ok_or(BadXml("unbalanced".into()))?;
    top.text.push_str(text);
    Ok(())
}

fn predefined(name: &str) -> Result<&'static str, BadXml> {
    Ok(match name {
        "amp" => "&",
        "lt" => "<",
        "gt" => ">",
        "quot" => "\"",
        "apos" => "'",
        _ => return Err(BadXml(format!("unknown entity &{name};"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_written_as_s3_writes_them() {
        let mut out = Vec::new();
        escape_key_into(b"a\x01\t\n\r&<\x7f\xc3\xbc\xff", &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "a&#x1;\t\n&#xd;&amp;&lt;\u{7f}\u{fc}\u{fffd}"
        );
        let mut plain = Vec::new();
        escape_key_into(b"dir/a b+c", &mut plain);
        assert_eq!(plain, b"dir/a b+c");
    }

    #[test]
    fn writes_escaped() {
        let mut x = Xml::error();
        x.elem("Code", "NoSuchKey").elem("Key", "a<b&\"c\"\u{1}");
        let doc = String::from_utf8(x.finish("Error")).unwrap();
        assert_eq!(
            doc,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchKey</Code><Key>a&lt;b&amp;&quot;c&quot;\u{fffd}</Key></Error>"
        );
    }

    #[test]
    fn parses_delete() {
        let body = br#"<?xml version="1.0" encoding="UTF-8"?>
<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Object><Key>a&amp;b</Key></Object><Object><Key>c&#x20;d</Key><VersionId>null</VersionId></Object><Quiet>true</Quiet></Delete>"#;
        let root = parse(body).unwrap();
        assert_eq!(root.name, "Delete");
        let keys: Vec<&str> = root
            .children_named("Object")
            .filter_map(|o| o.child_text("Key"))
            .collect();
        assert_eq!(keys, ["a&b", "c d"]);
        assert_eq!(root.child_text("Quiet"), Some("true"));
        let spaced = parse(b"<Delete><Object><Key> </Key></Object><Object><Key>\n</Key></Object><Object><Key>_ </Key></Object></Delete>").unwrap();
        let keys: Vec<&str> = spaced
            .children_named("Object")
            .filter_map(|o| o.child_exact("Key"))
            .collect();
        assert_eq!(keys, [" ", "\n", "_ "], "keys are kept exactly");
    }

    #[test]
    fn refuses_malformed() {
        for body in [
            &b"<a><b></a>"[..],
            b"<a/><b/>",
            b"",
            b"<a>&nope;</a>",
            b"\xff",
            b"<a><a><a><a><a><a><a><a><a><a></a></a></a></a></a></a></a></a></a></a>",
        ] {
            assert!(parse(body).is_err(), "{body:?}");
        }
    }
}
