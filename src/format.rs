//! Text for people: sizes, signed sizes, times, terminal widths and truncation. Below every
//! part that shows something (the browser, the commands, imports), so none of them reaches
//! into another for it.

use std::sync::atomic::{AtomicBool, Ordering};

use humansize::{BINARY, DECIMAL, FormatSizeOptions, format_size};
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// `--si`: sizes in powers of 1000 (`1.5 MB`). One setting for the whole process, made once
/// by the command line before anything is shown, so that every size text (the browser, the
/// reports, the notes) agrees without each caller carrying it.
static SI: AtomicBool = AtomicBool::new(false);

/// Shows sizes in powers of 1000 (`kB`, `MB`) from now on, or in powers of 1024 (the default).
pub fn use_si(on: bool) {
    SI.store(on, Ordering::Relaxed);
}

fn units() -> (FormatSizeOptions, u64) {
    if SI.load(Ordering::Relaxed) {
        (DECIMAL, 1000)
    } else {
        (BINARY, 1024)
    }
}

/// A size as people read it: `1.5 MiB`, `512 B` (binary units; `1.5 MB` with `--si`).
#[must_use]
pub fn size(bytes: u64) -> String {
    format_size(bytes, units().0)
}

/// A size for the list's column: two decimals from KiB up even when they are zeros, so that
/// `5.00 MiB` does not read `5 MiB` among `4.98 MiB` rows (bytes stay whole: `512 B`).
#[must_use]
pub fn column_size(size: u64) -> String {
    let (units, base) = units();
    if size < base {
        format_size(size, units)
    } else {
        format_size(size, units.decimal_zeroes(2))
    }
}

/// `+50.0 MiB`, `-4 KiB`: a signed size.
#[must_use]
pub fn signed_size(delta: i128) -> String {
    let sign = if delta < 0 { '-' } else { '+' };
    let abs = u64::try_from(delta.unsigned_abs()).unwrap_or(u64::MAX);
    format!("{sign}{}", format_size(abs, units().0))
}

/// A count as every screen shows it: `1,234,567` (thousands grouped, as sizes are readable).
#[must_use]
pub fn number(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `1 entry`, `2 entries`, `1,000 entries`: a count with its noun, singular for one.
#[must_use]
pub fn count(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", number(n), if n == 1 { one } else { many })
}

/// The terminal columns `s` takes (a CJK character or an emoji takes two).
#[must_use]
pub fn width_of(s: &str) -> usize {
    UnicodeWidthStr::width(s)
}

fn char_cols(c: char) -> usize {
    UnicodeWidthChar::width(c).unwrap_or(0)
}

/// The longest start of `s` that fits in `width` columns.
#[must_use]
pub fn head_cols(s: &str, width: usize) -> &str {
    let mut used = 0;
    for (i, c) in s.char_indices() {
        used += char_cols(c);
        if used > width {
            return &s[..i];
        }
    }
    s
}

/// The longest end of `s` that fits in `width` columns.
fn tail_cols(s: &str, width: usize) -> &str {
    let mut used = 0;
    for (i, c) in s.char_indices().rev() {
        used += char_cols(c);
        if used > width {
            return &s[i + c.len_utf8()..];
        }
    }
    s
}

/// Shortens `s` to `width` terminal columns by cutting out its middle (`abc…xyz`).
#[must_use]
pub fn truncate_middle(s: &str, width: usize) -> String {
    if width_of(s) <= width {
        return s.to_owned();
    }
    if width <= 1 {
        return "…".chars().take(width).collect();
    }
    let keep = width - 1;
    let head = head_cols(s, keep.div_ceil(2));
    let tail = tail_cols(s, keep - width_of(head));
    format!("{head}…{tail}")
}

/// Shortens `s` to `width` terminal columns by cutting its end (`abcdef…`); a directory's name
/// keeps its `/` (`abcde…/`). A wide character that would straddle the edge goes whole.
#[must_use]
pub fn truncate_end(s: &str, width: usize) -> String {
    if width_of(s) <= width {
        return s.to_owned();
    }
    let slash = s.ends_with('/') && width >= 3;
    let keep = width.saturating_sub(if slash { 2 } else { 1 });
    let mut out = head_cols(s, keep).to_owned();
    if width > 0 {
        out.push('…');
    }
    if slash {
        out.push('/');
    }
    out
}

/// `YYYY-MM-DD HH:MM` in the local time zone (`TZ`, else `/etc/localtime`), as ncdu and `ls`
/// show times; UTC if the C library cannot convert it.
#[must_use]
pub fn format_local(secs: i64) -> String {
    if secs == 0 {
        return "-".into();
    }
    let Some(tm) = local_tm(secs) else {
        return format_mtime(secs);
    };
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}",
        i64::from(tm.tm_year) + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min
    )
}

/// The broken-down local time of `secs` since the epoch (`TZ`, else `/etc/localtime`, read by
/// the C library on its first conversion); `None` if it cannot convert it. The one place that
/// calls `localtime_r`.
#[must_use]
pub fn local_tm(secs: i64) -> Option<libc::tm> {
    // time_t is 64 bits on every target dtui builds for (Linux, 64-bit).
    let t = secs as libc::time_t;
    // SAFETY: `localtime_r` is the reentrant form: it reads `t` and writes only the `tm` it is
    // given; an all-zero `tm` is a valid value to start from.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let converted = !unsafe { libc::localtime_r(&raw const t, &raw mut tm) }.is_null();
    converted.then_some(tm)
}

/// `YYYY-MM-DD HH:MM` in UTC from seconds since the epoch (0: unknown).
#[must_use]
pub fn format_mtime(secs: i64) -> String {
    if secs == 0 {
        return "-".into();
    }
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_group_thousands_and_say_one_in_the_singular() {
        assert_eq!(number(0), "0");
        assert_eq!(number(999), "999");
        assert_eq!(number(1000), "1,000");
        assert_eq!(number(1_234_567), "1,234,567");
        assert_eq!(count(1, "entry", "entries"), "1 entry");
        assert_eq!(count(12_345, "entry", "entries"), "12,345 entries");
    }

    #[test]
    fn long_names_lose_their_middle() {
        assert_eq!(truncate_middle("abcdefghij", 10), "abcdefghij");
        assert_eq!(truncate_middle("abcdefghij", 7), "abc…hij");
        assert_eq!(truncate_middle("abcdefghij", 6), "abc…ij");
        assert_eq!(truncate_middle("abc", 1), "…");
    }

    #[test]
    fn cut_names_end_in_an_ellipsis_and_directories_keep_their_slash() {
        assert_eq!(truncate_end("abcdefghij", 10), "abcdefghij");
        assert_eq!(truncate_end("abcdefghij", 6), "abcde…");
        assert_eq!(truncate_end("abcdefghi/", 6), "abcd…/");
        assert_eq!(truncate_end("abc/", 2), "a…");
        assert_eq!(truncate_end("abc", 0), "");
    }

    #[test]
    fn signed_sizes_carry_their_sign() {
        assert_eq!(signed_size(52_428_800), "+50 MiB");
        assert_eq!(signed_size(-4096), "-4 KiB");
    }

    #[test]
    fn mtimes_are_utc_dates() {
        assert_eq!(format_mtime(0), "-");
        assert_eq!(format_mtime(86_400 * 365), "1971-01-01 00:00");
        assert_eq!(format_mtime(1_795_461_378), "2026-11-23 19:16");
        assert_eq!(format_mtime(951_782_400), "2000-02-29 00:00");
    }
}
