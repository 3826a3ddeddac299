//! Ordering of firmware and package versions.
//!
//! Device firmware does not follow semver ("8.00.01", "V2.3b", "4.1.0-rc2"), so versions are
//! compared segment by segment: runs of digits numerically, runs of letters case-insensitively,
//! a letter run after a shorter version marking a pre-release (`1.0rc1 < 1.0 < 1.0.1`).

use std::cmp::Ordering;

#[derive(Debug, PartialEq, Eq)]
enum Seg<'a> {
    Num(u64),
    Alpha(&'a str),
}

fn segments(v: &str) -> Vec<Seg<'_>> {
    let v = v.trim();
    let v = v
        .strip_prefix(['v', 'V'])
        .filter(|r| r.starts_with(|c: char| c.is_ascii_digit()))
        .unwrap_or(v);
    let mut out = Vec::new();
    let bytes = v.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        if bytes[i].is_ascii_digit() {
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            let digits = v[start..i].trim_start_matches('0');
            out.push(Seg::Num(digits.parse().unwrap_or(if digits.is_empty() {
                0
            } else {
                u64::MAX
            })));
        } else if bytes[i].is_ascii_alphabetic() {
            while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
                i += 1;
            }
            out.push(Seg::Alpha(&v[start..i]));
        } else {
            i += 1;
        }
    }
    out
}

/// Total order on version strings (see the module doc).
pub fn compare(a: &str, b: &str) -> Ordering {
    let (sa, sb) = (segments(a), segments(b));
    let n = sa.len().max(sb.len());
    for i in 0..n {
        let ord = match (sa.get(i), sb.get(i)) {
            (Some(Seg::Num(x)), Some(Seg::Num(y))) => x.cmp(y),
            (Some(Seg::Alpha(x)), Some(Seg::Alpha(y))) => {
                x.to_ascii_lowercase().cmp(&y.to_ascii_lowercase())
            }
            (Some(Seg::Num(_)), Some(Seg::Alpha(_))) => Ordering::Greater,
            (Some(Seg::Alpha(_)), Some(Seg::Num(_))) => Ordering::Less,
            (Some(Seg::Num(_)), None) => Ordering::Greater,
            (Some(Seg::Alpha(_)), None) => Ordering::Less,
            (None, Some(Seg::Num(_))) => Ordering::Less,
            (None, Some(Seg::Alpha(_))) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn firmware_versions_order_as_people_expect() {
        let ordered = [
            "1.0rc1", "1.0", "1.0.1", "1.2", "1.10", "8.00.01", "8.0.2", "v9", "10.0",
        ];
        for w in ordered.windows(2) {
            assert_eq!(compare(w[0], w[1]), Ordering::Less, "{} < {}", w[0], w[1]);
            assert_eq!(compare(w[1], w[0]), Ordering::Greater);
        }
        assert_eq!(compare("8.00.01", "8.0.1"), Ordering::Equal);
        assert_eq!(compare("V2.3B", "2.3b"), Ordering::Equal);
    }

    proptest! {
        #[test]
        fn antisymmetric_and_transitive(a in "[0-9a-c.v-]{0,8}", b in "[0-9a-c.v-]{0,8}", c in "[0-9a-c.v-]{0,8}") {
            prop_assert_eq!(compare(&a, &b), compare(&b, &a).reverse());
            if compare(&a, &b) != Ordering::Greater && compare(&b, &c) != Ordering::Greater {
                prop_assert_ne!(compare(&a, &c), Ordering::Greater);
            }
        }
    }
}
