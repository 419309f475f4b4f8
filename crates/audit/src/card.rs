//! Card numbers (PANs) in log lines: Luhn-valid runs of 13–19 digits, optionally grouped by
//! single spaces or dashes, that stand in a card-number context (a keyword such as `card`,
//! `cc_num` or `pan` shortly before them). Only masked values (first 6, last 4) ever leave
//! this module, as the JCA guideline and PCI DSS require.

/// Bytes before a digit run searched for a context keyword.
const CONTEXT_WINDOW: usize = 48;

/// Keywords (lower case) that make a digit run a card-number candidate.
const CONTEXT_WORDS: [&str; 12] = [
    "card",
    "credit",
    "ccnum",
    "cc_num",
    "cc-num",
    "ccno",
    "cc_no",
    "cc_number",
    "pan",
    "acct",
    "account_number",
    "\u{30ab}\u{30fc}\u{30c9}", // カード
];

/// A card number found in a line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardMatch {
    /// Byte offset of the first digit in the line.
    pub offset: usize,
    /// First 6 and last 4 digits, the rest replaced by `*`.
    pub masked: String,
    /// The context keyword that qualified it.
    pub context: &'static str,
    /// Card brand guessed from the prefix.
    pub brand: &'static str,
}

/// Luhn check over ASCII digits.
pub fn luhn_valid(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, d) in digits.iter().rev().enumerate() {
        let mut v = u32::from(d - b'0');
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    !digits.is_empty() && sum.is_multiple_of(10)
}

/// First 6 and last 4 digits kept, the middle masked.
pub fn mask(digits: &[u8]) -> String {
    let n = digits.len();
    let mut s = String::with_capacity(n);
    for (i, d) in digits.iter().enumerate() {
        if i < 6 || i >= n.saturating_sub(4) {
            s.push(*d as char);
        } else {
            s.push('*');
        }
    }
    s
}

/// Brand from the issuer prefix, or `None` when no card scheme uses that prefix (such runs
/// are not reported: they are order numbers, timestamps, phone numbers).
pub fn brand(digits: &[u8]) -> Option<&'static str> {
    let p = |n: usize| -> u32 {
        digits[..n.min(digits.len())]
            .iter()
            .fold(0, |a, d| a * 10 + u32::from(d - b'0'))
    };
    let len = digits.len();
    match digits.first()? {
        b'4' if matches!(len, 13 | 16 | 19) => Some("visa"),
        b'5' if (51..=55).contains(&p(2)) && len == 16 => Some("mastercard"),
        b'2' if (2221..=2720).contains(&p(4)) && len == 16 => Some("mastercard"),
        b'3' if matches!(p(2), 34 | 37) && len == 15 => Some("amex"),
        b'3' if (3528..=3589).contains(&p(4)) && (16..=19).contains(&len) => Some("jcb"),
        b'3' if matches!(p(2), 36 | 38 | 39) || (300..=305).contains(&p(3)) => Some("diners"),
        b'6' if p(4) == 6011 || p(2) == 65 || (644..=649).contains(&p(3)) => Some("discover"),
        b'6' if p(2) == 62 => Some("unionpay"),
        _ => None,
    }
}

fn context_before(line: &[u8], start: usize) -> Option<&'static str> {
    let from = start.saturating_sub(CONTEXT_WINDOW);
    let window = &line[from..start];
    let lower: Vec<u8> = window.iter().map(u8::to_ascii_lowercase).collect();
    CONTEXT_WORDS
        .iter()
        .find(|w| lower.windows(w.len()).any(|x| x == w.as_bytes()))
        .copied()
}

/// Every card number in `line`.
pub fn find_cards(line: &[u8]) -> Vec<CardMatch> {
    let mut out = Vec::new();
    let mut i = 0;
    let n = line.len();
    while i < n {
        if !line[i].is_ascii_digit() || (i > 0 && line[i - 1].is_ascii_alphanumeric()) {
            i += 1;
            continue;
        }
        let start = i;
        let mut digits = [0u8; 20];
        let mut count = 0usize;
        let mut j = i;
        let mut too_long = false;
        while j < n {
            let c = line[j];
            if c.is_ascii_digit() {
                if count == digits.len() {
                    too_long = true;
                } else {
                    digits[count] = c;
                    count += 1;
                }
                j += 1;
            } else if (c == b' ' || c == b'-') && j + 1 < n && line[j + 1].is_ascii_digit() {
                j += 1;
            } else {
                break;
            }
        }
        let bounded = j >= n || !line[j].is_ascii_alphanumeric();
        let d = &digits[..count];
        if !too_long && bounded && (13..=19).contains(&count) && luhn_valid(d) {
            if let (Some(brand), Some(context)) = (brand(d), context_before(line, start)) {
                out.push(CardMatch {
                    offset: start,
                    masked: mask(d),
                    context,
                    brand,
                });
            }
        }
        i = j.max(i + 1);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_and_mask() {
        assert!(luhn_valid(b"4111111111111111"));
        assert!(!luhn_valid(b"4111111111111112"));
        assert!(luhn_valid(b"378282246310005"));
        assert_eq!(mask(b"4111111111111111"), "411111******1111");
        assert_eq!(mask(b"378282246310005"), "378282*****0005");
    }

    #[test]
    fn finds_cards_in_context_only() {
        let l = b"POST /shopping/confirm?card_no=4111111111111111&x=1 HTTP/1.1";
        let m = find_cards(l);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].masked, "411111******1111");
        assert_eq!(m[0].brand, "visa");
        assert_eq!(m[0].context, "card");
        // Grouped digits in JSON.
        let m = find_cards(br#"{"cardNumber":"5555 5555 5555 4444","cvc":"123"}"#);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].masked, "555555******4444");
        // No context: an order id that happens to pass Luhn is not reported.
        assert!(find_cards(b"GET /order/4111111111111111 HTTP/1.1").is_empty());
        // Luhn-invalid, too long, or part of a longer token.
        assert!(find_cards(b"card=4111111111111112").is_empty());
        assert!(find_cards(b"card=41111111111111110000").is_empty());
        assert!(find_cards(b"card=x4111111111111111").is_empty());
        assert!(find_cards(b"card=4111111111111111abc").is_empty());
        // Never the full number in the output.
        let m = find_cards(b"pan: 4012-8888-8888-1881");
        assert_eq!(m.len(), 1);
        assert!(!m[0].masked.contains("4012888888881881"));
        assert_eq!(m[0].masked, "401288******1881");
    }
}
