//! The `.trashinfo` side of the trash: the name an entry takes in `files/`, its original path
//! percent-encoded for `Path=` (and decoded back), and the `DeletionDate`.

/// The longest name a directory entry may have (`NAME_MAX`).
const NAME_MAX: usize = 255;

/// A name for the trash's `files/` that leaves room for `.trashinfo` and a `.N` suffix within
/// `NAME_MAX`: a long name is cut (at a character boundary where it is UTF-8); its
/// `.trashinfo` keeps the original path, so nothing is lost.
pub(super) fn trash_stem(name: &[u8]) -> Vec<u8> {
    let room = NAME_MAX - ".trashinfo".len() - ".9999".len();
    if name.len() <= room {
        return name.to_vec();
    }
    let mut cut = room;
    if let Ok(s) = std::str::from_utf8(name) {
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
    }
    name[..cut].to_vec()
}

/// Percent-encodes a path for `Path=` (RFC 2396 escaping; `/` kept).
pub(super) fn encode(path: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for &b in path {
        if b.is_ascii_alphanumeric() || b"/-._~!$&'()*+,;=:@".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Decodes a `Path=` value.
#[must_use]
pub fn decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(v) = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// The local time as `YYYY-MM-DDThh:mm:ss`, as the spec asks for `DeletionDate`.
pub(super) fn local_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let Some(tm) = crate::format::local_tm(i64::try_from(now).unwrap_or(i64::MAX)) else {
        return "1970-01-01T00:00:00".into();
    };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trashinfo_paths_are_percent_encoded_and_decode_back() {
        let raw = b"/tmp/a b/\xff%x/caf\xc3\xa9";
        let enc = encode(raw);
        assert_eq!(enc, "/tmp/a%20b/%FF%25x/caf%C3%A9");
        assert_eq!(decode(&enc), raw.to_vec());
    }
}
